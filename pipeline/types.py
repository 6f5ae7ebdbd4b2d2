"""Table Schema types and formats: columns of text cells to typed Arrow arrays.

`parse` returns the typed column with null wherever a cell does not parse. Arrow's casts
do the work where they are strict enough (integer, number, datetime); everything else is
decided once per distinct value (`Distinct`) and spread back to the rows with `take`, so
a million rows cost what their distinct values cost. A format that is a regex (dates,
times, e-mail, URI, UUID...) on a column of mostly distinct values is checked over the
whole column at once instead (`pipeline.scan`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import arro3.compute as acc
import arro3.core as ac

from pipeline.scan import containing, mismatched, mostly_unique, null_at, positions
from pipeline.schema import Field

# "any" accepts these unambiguous spellings (never 01/02/2024: day or month first?).
ANY_DATE_PATTERNS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%d.%m.%Y", "%d %B %Y", "%d %b %Y",
                     "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%b %d %Y")  # fmt: skip
ANY_TIME_PATTERNS = ("%H:%M:%S", "%H:%M", "%I:%M %p", "%I:%M:%S %p", "%I%p", "%I %p")
# Years 1-9999 (what Python's datetime and PostgreSQL hold); hours 00-23, seconds 00-59
# (Arrow would take 23:59:60 as the next midnight).
_ISO_DATE = re.compile(r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}")
_ISO_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?")
_LEAP_SECOND = re.compile(r"[0-9]{2}:[0-9]{2}:60(?![0-9])")
_INT8 = ac.DataType.int8()
# Microseconds since 1970 of 0001-01-01T00:00:00Z and of 9999-12-31T23:59:59.999999Z.
_FIRST_INSTANT = -62_135_596_800_000_000
_LAST_INSTANT = 253_402_300_799_999_999
_YEAR = re.compile(r"[0-9]{4}")
_YEARMONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
_DURATION = re.compile(
    r"P(?!$)([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?"
    r"(T(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?"
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_COMMON_SHAPES = {  # a format's usual cells, checked first (`pipeline.scan.mismatched`)
    # Most addresses: a subset of _EMAIL that Python's regex engine checks about 1.6x faster.
    _EMAIL.pattern: re.compile(
        r"^[A-Za-z0-9._+-]++@(?:[A-Za-z0-9-]++\.)++[A-Za-z0-9]++$", re.MULTILINE
    ),
}
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_BARE_NUMBER = re.compile(r"^[^-+0-9.]*|[^0-9.]*$")
_BARE_INTEGER = re.compile(r"^[^-+0-9]*|[^0-9]*$")
_HUMAN = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%H": "hh", "%I": "hh",
          "%M": "mm", "%S": "ss", "%f": "ffffff", "%p": "AM/PM", "%b": "Mon", "%B": "Month",
          "%z": "+hhmm", "%%": "%"}  # fmt: skip
_HUMAN_RE = re.compile("|".join(re.escape(k) for k in _HUMAN))

_TextParser = Callable[[str], "str | None"] | re.Pattern[str]
"""How a text type reads a cell: a function giving canonical text (or None), or a regex
the cell must match whole (checked over the whole column at once: `pipeline.scan`)."""


@dataclass(frozen=True)
class Distinct:
    """A column's distinct values (nulls left out) and each row's key into them."""

    values: list[Any]
    keys: ac.Array

    @classmethod
    def of(cls, column: ac.Array) -> Distinct:
        encoded = dictionary_encode(column)
        values = list(ac.dictionary_dictionary(encoded).to_pylist())
        if column.type == ac.DataType.bool():
            values = [bool(v) for v in values]
        return cls(values, ac.dictionary_indices(encoded))

    @classmethod
    def for_checks(cls, column: ac.Array) -> Distinct:
        """Values to check once each, for checks that look at one value at a time.

        A mostly-unique text column (e-mails, ids, phone numbers) is not dictionary-encoded:
        that would cost more than it saves. Each row is then its own entry (an empty cell
        stands as ""), so values may repeat: never use this for equality (unique, keys).
        """
        if mostly_unique(column):
            values = ["" if v is None else v for v in column.to_pylist()]
            return cls(values, ac.Array(range(len(values)), ac.DataType.int64()))
        return cls.of(column)

    def spread(self, answers: list[Any], dtype: ac.DataType) -> ac.Array:
        """One answer per distinct value, given back to every row (null rows stay null)."""
        return acc.take(ac.Array(answers, dtype), self.keys)


def dictionary_encode(column: ac.Array) -> ac.Array:
    """Arrow's dictionary encoding (distinct values in order of first appearance); booleans,
    which Arrow cannot encode, as 0 and 1."""
    if column.type == ac.DataType.bool():
        column = acc.cast(column, ac.DataType.int8())
    return acc.dictionary_encode(column)


def arrow_type(field: Field) -> ac.DataType:
    """The Arrow type a field's values are delivered as."""
    if field.type == "integer":
        return ac.DataType.int64()
    if field.type == "number":
        return ac.DataType.float64()
    if field.type == "boolean":
        return ac.DataType.bool()
    if field.type == "date":
        return ac.DataType.date32()
    if field.type == "datetime":
        return ac.DataType.timestamp("us", tz="UTC")
    if field.type == "time":
        return ac.DataType.time64("us")
    if field.type == "year":
        return ac.DataType.int32()
    return ac.DataType.string()  # string, yearmonth ("2024-05"), duration (ISO 8601), any


