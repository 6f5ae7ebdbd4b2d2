"""The template model: a Table Schema's fields and rules, as frozen dataclasses.

Data only, and no imports from the rest of the engine: the type system
(`pipeline.types`) and the parser (`pipeline.template`) build on it, never the other way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

DEFAULT_TRUE_VALUES = ("true", "True", "TRUE", "1")
DEFAULT_FALSE_VALUES = ("false", "False", "FALSE", "0")
DEFAULT_MISSING_VALUES = ("",)


@dataclass(frozen=True)
class Transform:
    """One `x-loadbay` transform: "trim", {"case": "upper"}, {"dateFrom": [...]}, {"phone": ...}.

    `option` is the case name, the date patterns, or the phone number's default region.
    """

    name: str
    option: str | tuple[str, ...] = ""

    def to_json(self) -> Any:
        if self.name == "trim":
            return "trim"
        if self.name == "phone":
            return {"phone": {"region": self.option}}
        return {self.name: list(self.option) if isinstance(self.option, tuple) else self.option}


@dataclass(frozen=True)
class Field:
    name: str
    type: str = "string"
    format: str = "default"
    title: str = ""
    description: str = ""
    required: bool = False
    unique: bool = False
    enum: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: int | float | str | None = None
    maximum: int | float | str | None = None
    min_length: int | None = None
    max_length: int | None = None
    true_values: tuple[str, ...] = DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = DEFAULT_FALSE_VALUES
    bare_number: bool = True
    decimal_char: str = "."
    group_char: str = ""
    synonyms: tuple[str, ...] = ()
    transforms: tuple[Transform, ...] = ()
    # x-loadbay valueSynonyms: (allowed value, its other spellings) for an enum field
    value_synonyms: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # x-loadbay dayFirst: how the file writes dates such as 05/06/2024; None: ask the user
    day_first: bool | None = None

    @property
    def label(self) -> str:
        return self.title or self.name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.format != "default":
            out["format"] = self.format
        if self.title:
            out["title"] = self.title
        if self.description:
            out["description"] = self.description
        constraints: dict[str, Any] = {}
        for key, value, default in (
            ("required", self.required, False),
            ("unique", self.unique, False),
            ("enum", list(self.enum) if self.enum is not None else None, None),
            ("pattern", self.pattern, None),
            ("minimum", self.minimum, None),
            ("maximum", self.maximum, None),
            ("minLength", self.min_length, None),
            ("maxLength", self.max_length, None),
        ):
            if value != default:
                constraints[key] = value
        if constraints:
            out["constraints"] = constraints
        if self.type == "boolean":
            out["trueValues"] = list(self.true_values)
            out["falseValues"] = list(self.false_values)
        if self.type in ("integer", "number"):
            if not self.bare_number:
                out["bareNumber"] = False
            if self.group_char:
                out["groupChar"] = self.group_char
        if self.type == "number" and self.decimal_char != ".":
            out["decimalChar"] = self.decimal_char
        ext: dict[str, Any] = {}
        if self.synonyms:
            ext["synonyms"] = list(self.synonyms)
        if self.transforms:
            ext["transforms"] = [t.to_json() for t in self.transforms]
        if self.value_synonyms:
            ext["valueSynonyms"] = {value: list(names) for value, names in self.value_synonyms}
        if self.day_first is not None:
            ext["dayFirst"] = self.day_first
        if ext:
            out["x-loadbay"] = ext
        return out


class RowPolicy(enum.StrEnum):
    """What happens to rows that break the template (`x-loadbay.invalidRowPolicy`)."""

    REJECT = "reject"  # every cell must pass: submitting waits until every row is fixed
    VALID_ONLY = "valid-only"  # invalid rows are left out, counted and reported
    WITH_ERRORS = "with-errors"  # every row is delivered, each with its errors attached


@dataclass(frozen=True)
class Template:
    name: str
    fields: tuple[Field, ...]
    title: str = ""
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES
    primary_key: tuple[str, ...] = ()
    # x-loadbay retentionDays: days the server keeps the rows (0: passthrough, nothing
    # stored); None: the organisation's default.
    retention_days: int | None = None
    invalid_row_policy: RowPolicy | None = None  # None: the organisation's default applies

    def row_policy(self, default: RowPolicy | str = "reject") -> RowPolicy:
        """The policy this template's imports follow: its own, else the organisation's."""
        return self.invalid_row_policy or RowPolicy(default)

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "fields": [f.to_dict() for f in self.fields],
            "missingValues": list(self.missing_values),
        }
        if self.primary_key:
            out["primaryKey"] = list(self.primary_key)
        return out
