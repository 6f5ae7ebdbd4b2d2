"""Templates are Frictionless Table Schema documents plus an `x-loadbay` block.

Only what the engine enforces is accepted; anything else is refused with a message
rather than silently ignored, so a client never believes a rule is checked when it is
not. Constraint values (enum, minimum, maximum) must parse as the field's type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipeline.errors import TemplateError
from pipeline.schema import (
    DEFAULT_FALSE_VALUES,
    DEFAULT_MISSING_VALUES,
    DEFAULT_TRUE_VALUES,
    Field,
    RowPolicy,
    Template,
    Transform,
)
from pipeline.types import parse_one

__all__ = [
    "DEFAULT_FALSE_VALUES",
    "DEFAULT_MISSING_VALUES",
    "DEFAULT_TRUE_VALUES",
    "Field",
    "Template",
    "Transform",
    "parse_template",
]

SUPPORTED_TYPES = (
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "time",
    "year",
    "yearmonth",
    "duration",
    "any",
)
STRING_FORMATS = ("default", "email", "uri", "uuid", "binary")
TEMPORAL_TYPES = ("date", "datetime", "time")  # format: default, any, or a strptime pattern
ORDERED_TYPES = ("integer", "number", "date", "datetime", "time", "year", "yearmonth")
SUPPORTED_CONSTRAINTS = (
    "required",
    "unique",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
)
TRANSFORMS = ("trim", "case", "dateFrom", "phone")
ERRORS_FIELD = "_errors"  # each row's errors, delivered beside its fields (with-errors)
CASES = ("upper", "lower", "title")
# A field's data classification (x-loadbay.classification): "personal" fields are masked
# in every dashboard preview until a permitted member reveals them (an audited action).
CLASSIFICATIONS = ("public", "internal", "confidential", "personal")
PERSONAL = "personal"


def parse_template(data: Mapping[str, Any]) -> Template:
    """A Template from a Table Schema document, or TemplateError saying what to change."""
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
    missing = _strings(data, "missingValues", DEFAULT_MISSING_VALUES, "The template")
    primary_key = _primary_key(data.get("primaryKey", []), names)
    # A primary key's fields may not be empty (Table Schema).
    fields = tuple(
        replace(f, required=True) if f.name in primary_key and not f.required else f for f in fields
    )
    ext = data.get("x-loadbay", {})
    if not isinstance(ext, Mapping):
        raise TemplateError('"x-loadbay" must be an object.')
    name = str(data.get("name") or ext.get("name") or "template")
    title = str(data.get("title") or ext.get("title") or "")
    policy = _row_policy(ext.get("invalidRowPolicy"))
    if ERRORS_FIELD in names:
        raise TemplateError(
            f'"{ERRORS_FIELD}" cannot be a field name: rows delivered with their errors '
            "(invalidRowPolicy with-errors) carry them under it. Rename the field."
        )
    return Template(
        name=name,
        title=title,
        fields=fields,
        missing_values=missing,
        primary_key=primary_key,
        retention_days=_retention_days(ext),
        invalid_row_policy=policy,
    )


MAX_RETENTION_DAYS = 365


def _retention_days(ext: Mapping[str, Any]) -> int | None:
    value = ext.get("retentionDays")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_RETENTION_DAYS
    ):
        raise TemplateError(
            '"x-loadbay.retentionDays" must be a whole number of days from 0 to '
            f"{MAX_RETENTION_DAYS}: 0 passes rows straight to the destinations without storing "
            "them; leave it out for the organisation's default."
        )
    return value


def _row_policy(raw: Any) -> RowPolicy | None:
    if raw is None:
        return None
    try:
        return RowPolicy(raw)
    except ValueError:
        allowed = ", ".join(p.value for p in RowPolicy)
        raise TemplateError(
            f'"x-loadbay.invalidRowPolicy" must be one of {allowed} (or absent, for the '
            f"organisation's default), not {json.dumps(raw)}."
        ) from None


def with_row_policy(schema: Mapping[str, Any], default: RowPolicy | str) -> dict[str, Any]:
    """The template document with the policy its imports follow written in, for the
    browser's engine (which cannot know the organisation's default)."""
    policy = parse_template(schema).row_policy(default)
    return {
        **schema,
        "x-loadbay": {**schema.get("x-loadbay", {}), "invalidRowPolicy": policy.value},
    }


def _primary_key(raw: Any, names: list[str]) -> tuple[str, ...]:
    key = [raw] if isinstance(raw, str) else raw
    if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
        raise TemplateError('"primaryKey" must be a field name or a list of field names.')
    unknown = [k for k in key if k not in names]
    if unknown:
        raise TemplateError(f'"primaryKey" names {", ".join(unknown)}, not fields of the template.')
    if len(set(key)) != len(key):
        raise TemplateError('"primaryKey" names a field twice.')
    return tuple(key)


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
    ext = raw.get("x-loadbay", {})
    if not isinstance(ext, Mapping):
        raise TemplateError(f'Field "{name}": "x-loadbay" must be an object.')
    field_classification(raw)
    field = Field(
        name=name,
        type=ftype,
        format=_format(raw.get("format", "default"), ftype, name),
        title=str(raw.get("title", "")),
        description=str(raw.get("description", "")),
        required=_flag(constraints, "required", name),
        unique=_flag(constraints, "unique", name),
        enum=tuple(_text(v) for v in enum) if enum is not None else None,
        pattern=_pattern(constraints.get("pattern"), name),
        minimum=_bound(constraints, "minimum", ftype, name),
        maximum=_bound(constraints, "maximum", ftype, name),
        min_length=_length(constraints, "minLength", ftype, name),
        max_length=_length(constraints, "maxLength", ftype, name),
        true_values=_strings(raw, "trueValues", DEFAULT_TRUE_VALUES, f'Field "{name}"'),
        false_values=_strings(raw, "falseValues", DEFAULT_FALSE_VALUES, f'Field "{name}"'),
        bare_number=_flag(raw, "bareNumber", name, default=True),
        decimal_char=_char(raw, "decimalChar", ".", name),
        group_char=_char(raw, "groupChar", "", name),
        synonyms=_strings(ext, "synonyms", (), f'Field "{name}"'),
        transforms=_transforms(ext.get("transforms", []), ftype, name),
        value_synonyms=_value_synonyms(ext.get("valueSynonyms"), enum, name),
        day_first=_day_first(ext.get("dayFirst"), ftype, name),
    )
    _check_constants(field)
    return field


def _format(fmt: Any, ftype: str, name: str) -> str:
    if not isinstance(fmt, str):
        raise TemplateError(f'Field "{name}": "format" must be text.')
    text: str = fmt.removeprefix("fmt:")  # Table Schema v0's spelling of a pattern
    if text == "default":
        return text
    if ftype == "string" and text in STRING_FORMATS:
        return text
    if ftype in TEMPORAL_TYPES and (text == "any" or "%" in text):
        return text
    if ftype in TEMPORAL_TYPES:
        allowed = "default, any or a pattern such as %d/%m/%Y"
    elif ftype == "string":
        allowed = ", ".join(STRING_FORMATS)
    else:
        allowed = "default"
    raise TemplateError(f'Field "{name}": format "{text}" is not supported; use {allowed}.')


def _flag(raw: Mapping[str, Any], key: str, name: str, default: bool = False) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise TemplateError(f'Field "{name}": "{key}" must be true or false.')
    return value


def _text(value: Any) -> str:
    """A JSON constant as cell text: 2 -> "2", true -> "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pattern(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TemplateError(f'Field "{name}": "pattern" must be a regular expression (text).')
    try:
        re.compile(value)
    except re.error as exc:
        raise TemplateError(f'Field "{name}": "pattern" is not a valid expression: {exc}.') from exc
    return value


