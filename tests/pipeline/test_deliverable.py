"""Values that validate must be deliverable (issue #15): what Python's datetime, PostgreSQL
and JSON cannot hold is a type error at validation, not a crash or a changed value later."""

from __future__ import annotations

from typing import Any

import arro3.core as ac
import pyarrow as pa
import pytest

from pipeline.template import Template, parse_template
from pipeline.validation import coerce, validate


def template(**field: Any) -> Template:
    return parse_template({"fields": [{"name": "a", **field}]})


def column(values: list[str | None]) -> ac.Table:
    schema = ac.Schema([ac.Field("a", ac.DataType.string(), True)])
    return ac.Table.from_arrays([ac.Array(values, ac.DataType.string())], schema=schema)


def type_errors(field: dict[str, Any], values: list[str | None]) -> list[tuple[int, str]]:
    errors = validate(column(values), template(**field))
    assert all(e.code == "type-error" for e in errors)
    return [(e.row, e.message) for e in errors]


def delivered(field: dict[str, Any], values: list[str | None]) -> list[Any]:
    """What the server delivers for cells that passed: pyarrow's Python values."""
    t = template(**field)
    assert validate(column(values), t) == []
    return pa.table(coerce(column(values), t)).column("a").to_pylist()


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ({"type": "date"}, "0000-01-01", "is not a date (use YYYY-MM-DD)"),
        ({"type": "date"}, "0000-12-31", "is not a date (use YYYY-MM-DD)"),
        (
            {"type": "datetime"},
            "0000-06-01T12:00:00",
            "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)",
        ),
        (  # year 1 in its own zone, year 0 in UTC
            {"type": "datetime"},
            "0001-01-01T00:30:00+01:00",
            "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)",
        ),
        (
            {"type": "datetime"},
            "9999-12-31T23:30:00-01:00",
            "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)",
        ),
        (
            {"type": "datetime", "format": "any"},
            "0001-01-01T00:30:00+01:00",
            "is not a date and time",
        ),
        (
            {"type": "datetime", "format": "%Y-%m-%d %H:%M%z"},
            "0001-01-01 00:30+0100",
            "is not a date and time in the form YYYY-MM-DD hh:mm+hhmm",
        ),
    ],
)
def test_dates_outside_years_1_to_9999_are_type_errors(
    field: dict[str, Any], value: str, hint: str
) -> None:
    assert type_errors(field, ["2024-05-01T00:00:00Z" if field["type"] == "datetime" and
                               field.get("format") is None else None, value]) == [
        (3, f'"{value}" {hint}.')
    ]  # fmt: skip


def test_the_first_and_last_days_python_and_postgresql_hold_pass() -> None:
    import datetime as dt

    assert delivered({"type": "date"}, ["0001-01-01", "9999-12-31"]) == [
        dt.date(1, 1, 1),
        dt.date(9999, 12, 31),
    ]
    assert delivered({"type": "datetime"}, ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]) == [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    ]


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-inf", "Infinity", "-Infinity", "1e400"])
def test_numbers_that_are_not_finite_are_type_errors(value: str) -> None:
    assert type_errors({"type": "number"}, ["1.5", value]) == [
        (3, f'"{value}" is not a finite number.')
    ]


def test_not_finite_numbers_fail_their_type_before_any_bound() -> None:
    field = {"type": "number", "constraints": {"maximum": 10, "minimum": 0}}
    assert type_errors(field, ["NaN", "inf", "-inf", "abc"]) == [
        (2, '"NaN" is not a finite number.'),
        (3, '"inf" is not a finite number.'),
        (4, '"-inf" is not a finite number.'),
        (5, '"abc" is not a number.'),
    ]


def test_not_finite_numbers_are_refused_with_a_decimal_comma_too() -> None:
    field = {"type": "number", "decimalChar": ",", "groupChar": "."}
    assert type_errors(field, ["1.000,5", "NaN", "x"]) == [
        (3, '"NaN" is not a finite number.'),
        (4, "\"x\" is not a number (use ',' for decimals and '.' between thousands)."),
    ]


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ({"type": "time"}, "23:59:60", "is not a time of day (use hh:mm:ss)"),
        ({"type": "time"}, "23:59:60.5", "is not a time of day (use hh:mm:ss)"),
        ({"type": "time"}, "24:00:00", "is not a time of day (use hh:mm:ss)"),
        (
            {"type": "datetime"},
            "2024-12-31T23:59:60Z",
            "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)",
        ),
        (
            {"type": "datetime"},
            "2024-12-31 23:59:60",
            "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)",
        ),
        ({"type": "datetime", "format": "any"}, "2024-12-31T23:59:60", "is not a date and time"),
    ],
)
def test_a_leap_second_is_a_type_error_not_midnight(
    field: dict[str, Any], value: str, hint: str
) -> None:
    assert type_errors(field, [value]) == [(2, f'"{value}" {hint}.')]


def test_a_leap_second_in_a_long_column_of_distinct_times() -> None:
    """Mostly distinct values go through the whole-column path: the same answer."""
    times = [f"2024-01-01T{h:02}:{m:02}:{s:02}Z" for h in range(3) for m in range(60)
             for s in range(60)]  # fmt: skip
    times[5000] = "2024-06-30T23:59:60Z"
    errors = validate(column(times), template(type="datetime"))
    assert [(e.row, e.code) for e in errors] == [(5002, "type-error")]


def test_times_just_before_midnight_pass() -> None:
    import datetime as dt

    assert delivered({"type": "time"}, ["23:59:59.999999", "00:00:00"]) == [
        dt.time(23, 59, 59, 999999),
        dt.time(0, 0),
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ({"type": "integer"}, "9223372036854775808"),
        ({"type": "integer"}, "-9223372036854775809"),
        ({"type": "integer"}, "99999999999999999999999"),
        ({"type": "integer", "groupChar": ","}, "9,223,372,036,854,775,808"),
        ({"type": "integer", "bareNumber": False}, "$9223372036854775808"),
        ({"type": "integer", "constraints": {"minimum": 0, "unique": True}}, "1" + "0" * 30),
    ],
)
def test_integers_outside_64_bits_are_type_errors(field: dict[str, Any], value: str) -> None:
    errors = type_errors(field, ["9223372036854775807", value, value])
    assert [row for row, _ in errors] == [3, 4]
    # A whole number all the same: the message says it is too large, not that it is not one.
    assert errors[0][1].startswith(f'"{value}" is a whole number beyond the 64 bits loadbay holds')


def test_the_64_bit_limits_themselves_pass() -> None:
    assert delivered({"type": "integer"}, ["9223372036854775807", "-9223372036854775808"]) == [
        2**63 - 1,
        -(2**63),
    ]


@pytest.mark.parametrize("value", ["héllo", "aGVsbG8=é", "\u0661\u0662\u0663\u0664"])
def test_non_ascii_in_a_binary_field_is_a_type_error_not_a_crash(value: str) -> None:
    """Before: base64 raised ValueError (not binascii.Error) and the server answered 500."""
    assert type_errors({"type": "string", "format": "binary"}, ["aGVsbG8=", value]) == [
        (3, f'"{value}" is not base64-encoded data.')
    ]
