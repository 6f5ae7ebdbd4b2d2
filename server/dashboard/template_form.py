"""The template editor's forms <-> the Table Schema document.

A form edits what it shows and keeps the rest of the document as it was (trueValues,
missingValues, keys another tool wrote): a field's form starts from the field's own JSON
object and overwrites only its inputs. Whether the result is a valid template is the
engine's to say (server.templates parses every version with pipeline.template).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.schema import RowPolicy
from pipeline.template import CASES, CLASSIFICATIONS, SUPPORTED_TYPES
from server.errors import Invalid

Get = Callable[[str], str]
CLASSIFICATION_LABELS = {
    "public": "public",
    "internal": "internal",
    "confidential": "confidential",
    "personal": "personal data",
}
TYPES = SUPPORTED_TYPES
CASES_LIST = CASES
POLICIES = tuple(p.value for p in RowPolicy)
CONSTRAINT_TEXTS = ("pattern",)
CONSTRAINT_BOUNDS = ("minimum", "maximum")
CONSTRAINT_LENGTHS = ("minLength", "maxLength")


@dataclass(frozen=True)
class FieldValues:
    """A field as its form shows it."""

    name: str = ""
    title: str = ""
    description: str = ""
    type: str = "string"
    format: str = ""
    required: bool = False
    unique: bool = False
    enum: str = ""
    pattern: str = ""
    minimum: str = ""
    maximum: str = ""
    min_length: str = ""
    max_length: str = ""
    synonyms: str = ""
    classification: str = ""
    trim: bool = False
    case: str = ""
    date_from: str = ""
    phone: str = ""

    @classmethod
    def of(cls, raw: dict[str, Any]) -> FieldValues:
        c = raw.get("constraints") or {}
        ext = raw.get("x-loadbay") or {}
        transforms = ext.get("transforms") or []
        options: dict[str, Any] = {}
        for t in transforms:
            if isinstance(t, dict) and len(t) == 1:
                options.update(t)
        phone = options.get("phone")
        return cls(
            name=str(raw.get("name", "")),
            title=str(raw.get("title", "")),
            description=str(raw.get("description", "")),
            type=str(raw.get("type", "string")),
            format="" if raw.get("format", "default") == "default" else str(raw["format"]),
            required=c.get("required") is True,
            unique=c.get("unique") is True,
            enum="\n".join(_text(v) for v in c.get("enum") or []),
            pattern=str(c.get("pattern") or ""),
            minimum=_text(c.get("minimum")),
            maximum=_text(c.get("maximum")),
            min_length=_text(c.get("minLength")),
            max_length=_text(c.get("maxLength")),
            synonyms="\n".join(str(s) for s in ext.get("synonyms") or []),
            classification=str(ext.get("classification") or ""),
            trim="trim" in transforms,
            case=str(options.get("case") or ""),
            date_from="\n".join(str(p) for p in options.get("dateFrom") or []),
            phone=str(phone.get("region", "")) if isinstance(phone, dict) else "",
        )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _whole(get: Get, key: str, label: str, where: str) -> int | None:
    raw = get(key).strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        raise Invalid(f"{where}: {label} is a whole number, 0 or more (it was {raw[:20]!r}).")
    return int(raw)


def _bound(raw: str, ftype: str) -> int | float | str:
    """A minimum or maximum as JSON: a number for number types, else the text (a date)."""
    if ftype == "integer" and raw.lstrip("-").isdigit():
        return int(raw)
    if ftype == "number":
        try:
            return float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            return raw  # the engine says it is not a number
    return raw


def field_from_form(base: dict[str, Any], get: Get) -> dict[str, Any]:
    """The field's JSON object with the form's values written over `base`."""
    out = copy.deepcopy(base)
    name = get("name").strip()
    where = f'Field "{name}"' if name else "The field"
    if not name:
        raise Invalid("A field needs a name (the column's key in the rows delivered).")
    ftype = get("type")
    if ftype not in TYPES:
        raise Invalid(f"{where}: choose a type from the list.")
    out["name"], out["type"] = name, ftype
    for key in ("title", "description"):
        value = get(key).strip()
        if value:
            out[key] = value
        else:
            out.pop(key, None)
    fmt = get("format").strip()
    if fmt and fmt != "default":
        out["format"] = fmt
    else:
        out.pop("format", None)
    constraints: dict[str, Any] = dict(out.get("constraints") or {})
    for key in ("required", "unique"):
        if get(key) == "on":
            constraints[key] = True
        else:
            constraints.pop(key, None)
    values: dict[str, Any] = {
        "enum": _lines(get("enum")) or None,
        "pattern": get("pattern").strip() or None,
        "minimum": _bound(get("minimum").strip(), ftype) if get("minimum").strip() else None,
        "maximum": _bound(get("maximum").strip(), ftype) if get("maximum").strip() else None,
        "minLength": _whole(get, "min_length", "the shortest length", where),
        "maxLength": _whole(get, "max_length", "the longest length", where),
    }
    for key, value in values.items():
        if value is None:
            constraints.pop(key, None)
        else:
            constraints[key] = value
    if constraints:
        out["constraints"] = constraints
    else:
        out.pop("constraints", None)
    out["x-loadbay"] = _extension(dict(out.get("x-loadbay") or {}), get, where)
    if not out["x-loadbay"]:
        del out["x-loadbay"]
    return out


def _extension(ext: dict[str, Any], get: Get, where: str) -> dict[str, Any]:
    synonyms = _lines(get("synonyms"))
    if synonyms:
        ext["synonyms"] = synonyms
    else:
        ext.pop("synonyms", None)
    classification = get("classification")
    if classification and classification not in CLASSIFICATIONS:
        raise Invalid(f"{where}: choose a classification from the list.")
    if classification:
        ext["classification"] = classification
    else:
        ext.pop("classification", None)
    transforms: list[Any] = []
    if get("trim") == "on":
        transforms.append("trim")
    case = get("case")
    if case and case not in CASES:
        raise Invalid(f"{where}: the case transform is one of {', '.join(CASES)}.")
    if case:
        transforms.append({"case": case})
    patterns = _lines(get("date_from"))
    if patterns:
        transforms.append({"dateFrom": patterns})
    region = get("phone").strip().upper()
    if region:
        transforms.append({"phone": {"region": region}})
    if transforms:
        ext["transforms"] = transforms
    else:
        ext.pop("transforms", None)
    return ext


def settings_from_form(schema: dict[str, Any], get: Get, primary_key: list[str]) -> dict[str, Any]:
    """The template-wide settings: name, title, retention, no-store, invalid-row policy and
    the primary key, written over `schema`."""
    out = copy.deepcopy(schema)
    name = get("name").strip()
    if not name:
        raise Invalid("A template needs a name (its Table Schema name).")
    out["name"] = name
    title = get("title").strip()
    if title:
        out["title"] = title
    else:
        out.pop("title", None)
    ext: dict[str, Any] = dict(out.get("x-loadbay") or {})
    retention = _whole(get, "retention_days", "the retention", "The template")
    if get("no_store") == "on":
        ext["retentionDays"] = 0
    elif retention is None:
        ext.pop("retentionDays", None)
    else:
        ext["retentionDays"] = retention
    policy = get("invalid_row_policy")
    if policy and policy not in POLICIES:
        raise Invalid(f"The invalid-row policy is one of {', '.join(POLICIES)}.")
    if policy:
        ext["invalidRowPolicy"] = policy
    else:
        ext.pop("invalidRowPolicy", None)
    if ext:
        out["x-loadbay"] = ext
    else:
        out.pop("x-loadbay", None)
    if primary_key:
        out["primaryKey"] = primary_key
    else:
        out.pop("primaryKey", None)
    return out


def new_schema(get: Get) -> dict[str, Any]:
    """A first version: its name, title and first field."""
    field_name, ftype = get("field_name").strip(), get("field_type") or "string"
    if not field_name:
        raise Invalid("Give the template's first field a name; add more fields afterwards.")
    schema: dict[str, Any] = {
        "name": get("name").strip(),
        "fields": [{"name": field_name, "type": ftype}],
    }
    if not schema["name"]:
        raise Invalid("A template needs a name (its Table Schema name).")
    if get("title").strip():
        schema["title"] = get("title").strip()
    return schema
