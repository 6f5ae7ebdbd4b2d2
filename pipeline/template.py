"""Templates are Frictionless Table Schema documents plus an `x-loadbay` block.

Only what the engine enforces today is accepted; anything else is refused with a
message rather than silently ignored, so a client never believes a rule is checked
when it is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import TemplateError

SUPPORTED_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
SUPPORTED_CONSTRAINTS = ("required", "enum")
DEFAULT_TRUE_VALUES = ("true", "True", "TRUE", "1")
DEFAULT_FALSE_VALUES = ("false", "False", "FALSE", "0")


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "string"
    title: str = ""
    description: str = ""
    required: bool = False
    enum: tuple[str, ...] | None = None
    true_values: tuple[str, ...] = DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = DEFAULT_FALSE_VALUES
    synonyms: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.title or self.name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.title:
            out["title"] = self.title
        if self.description:
            out["description"] = self.description
        constraints: dict[str, Any] = {}
        if self.required:
            constraints["required"] = True
        if self.enum is not None:
            constraints["enum"] = list(self.enum)
        if constraints:
            out["constraints"] = constraints
        if self.type == "boolean":
            out["trueValues"] = list(self.true_values)
            out["falseValues"] = list(self.false_values)
        if self.synonyms:
            out["x-loadbay"] = {"synonyms": list(self.synonyms)}
        return out


@dataclass(frozen=True)
class Template:
    name: str
    fields: tuple[Field, ...]
    title: str = ""

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Template:
        if not isinstance(data, Mapping):
            raise TemplateError("A template must be a JSON object (a Table Schema).")
        raw_fields = data.get("fields")
        if not isinstance(raw_fields, list) or not raw_fields:
            raise TemplateError('A template needs a non-empty "fields" list.')
        fields = tuple(_field_from_dict(raw, i) for i, raw in enumerate(raw_fields))
        names = [f.name for f in fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TemplateError(f"Field names must be unique; repeated: {', '.join(duplicates)}.")
        missing = data.get("missingValues", [""])
        if missing != [""]:
            raise TemplateError('"missingValues" other than [""] (empty cell) is not supported.')
        ext = data.get("x-loadbay", {})
        if not isinstance(ext, Mapping):
            raise TemplateError('"x-loadbay" must be an object.')
        name = str(data.get("name") or ext.get("name") or "template")
        title = str(data.get("title") or ext.get("title") or "")
        return cls(name=name, title=title, fields=fields)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "fields": [f.to_dict() for f in self.fields],
            "missingValues": [""],
        }


def _field_from_dict(raw: Any, index: int) -> Field:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise TemplateError(f'Field #{index + 1} needs a non-empty string "name".')
    name = raw["name"]
    ftype = raw.get("type", "string")
    if ftype not in SUPPORTED_TYPES:
        raise TemplateError(
            f'Field "{name}": type "{ftype}" is not supported; use one of '
            f"{', '.join(SUPPORTED_TYPES)}."
        )
    fmt = raw.get("format", "default")
    if fmt != "default":
        raise TemplateError(f'Field "{name}": format "{fmt}" is not supported; remove it.')
    constraints = raw.get("constraints", {})
    if not isinstance(constraints, Mapping):
        raise TemplateError(f'Field "{name}": "constraints" must be an object.')
    unknown = sorted(set(constraints) - set(SUPPORTED_CONSTRAINTS))
    if unknown:
        raise TemplateError(
            f'Field "{name}": constraint(s) {", ".join(unknown)} are not supported; remove them.'
        )
    enum = constraints.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        raise TemplateError(f'Field "{name}": "enum" must be a non-empty list.')
    required = constraints.get("required", False)
    if not isinstance(required, bool):
        raise TemplateError(f'Field "{name}": "required" must be true or false.')
    ext = raw.get("x-loadbay", {})
    if not isinstance(ext, Mapping):
        raise TemplateError(f'Field "{name}": "x-loadbay" must be an object.')
    return Field(
        name=name,
        type=ftype,
        title=str(raw.get("title", "")),
        description=str(raw.get("description", "")),
        required=required,
        enum=tuple(str(v) for v in enum) if enum is not None else None,
        true_values=_strings(raw, "trueValues", DEFAULT_TRUE_VALUES, name),
        false_values=_strings(raw, "falseValues", DEFAULT_FALSE_VALUES, name),
        synonyms=_strings(ext, "synonyms", (), name),
    )


def _strings(
    raw: Mapping[str, Any], key: str, default: tuple[str, ...], name: str
) -> tuple[str, ...]:
    """A list of strings (a bare string would otherwise be split into its characters)."""
    if key not in raw:
        return default
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TemplateError(f'Field "{name}": "{key}" must be a list of strings.')
    return tuple(value)