def _bound(
    constraints: Mapping[str, Any], key: str, ftype: str, name: str
) -> int | float | str | None:
    value = constraints.get(key)
    if value is None:
        return None
    if ftype not in ORDERED_TYPES:
        raise TemplateError(
            f'Field "{name}": "{key}" applies to {", ".join(ORDERED_TYPES)} fields, not {ftype}.'
        )
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TemplateError(f'Field "{name}": "{key}" must be a number or text.')
    return value


def _length(constraints: Mapping[str, Any], key: str, ftype: str, name: str) -> int | None:
    value = constraints.get(key)
    if value is None:
        return None
    if ftype != "string":
        raise TemplateError(f'Field "{name}": "{key}" applies to string fields, not {ftype}.')
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TemplateError(f'Field "{name}": "{key}" must be a whole number, 0 or more.')
    return value


def _char(raw: Mapping[str, Any], key: str, default: str, name: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or len(value) > 1 or (key == "decimalChar" and not value):
        raise TemplateError(f'Field "{name}": "{key}" must be one character.')
    return value


def _transforms(raw: Any, ftype: str, name: str) -> tuple[Transform, ...]:
    if not isinstance(raw, list):
        raise TemplateError(f'Field "{name}": "transforms" must be a list.')
    return tuple(_transform(item, ftype, name) for item in raw)


def _transform(item: Any, ftype: str, name: str) -> Transform:
    where = f'Field "{name}": transform'
    if item == "trim":
        return Transform("trim")
    if not isinstance(item, Mapping) or len(item) != 1 or next(iter(item)) not in TRANSFORMS:
        raise TemplateError(
            f"{where} {json.dumps(item)} is not supported; use "
            '"trim", {"case": "upper"|"lower"|"title"}, {"dateFrom": [patterns]} '
            'or {"phone": {"region": "GB"}}.'
        )
    ((kind, option),) = item.items()
    if kind == "case":
        if option not in CASES:
            raise TemplateError(f'{where} "case" must be one of {", ".join(CASES)}.')
        return Transform("case", option)
    if kind == "dateFrom":
        if ftype not in ("date", "datetime"):
            raise TemplateError(f'{where} "dateFrom" applies to date and datetime fields only.')
        if (
            not isinstance(option, list)
            or not option
            or not all(isinstance(p, str) and "%" in p for p in option)
        ):
            raise TemplateError(
                f'{where} "dateFrom" needs a list of patterns such as ["%d/%m/%Y"].'
            )
        return Transform("dateFrom", tuple(option))
    if ftype != "string":
        raise TemplateError(f'{where} "phone" applies to string fields only.')
    region = option.get("region") if isinstance(option, Mapping) else None
    import phonenumbers

    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise TemplateError(
            f'{where} "phone" needs {{"region": "<two-letter country code>"}}, '
            "the country a number without +prefix belongs to."
        )
    return Transform("phone", region)


def _value_synonyms(
    raw: Any, enum: list[Any] | None, name: str
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """{allowed value: [other spellings]}: what the review's value mapping proposes."""
    if raw is None:
        return ()
    where = f'Field "{name}": "x-loadbay.valueSynonyms"'
    if enum is None:
        raise TemplateError(f'{where} needs an "enum" constraint: it names allowed values.')
    if not isinstance(raw, Mapping):
        raise TemplateError(f'{where} must be an object such as {{"DE": ["Germany"]}}.')
    allowed = [_text(v) for v in enum]
    out = []
    for value in raw:
        if value not in allowed:
            raise TemplateError(f"{where} names {json.dumps(value)}, not an allowed value.")
        out.append((value, _strings(raw, value, (), where)))
    return tuple(out)


def _day_first(raw: Any, ftype: str, name: str) -> bool | None:
    if raw is None:
        return None
    if ftype not in ("date", "datetime"):
        raise TemplateError(f'Field "{name}": "dayFirst" applies to date and datetime fields.')
    if not isinstance(raw, bool):
        raise TemplateError(f'Field "{name}": "dayFirst" must be true or false.')
    return raw


def _check_constants(field: Field) -> None:
    """enum, minimum and maximum must be values of the field's type."""
    constants = [("minimum", field.minimum), ("maximum", field.maximum)]
    constants += [("enum", v) for v in field.enum or ()]
    for key, value in constants:
        if value is not None and parse_one(field, _text(value)) is None:
            shape = f" in the format {field.format}" if field.format != "default" else ""
            raise TemplateError(
                f'Field "{field.name}": "{key}" value {json.dumps(value)} is not a valid '
                f"{field.type}{shape}."
            )


def _strings(
    raw: Mapping[str, Any], key: str, default: tuple[str, ...], where: str
) -> tuple[str, ...]:
    """A list of strings (a bare string would otherwise be split into its characters)."""
    if key not in raw:
        return default
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TemplateError(f'{where}: "{key}" must be a list of strings.')
    return tuple(value)


def field_classification(raw: Mapping[str, Any]) -> str | None:
    """A field's `x-loadbay.classification` (None when unclassified), or TemplateError."""
    ext = raw.get("x-loadbay", {})
    value = ext.get("classification") if isinstance(ext, Mapping) else None
    if value is not None and value not in CLASSIFICATIONS:
        raise TemplateError(
            f'Field "{raw.get("name")}": "x-loadbay.classification" must be one of '
            f"{', '.join(CLASSIFICATIONS)}."
        )
    return value if isinstance(value, str) else None


def personal_fields(schema: Mapping[str, Any]) -> frozenset[str]:
    """The names of a template's fields classified as personal data (masked in previews)."""
    fields = schema.get("fields", [])
    return frozenset(
        str(f["name"])
        for f in (fields if isinstance(fields, list) else [])
        if isinstance(f, Mapping) and "name" in f and field_classification(f) == PERSONAL
    )