def parse(field: Field, column: ac.Array) -> ac.Array:
    """Typed values of a column of text cells; null where a cell is empty or does not parse."""
    target = arrow_type(field)
    if field.type == "integer":  # beyond 64 bits Arrow's cast gives null: a type error
        if field.bare_number and not field.group_char:
            return acc.cast(column, target)
        return _normalised(column, target, lambda v: _number_text(field, v, integer=True))
    if field.type == "number":
        if field.bare_number and not field.group_char and field.decimal_char == ".":
            return _finite(acc.cast(column, target))
        return _finite(_normalised(column, target, lambda v: _number_text(field, v, integer=False)))
    if field.type == "boolean":
        truth = {v: True for v in field.true_values} | {v: False for v in field.false_values}
        distinct = Distinct.of(column)
        return distinct.spread([truth.get(v) for v in distinct.values], target)
    if field.type == "datetime" and field.format == "default":
        typed = acc.cast(column, target)
        return _within_years(null_at(typed, _leap_seconds(column, typed)))
    if (field.type == "string" and field.format == "default") or field.type == "any":
        return column
    how = _TEXT_PARSERS[field.type](field)
    typed = (
        _matched(column, target, how)
        if isinstance(how, re.Pattern)
        else (_normalised(column, target, how))
    )
    return _within_years(typed) if field.type == "datetime" else typed  # a zone can cross


def parse_one(field: Field, text: str) -> Any:
    """One cell's typed value (None if it does not parse): for constants and fixes."""
    return parse(field, ac.Array([text], ac.DataType.string())).to_pylist()[0]


def not_finite(field: Field, text: str) -> bool:
    """Whether a number cell failed its type for being NaN or infinite (not for its text)."""
    if field.type != "number":
        return False
    number = _number_text(field, text, integer=False)
    try:
        return number is not None and not math.isfinite(float(number))
    except ValueError:
        return False


_WHOLE = re.compile(r"[-+]?[0-9]+")


def too_large(field: Field, text: str) -> bool:
    """Whether an integer cell failed its type for being outside 64 bits (not for its text)."""
    if field.type != "integer":
        return False
    number = _number_text(field, text, integer=True)
    return (
        number is not None
        and _WHOLE.fullmatch(number) is not None
        and (not -(2**63) <= int(number) < 2**63)
    )


def human_pattern(pattern: str) -> str:
    """'%d/%m/%Y' -> 'DD/MM/YYYY'."""
    return _HUMAN_RE.sub(lambda m: _HUMAN[m.group(0)], pattern)


def strptime(text: str, pattern: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, pattern)  # naive: taken as UTC by the caller
    except ValueError:
        return None


def _finite(typed: ac.Array) -> ac.Array:
    """Numbers with NaN and infinities made null: JSON and most databases cannot hold them.

    x - x is 0 for a finite x and NaN otherwise, and NaN does not cast to an integer.
    """
    zeros = acc.cast(acc.sub(typed, typed), ac.DataType.int8())
    if zeros.null_count == typed.null_count:
        return typed
    return null_at(typed, _among_values(typed, acc.is_null(_values_of(typed, zeros))))


def _within_years(typed: ac.Array) -> ac.Array:
    """Timestamps outside years 1-9999 UTC made null (a zone can move 0001-01-01 into year 0)."""
    instants = acc.cast(typed, ac.DataType.int64())
    low, high = acc.min(instants).as_py(), acc.max(instants).as_py()
    if low is None or (low >= _FIRST_INSTANT and high <= _LAST_INSTANT):
        return typed
    values = _values_of(typed, instants)
    first = ac.Scalar(_FIRST_INSTANT, ac.DataType.int64())
    last = ac.Scalar(_LAST_INSTANT, ac.DataType.int64())
    unsigned = ac.DataType.uint64()  # a negative difference does not cast: null
    early = _among_values(typed, acc.is_null(acc.cast(acc.sub(values, first), unsigned)))
    late = _among_values(typed, acc.is_null(acc.cast(acc.sub(last, values), unsigned)))
    return null_at(typed, sorted(early + late))


