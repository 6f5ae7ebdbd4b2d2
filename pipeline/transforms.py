"""Preparing cells before validation: missing values to null, then `x-loadbay` transforms.

The browser and the server both call `prepare`, so both judge the same values. Every
transform is idempotent (trimmed text stays trimmed, ISO dates stay ISO, E.164 numbers
stay E.164), so preparing cells that were already prepared changes nothing. Work is done
once per distinct value and spread back to the rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import arro3.compute as acc
import arro3.core as ac

from pipeline.scan import null_at, positions, replaced
from pipeline.schema import Field, Template, Transform
from pipeline.types import Distinct, dictionary_encode, parse_one, strptime

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Spellings a one-click fix may turn into ISO (day-first and month-first when unambiguous).
_FIX_DATE_PATTERNS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%Y%m%d",
                      "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y")  # fmt: skip
_YES_NO = {"yes": True, "y": True, "t": True, "on": True, "no": False, "n": False, "f": False,
           "off": False}  # fmt: skip
_GROUPED = re.compile(r"[-+]?[0-9]{1,3}([, '\u00a0][0-9]{3})+(\.[0-9]+)?")
_DECIMAL_COMMA = re.compile(r"[-+]?[0-9]+,[0-9]{1,2}")


def prepare(table: ac.Table, field: Field, template: Template) -> ac.Array:
    """A field's column with missing values as null and the field's transforms applied.

    One column at a time: the caller holds one prepared column, never a copy of the table.
    """
    return prepare_column(field, table.column(field.name).combine_chunks(), template)


def prepare_column(field: Field, column: ac.Array, template: Template) -> ac.Array:
    missing = set(template.missing_values)
    if "" not in missing and column.null_count:
        # An empty cell is the empty string unless `missingValues` lists "" (Table Schema):
        # a value of its type or a type error, never a missing value.
        column = replaced(column, [(i, "") for i in _nulls(column)])
    if not field.transforms and (
        not missing or (missing == {""} and acc.min(column).as_py() != "")
    ):
        return column  # "" sorts first: if it is not the minimum, no cell is empty
    if not field.transforms and missing == {""}:  # the usual case: only "" changes (to null)
        return _empty_as_null(column)
    distinct = Distinct.of(column)
    prepared = [_prepared(field, v, missing) for v in distinct.values]
    return distinct.spread(prepared, ac.DataType.string())


def _empty_as_null(column: ac.Array) -> ac.Array:
    """A text column holding "" with its empty cells made null, in Arrow: the distinct
    values (C) with "" nulled, given back to the rows. "" is found among them as their
    minimum by halving (`min` over shrinking slices), so no Python string is made per
    distinct value (a column of a million distinct dates held a million)."""
    encoded = dictionary_encode(column)
    values = ac.dictionary_dictionary(encoded)
    lo, hi = 0, len(values)  # "" is in values[lo:hi]: the caller saw it as the minimum
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if acc.min(values.slice(lo, mid - lo)).as_py() == "":
            hi = mid
        else:
            lo = mid
    return acc.take(null_at(values, [lo]), ac.dictionary_indices(encoded))


def _nulls(column: ac.Array) -> list[int]:
    return list(acc.filter(positions(len(column)), acc.is_null(column)).to_pylist())


def _prepared(field: Field, value: str, missing: set[str]) -> str | None:
    if value in missing:
        return None
    for transform in field.transforms:
        value = apply(transform, field, value)
    return None if value in missing else value


def apply(transform: Transform, field: Field, value: str) -> str:
    """One transform of one value; a value it cannot handle is left for validation to flag."""
    if transform.name == "trim":
        return value.strip()
    if transform.name == "case":
        return {"upper": value.upper, "lower": value.lower, "title": value.title}[
            str(transform.option)
        ]()
    if transform.name == "dateFrom":
        return _date_from(field, value, tuple(transform.option))
    return _phone(value, str(transform.option))


def _date_from(field: Field, value: str, patterns: tuple[str, ...]) -> str:
    if parse_one(field, value) is not None:
        return value  # already what the field accepts (ISO by default)
    for pattern in patterns:
        parsed = strptime(value, pattern)
        if parsed is not None:
            return parsed.date().isoformat() if field.type == "date" else _iso(parsed)
    return value


def _iso(value: dt.datetime) -> str:
    return value.isoformat() if value.tzinfo else value.isoformat() + "Z"


def _phone(value: str, region: str) -> str:
    if E164.fullmatch(value):
        return value
    import phonenumbers  # imported on first use: most templates have no phone field

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def propose_fix(field: Field, value: str) -> str | None:
    """A corrected value the user can accept in one click, or None if there is no safe one.

    Only a value the field accepts (type, format and enum) is proposed: surrounding
    whitespace trimmed, a date spelled another way in ISO, an enum value in other case,
    yes/no for a boolean, thousands separators or a decimal comma in a number.
    """
    for candidate in _candidates(field, value.strip()):
        if candidate != value and _accepted(field, candidate):
            return candidate
    return None


def _candidates(field: Field, value: str) -> Iterator[str]:
    yield value
    for transform in field.transforms:
        value = apply(transform, field, value)
    yield value
    if field.enum is not None:
        yield from (e for e in field.enum if e.casefold() == value.casefold())
    if field.type in ("date", "datetime"):
        dates = {d for p in _FIX_DATE_PATTERNS if (d := strptime(value, p)) is not None}
        if len(dates) == 1:  # 03/04/2024 could be either: no proposal
            (parsed,) = dates
            yield parsed.date().isoformat() if field.type == "date" else _iso(parsed)
    if field.type == "boolean" and value.lower() in _YES_NO:
        yield (field.true_values if _YES_NO[value.lower()] else field.false_values)[0]
    if field.type in ("integer", "number"):
        if _GROUPED.fullmatch(value):
            yield re.sub(r"[, '\u00a0]", "", value)
        if field.type == "number" and _DECIMAL_COMMA.fullmatch(value):
            yield value.replace(",", ".")


def _accepted(field: Field, value: str) -> bool:
    typed = parse_one(field, value)
    if typed is None:
        return False
    if any(t.name == "phone" for t in field.transforms) and not E164.fullmatch(value):
        return False
    return field.enum is None or typed in {parse_one(field, e) for e in field.enum}
