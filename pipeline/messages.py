"""Every message a cell error shows, by key, in every language the engine speaks.

A `CellError` carries a key and the parameters its message needs; the text is made here,
when it is shown (`render`), so a page in another language renders the same error from
the same data. A template is a `str.format` pattern over the parameters. `value` is
always the cell's text as shown (cut at 60 characters); quotes belong to the language.

To add a language, add a table with the same keys (the tests check that they match).
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_LANGUAGE = "en"

_TYPE_DATETIME = "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)"

ENGLISH: dict[str, str] = {
    "required": "{label} is required, but this cell is empty.",
    # type-error: the cell is not a value of its field's type
    "type.integer": '"{value}" is not a whole number.',
    "type.integer.decimal": '"{value}" is not a whole number (use {decimal!r} for decimals).',
    "type.integer.grouped": (
        '"{value}" is not a whole number (use {decimal!r} for decimals and {group!r} '
        "between thousands)."
    ),
    "type.integer.range": (
        '"{value}" is a whole number beyond the 64 bits loadbay holds (-9223372036854775808 '
        "to 9223372036854775807). Make the field a number, or text, to keep it."
    ),
    "type.number": '"{value}" is not a number.',
    "type.number.decimal": '"{value}" is not a number (use {decimal!r} for decimals).',
    "type.number.grouped": (
        '"{value}" is not a number (use {decimal!r} for decimals and {group!r} between thousands).'
    ),
    "type.number.finite": '"{value}" is not a finite number.',
    "type.boolean": '"{value}" is not one of {allowed}.',
    "type.date": '"{value}" is not a date (use YYYY-MM-DD).',
    "type.date.any": '"{value}" is not a date.',
    "type.date.pattern": '"{value}" is not a date in the form {form}.',
    "type.datetime": f'"{{value}}" {_TYPE_DATETIME}.',
    "type.datetime.any": '"{value}" is not a date and time.',
    "type.datetime.pattern": '"{value}" is not a date and time in the form {form}.',
    "type.time": '"{value}" is not a time of day (use hh:mm:ss).',
    "type.time.any": '"{value}" is not a time of day.',
    "type.time.pattern": '"{value}" is not a time of day in the form {form}.',
    "type.year": '"{value}" is not a year (use YYYY).',
    "type.yearmonth": '"{value}" is not a year and month (use YYYY-MM).',
    "type.duration": '"{value}" is not a duration (use ISO 8601, such as P1DT2H or PT30M).',
    "type.email": '"{value}" is not an e-mail address.',
    "type.uri": '"{value}" is not a URI (such as https://example.com/page).',
    "type.uuid": '"{value}" is not a UUID (such as 123e4567-e89b-12d3-a456-426614174000).',
    "type.binary": '"{value}" is not base64-encoded data.',
    "type.phone": '"{value}" is not a phone number (such as +44 20 7946 0958).',
    # constraint-error
    "enum": '"{value}" is not one of the allowed values: {allowed}.',
    "minimum": '"{value}" is less than the minimum allowed, {limit}.',
    "minimum.temporal": '"{value}" is earlier than the earliest allowed, {limit}.',
    "maximum": '"{value}" is more than the maximum allowed, {limit}.',
    "maximum.temporal": '"{value}" is later than the latest allowed, {limit}.',
    "minLength": '"{value}" has {length} characters; at least {limit} are required.',
    "maxLength": '"{value}" has {length} characters; at most {limit} are allowed.',
    "pattern": '"{value}" does not match the pattern {pattern}.',
    "unique": '"{value}" is already in row {first_row}: {label} must be unique.',
    "primaryKey": (
        "The key ({labels}) {values} is already in row {first_row}: each row's key must be unique."
    ),
    # row errors (no field): the row does not fit the header
    "extra-cell": (
        "Row {row} has {count} cells but the header has {width}; the cells after column "
        '{width} hold "{cells}". Check for an unquoted delimiter, or delete the row.'
    ),
    "missing-cell": (
        "Row {row} has {count} cell(s) but the header has {width}; the missing cells are "
        "read as empty. Check for a missing delimiter or a line break, or delete the row."
    ),
}

CATALOGUE: dict[str, dict[str, str]] = {"en": ENGLISH}
"""Language -> key -> message template."""


def render(key: str, params: Mapping[str, object], language: str = DEFAULT_LANGUAGE) -> str:
    """The message for `key` with its parameters, in `language` (English if there is none)."""
    table = CATALOGUE.get(language, ENGLISH)
    return table.get(key, ENGLISH[key]).format_map(params)
