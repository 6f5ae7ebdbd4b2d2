"""Dates written 05/06/2024: day first or month first? Found in the cells that are not
dates the field accepts, asked once per column, and converted to ISO for every cell."""

from __future__ import annotations

import datetime as dt
import re

from pipeline.protocol import DateExample, DateQuestion
from pipeline.review.overlay import Overlay
from pipeline.review.recheck import RowErrors
from pipeline.schema import Field

EXAMPLES = 3
# d/m/y or m/d/y with /, . or - between, a two- or four-digit year
_NUMERIC_DATE = re.compile(r"\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})\s*")


def read(text: str, day_first: bool) -> dt.date | None:
    """`text` as a date in the given order, or None if it is not one."""
    match = _NUMERIC_DATE.fullmatch(text)
    if match is None:
        return None
    first, _, second, year = match.groups()
    day, month = (first, second) if day_first else (second, first)
    full_year = int(year) + (2000 if int(year) < 70 else 1900) if len(year) == 2 else int(year)
    try:
        return dt.date(full_year, int(month), int(day))
    except ValueError:
        return None


def iso(field: Field, date: dt.date) -> str:
    return date.isoformat() if field.type == "date" else f"{date.isoformat()}T00:00:00Z"


def type_error_rows(errors: RowErrors, name: str) -> list[int]:
    return errors.kept_rows_of(name, lambda e: e.code == "type-error")


def date_question(overlay: Overlay, errors: RowErrors, field: Field) -> DateQuestion | None:
    """The question for a date field whose rejected cells hold numeric dates; None when
    none of them could be read both ways (then the one-click fix already handles them)."""
    if field.type not in ("date", "datetime"):
        return None
    rows = type_error_rows(errors, field.name)
    if not rows:
        return None
    ambiguous = 0
    only: dict[bool, int] = {True: 0, False: 0}
    convertible = {True: 0, False: 0}
    examples: list[DateExample] = []
    for value in overlay.values(rows, field.name):
        if value is None:
            continue
        day, month = read(value, True), read(value, False)
        convertible[True] += day is not None
        convertible[False] += month is not None
        if day and month and day != month:
            ambiguous += 1
            if len(examples) < EXAMPLES and value not in {e.value for e in examples}:
                examples.append(DateExample(value, day.isoformat(), month.isoformat()))
        elif (day is None) != (month is None):
            only[day is not None] += 1
    if not ambiguous:
        return None
    hint = None if only[True] == only[False] else only[True] > only[False]
    order = field.day_first if field.day_first is not None else (hint if hint is not None else True)
    return DateQuestion(
        field=field.name,
        ambiguous=ambiguous,
        convertible=convertible[order],
        examples=tuple(examples),
        declared=field.day_first,
        hint=hint,
    )


def converted_cells(
    overlay: Overlay, errors: RowErrors, field: Field, day_first: bool
) -> list[tuple[int, str]]:
    """(row index, ISO date) for every rejected cell of the field the order reads."""
    rows = type_error_rows(errors, field.name)
    out = []
    for index, value in zip(rows, overlay.values(rows, field.name), strict=True):
        date = read(value, day_first) if value is not None else None
        if date is not None:
            out.append((index, iso(field, date)))
    return out