def _leap_seconds(column: ac.Array, typed: ac.Array) -> list[int]:
    """Cells that Arrow read as a time but hold second 60: it gives second 0 of the next
    minute, so only the cells at second 0 are searched (in their text, all at once)."""
    if typed.null_count == len(typed):
        return []
    ticking = acc.cast(acc.cast(acc.date_part(typed, "second"), ac.DataType.bool()), _INT8)
    at_zero = acc.cast(acc.sub(ac.Scalar(1, _INT8), ticking), ac.DataType.bool())
    rows = acc.filter(positions(len(typed)), at_zero)  # a null second (no value) is left out
    if len(rows) == 0:
        return []
    found = containing(acc.take(column, rows), _LEAP_SECOND)
    return list(acc.take(rows, ac.Array(found, ac.DataType.int64())).to_pylist()) if found else []


def _values_of(typed: ac.Array, column: ac.Array) -> ac.Array:
    """`column`'s values at the rows where `typed` has one."""
    return acc.filter(column, acc.is_not_null(typed))


def _among_values(typed: ac.Array, mask: ac.Array) -> list[int]:
    """Row indices of the values of `typed` (nulls skipped) that `mask` marks."""
    rows = acc.filter(positions(len(typed)), acc.is_not_null(typed))
    return list(acc.filter(rows, mask).to_pylist())


def _normalised(
    column: ac.Array, target: ac.DataType, to_text: Callable[[str], str | None]
) -> ac.Array:
    """Each distinct value rewritten to the canonical text Arrow casts (or None), then cast."""
    distinct = Distinct.for_checks(column)
    canonical = ac.Array(list(map(to_text, distinct.values)), ac.DataType.string())
    return acc.take(acc.cast(canonical, target), distinct.keys)


def _matched(column: ac.Array, target: ac.DataType, pattern: re.Pattern[str]) -> ac.Array:
    """The cells that match `pattern` (others null), cast: a text format checked, then typed."""
    if not mostly_unique(column):
        return _normalised(column, target, lambda v: v if pattern.fullmatch(v) else None)
    kept = null_at(column, mismatched(column, pattern, _COMMON_SHAPES.get(pattern.pattern)))
    return kept if target == ac.DataType.string() else acc.cast(kept, target)


def _number_text(field: Field, text: str, integer: bool) -> str | None:
    if field.group_char:
        text = text.replace(field.group_char, "")
    if not field.bare_number:
        text = (_BARE_INTEGER if integer else _BARE_NUMBER).sub("", text)
    if field.decimal_char != ".":
        if "." in text:
            return None
        text = text.replace(field.decimal_char, ".")
    return text


def _date(field: Field) -> _TextParser:
    if field.format == "default":
        return _ISO_DATE
    patterns = ANY_DATE_PATTERNS if field.format == "any" else (field.format,)
    return lambda v: _first(v, patterns, lambda d: d.date().isoformat())


def _datetime(field: Field) -> _TextParser:
    if field.format == "any":
        return _any_datetime
    return lambda v: _first(v, (field.format,), _utc_iso)


def _any_datetime(text: str) -> str | None:
    try:
        return _utc_iso(dt.datetime.fromisoformat(text))
    except ValueError:
        return None


def _time(field: Field) -> _TextParser:
    if field.format == "default":
        return _ISO_TIME
    patterns = ANY_TIME_PATTERNS if field.format == "any" else (field.format,)
    return lambda v: _first(v, patterns, lambda d: d.time().isoformat())


def _first(
    text: str, patterns: tuple[str, ...], render: Callable[[dt.datetime], str]
) -> str | None:
    for pattern in patterns:
        parsed = strptime(text, pattern)
        if parsed is not None:
            return render(parsed)
    return None


def _utc_iso(value: dt.datetime) -> str:
    """ISO text Arrow casts to a UTC timestamp; a value without a zone is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def _matching(pattern: re.Pattern[str]) -> Callable[[Field], _TextParser]:
    return lambda field: pattern


def _string(field: Field) -> _TextParser:
    if field.format == "binary":
        return _base64
    return {"email": _EMAIL, "uri": _URI, "uuid": _UUID}[field.format]


def _base64(text: str) -> str | None:
    if not text.isascii():  # b64decode raises ValueError, not binascii.Error, for these
        return None
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return text


_TEXT_PARSERS: dict[str, Callable[[Field], _TextParser]] = {
    "string": _string,
    "date": _date,
    "datetime": _datetime,
    "time": _time,
    "year": _matching(_YEAR),
    "yearmonth": _matching(_YEARMONTH),
    "duration": _matching(_DURATION),
}
