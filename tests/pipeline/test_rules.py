"""Every Table Schema type, format, constraint and x-loadbay transform; fixes; uniqueness."""

from __future__ import annotations

import datetime as dt
from typing import Any

import arro3.core as ac
import pyarrow as pa
import pytest

from pipeline.template import Template, parse_template
from pipeline.transforms import prepare, propose_fix
from pipeline.types import human_pattern
from pipeline.validation import CellError, coerce, validate


def template(*fields: dict[str, Any], **schema: Any) -> Template:
    return parse_template({"fields": list(fields), **schema})


def strings(**columns: list[str | None]) -> ac.Table:
    schema = ac.Schema([ac.Field(n, ac.DataType.string(), True) for n in columns])
    arrays = [ac.Array(v, ac.DataType.string()) for v in columns.values()]
    return ac.Table.from_arrays(arrays, schema=schema)


def found(errors: list[CellError]) -> list[tuple[int, str, str | None, str]]:
    return [(e.row, e.code, e.constraint, e.message) for e in errors]


@pytest.mark.parametrize(
    ("field", "good", "bad", "hint"),
    [
        (
            {"format": "email"},
            ["a@b.co", "x.y+z@mail.example.org"],
            "a@b",
            "is not an e-mail address",
        ),
        (
            {"format": "uri"},
            ["https://a.example/p?q=1", "mailto:a@b.co"],
            "a b",
            "is not a URI (such as https://example.com/page)",
        ),
        (
            {"format": "uuid"},
            ["123e4567-e89b-12d3-a456-426614174000"],
            "123e4567e89b",
            "is not a UUID (such as 123e4567-e89b-12d3-a456-426614174000)",
        ),
        ({"format": "binary"}, ["aGVsbG8=", ""], "not base64!", "is not base64-encoded data"),
        (
            {"type": "integer", "bareNumber": False},
            ["€95", "95%", "-3"],
            "abc",
            "is not a whole number",
        ),
        (
            {"type": "integer", "groupChar": ","},
            ["1,000,000", "12"],
            "1.5",
            "is not a whole number (use '.' for decimals and ',' between thousands)",
        ),
        (
            {"type": "number", "decimalChar": ",", "groupChar": "."},
            ["1.234,5", "-0,25", "7"],
            "1,2,3",
            "is not a number (use ',' for decimals and '.' between thousands)",
        ),
        ({"type": "number", "bareNumber": False}, ["$1.50", "12.5%"], "one", "is not a number"),
        (
            {"type": "date", "format": "%d/%m/%Y"},
            ["31/12/2024", "1/2/2024"],
            "2024-12-31",
            "is not a date in the form DD/MM/YYYY",
        ),
        (
            {"type": "date", "format": "any"},
            ["2024-12-31", "31.12.2024", "5 March 2024", "Mar 5, 2024"],
            "03/05/2024",
            "is not a date",
        ),
        (
            {"type": "datetime", "format": "%d/%m/%Y %H:%M"},
            ["31/12/2024 23:59"],
            "31/12/2024",
            "is not a date and time in the form DD/MM/YYYY hh:mm",
        ),
        (
            {"type": "datetime", "format": "any"},
            ["2024-12-31T10:00", "2024-12-31"],
            "noon",
            "is not a date and time",
        ),
        (
            {"type": "time"},
            ["10:00:00", "23:59:59.5"],
            "10:00",
            "is not a time of day (use hh:mm:ss)",
        ),
        ({"type": "time"}, ["00:00:00"], "25:00:00", "is not a time of day (use hh:mm:ss)"),
        (
            {"type": "time", "format": "any"},
            ["10:00", "3:30 PM", "10:00:01"],
            "half past",
            "is not a time of day",
        ),
        (
            {"type": "time", "format": "%H.%M"},
            ["10.30"],
            "10:30",
            "is not a time of day in the form hh.mm",
        ),
        ({"type": "year"}, ["2024", "0999"], "24", "is not a year (use YYYY)"),
        (
            {"type": "yearmonth"},
            ["2024-01", "1999-12"],
            "2024-13",
            "is not a year and month (use YYYY-MM)",
        ),
        (
            {"type": "duration"},
            ["P1Y2M3DT4H5M6S", "PT30M", "P2W", "PT0.5S"],
            "P",
            "is not a duration (use ISO 8601, such as P1DT2H or PT30M)",
        ),
        (
            {"type": "duration"},
            ["P1D"],
            "1 day",
            "is not a duration (use ISO 8601, such as P1DT2H or PT30M)",
        ),
    ],
)
def test_types_and_formats(field: dict[str, Any], good: list[str], bad: str, hint: str) -> None:
    t = template({"name": "f", **field})
    errors = validate(strings(f=[*good, bad, None]), t, first_row=10)
    assert found(errors) == [(10 + len(good), "type-error", None, f'"{bad}" {hint}.')]


def test_any_type_accepts_anything() -> None:
    assert validate(strings(f=["x", "1", "😀"]), template({"name": "f", "type": "any"})) == []


def test_typed_values() -> None:
    t = template(
        {"name": "n", "type": "number", "decimalChar": ",", "groupChar": "."},
        {"name": "i", "type": "integer", "bareNumber": False},
        {"name": "d", "type": "date", "format": "%d/%m/%Y"},
        {"name": "t", "type": "datetime", "format": "%d/%m/%Y %H:%M%z"},
        {"name": "h", "type": "time"},
        {"name": "y", "type": "year"},
        {"name": "ym", "type": "yearmonth"},
        {"name": "p", "type": "duration"},
    )
    table = strings(
        n=["1.234,5"],
        i=["€ 42"],
        d=["29/02/2024"],
        t=["01/01/2024 10:00+0200"],
        h=["10:11:12"],
        y=["1999"],
        ym=["2024-05"],
        p=["PT1H"],
    )
    assert validate(table, t) == []
    typed = pa.table(coerce(table, t))
    assert typed.to_pylist() == [
        {
            "n": 1234.5,
            "i": 42,
            "d": dt.date(2024, 2, 29),
            "t": dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC),
            "h": dt.time(10, 11, 12),
            "y": 1999,
            "ym": "2024-05",
            "p": "PT1H",
        }
    ]
    assert typed.schema.field("y").type == pa.int32()
    assert typed.schema.field("h").type == pa.time64("us")


def test_min_and_max_on_numbers_dates_times_and_years() -> None:
    t = template(
        {"name": "n", "type": "number", "constraints": {"minimum": 0, "maximum": 10.5}},
        {"name": "d", "type": "date", "constraints": {"minimum": "2024-01-01"}},
        {"name": "h", "type": "time", "constraints": {"maximum": "18:00:00"}},
        {"name": "y", "type": "year", "constraints": {"minimum": 2000, "maximum": 2030}},
        {"name": "ym", "type": "yearmonth", "constraints": {"minimum": "2024-02"}},
        {"name": "at", "type": "datetime", "constraints": {"maximum": "2024-01-01T00:00:00Z"}},
    )
    table = strings(
        n=["0", "-0.5", "10.5", "11"],
        d=["2024-01-01", "2023-12-31", None, "2025-01-01"],
        h=["18:00:00", "09:00:00", "18:00:01", None],
        y=["2000", "1999", "2031", "2030"],
        ym=["2024-02", "2024-01", "2025-01", None],
        at=["2024-01-01T01:00:00+01:00", "2024-01-01T00:00:01Z", None, None],
    )
    assert [(e.row, e.field, e.constraint, e.message) for e in validate(table, t)] == [
        (3, "n", "minimum", '"-0.5" is less than the minimum allowed, 0.'),
        (3, "d", "minimum", '"2023-12-31" is earlier than the earliest allowed, 2024-01-01.'),
        (3, "y", "minimum", '"1999" is earlier than the earliest allowed, 2000.'),
        (3, "ym", "minimum", '"2024-01" is earlier than the earliest allowed, 2024-02.'),
        (
            3,
            "at",
            "maximum",
            '"2024-01-01T00:00:01Z" is later than the latest allowed, 2024-01-01T00:00:00Z.',
        ),
        (4, "h", "maximum", '"18:00:01" is later than the latest allowed, 18:00:00.'),
        (4, "y", "maximum", '"2031" is later than the latest allowed, 2030.'),
        (5, "n", "maximum", '"11" is more than the maximum allowed, 10.5.'),
    ]


def test_lengths_count_characters_and_pattern_matches_the_whole_cell() -> None:
    t = template(
        {"name": "s", "constraints": {"minLength": 2, "maxLength": 3}},
        {"name": "code", "constraints": {"pattern": "[A-Z]{2}[0-9]"}},
    )
    table = strings(s=["ab", "zoë", "a", "abcd"], code=["AB1", "AB12", "ab1", None])
    assert found(validate(table, t)) == [
        (3, "constraint-error", "pattern", '"AB12" does not match the pattern [A-Z]{2}[0-9].'),
        (4, "constraint-error", "minLength", '"a" has 1 characters; at least 2 are required.'),
        (4, "constraint-error", "pattern", '"ab1" does not match the pattern [A-Z]{2}[0-9].'),
        (5, "constraint-error", "maxLength", '"abcd" has 4 characters; at most 3 are allowed.'),
    ]


def test_enum_on_dates_and_booleans_compares_typed_values() -> None:
    t = template(
        {"name": "d", "type": "date", "format": "any", "constraints": {"enum": ["2024-01-02"]}},
        {"name": "b", "type": "boolean", "constraints": {"enum": [True]}},
    )
    errors = validate(strings(d=["2 Jan 2024", "2024-01-03"], b=["1", "false"]), t)
    assert [(e.row, e.field, e.constraint) for e in errors] == [(3, "d", "enum"), (3, "b", "enum")]


def test_unique_reports_each_repeat_with_the_first_row() -> None:
    t = template(
        {"name": "n", "title": "Number", "type": "integer", "constraints": {"unique": True}}
    )
    errors = validate(strings(n=["1", "2", "01", None, None, "2", "x", "x"]), t)
    assert found(errors) == [
        (4, "unique-error", "unique", '"01" is already in row 2: Number must be unique.'),
        (7, "unique-error", "unique", '"2" is already in row 3: Number must be unique.'),
        (8, "type-error", None, '"x" is not a whole number.'),
        (9, "type-error", None, '"x" is not a whole number.'),
    ]


def test_composite_primary_key() -> None:
    t = template(
        {"name": "a", "type": "integer"},
        {"name": "b"},
        {"name": "c"},
        primaryKey=["a", "b"],
    )
    table = strings(
        a=["1", "1", "2", "1", "1"], b=["x", "y", "x", "x", "x"], c=["", "", "", "", ""]
    )
    assert [e.to_dict() for e in validate(table, t)] == [
        {
            "row": row,
            "field": None,  # a row error, as in Frictionless; the key's fields apart
            "code": "primary-key",
            "message": 'The key (a, b) "1", "x" is already in row 2: '
            "each row's key must be unique.",
            "fields": ["a", "b"],
            "key": "primaryKey",
            "params": {
                "labels": "a, b",
                "values": '"1", "x"',
                "first_row": 2,
                "fields": ["a", "b"],
            },
        }
        for row in (5, 6)
    ]


def test_missing_values_are_empty_before_every_check() -> None:
    t = template(
        {"name": "n", "type": "integer", "constraints": {"required": True}},
        missingValues=["", "NA", "n/a"],
    )
    assert found(validate(strings(n=["1", "NA", "n/a", "", "na"]), t)) == [
        (3, "constraint-error", "required", "n is required, but this cell is empty."),
        (4, "constraint-error", "required", "n is required, but this cell is empty."),
        (5, "constraint-error", "required", "n is required, but this cell is empty."),
        (6, "type-error", None, '"na" is not a whole number.'),
    ]
    assert pa.table(coerce(strings(n=["NA", "3"]), t)).column("n").to_pylist() == [None, 3]


@pytest.mark.parametrize("at", [[0], [999], [0, 500, 999], [17, 18], list(range(0, 1000, 7))])
def test_empty_cells_are_null_wherever_they_are_among_many_distinct_values(
    at: list[int],
) -> None:
    """ "" is found among the column's distinct values (its minimum) and only it is nulled."""
    t = template({"name": "s"})
    cells: list[str | None] = [f"v{i:04d}" for i in range(1000)]
    for i in at:
        cells[i] = ""
    cells[3 if 3 not in at else 4] = None
    expected = [None if c == "" else c for c in cells]
    prepared = prepare(ac.Table.from_arrays([ac.Array(cells, ac.DataType.string())], names=["s"]),
                       t.field("s"), t)  # fmt: skip
    assert prepared.to_pylist() == expected


def test_an_empty_missing_values_list_keeps_empty_text() -> None:
    t = template({"name": "s", "constraints": {"required": True}}, missingValues=[])
    assert validate(strings(s=[""]), t) == []


TRANSFORMED = template(
    {"name": "code", "x-loadbay": {"transforms": ["trim", {"case": "upper"}]}},
    {"name": "name", "x-loadbay": {"transforms": ["trim", {"case": "title"}]}},
    {"name": "mail", "x-loadbay": {"transforms": [{"case": "lower"}]}},
    {
        "name": "day",
        "type": "date",
        "x-loadbay": {"transforms": ["trim", {"dateFrom": ["%d/%m/%Y", "%b %d %Y"]}]},
    },
    {
        "name": "at",
        "type": "datetime",
        "x-loadbay": {"transforms": [{"dateFrom": ["%d/%m/%Y %H:%M"]}]},
    },
    {"name": "phone", "x-loadbay": {"transforms": [{"phone": {"region": "GB"}}]}},
    {"name": "req", "constraints": {"required": True}, "x-loadbay": {"transforms": ["trim"]}},
)
RAW = strings(
    code=[" gb ", "fr"],
    name=["ada LOVELACE ", "alan"],
    mail=["A@X.COM", "b@y.org"],
    day=[" 31/12/2024", "Jan 05 2024"],
    at=["31/12/2024 10:30", "2024-01-02T10:00:00Z"],
    phone=["020 7946 0958", "+33 1 23 45 67 89"],
    req=["x", "   "],
)


def _prepare_all(table: ac.Table, template: Template) -> ac.Table:
    names = table.column_names
    return ac.Table.from_arrays(
        [prepare(table, template.field(n), template) for n in names], names=names
    )


def test_transforms_run_before_validation() -> None:
    prepared = pa.table(_prepare_all(RAW, TRANSFORMED)).to_pydict()
    assert prepared == {
        "code": ["GB", "FR"],
        "name": ["Ada Lovelace", "Alan"],
        "mail": ["a@x.com", "b@y.org"],
        "day": ["2024-12-31", "2024-01-05"],
        "at": ["2024-12-31T10:30:00Z", "2024-01-02T10:00:00Z"],
        "phone": ["+442079460958", "+33123456789"],
        "req": ["x", None],  # trimmed to "", a missing value
    }
    assert found(validate(RAW, TRANSFORMED)) == [
        (3, "constraint-error", "required", "req is required, but this cell is empty.")
    ]


def test_transforms_are_idempotent() -> None:
    once = _prepare_all(RAW, TRANSFORMED)
    assert pa.table(_prepare_all(once, TRANSFORMED)) == pa.table(once)


def test_a_value_a_transform_cannot_handle_is_flagged() -> None:
    table = strings(phone=["12", "+442079460958"], day=["31-12-2024", None])
    t = template(TRANSFORMED.field("phone").to_dict(), TRANSFORMED.field("day").to_dict())
    assert found(validate(table, t)) == [
        (2, "type-error", None, '"12" is not a phone number (such as +44 20 7946 0958).'),
        (2, "type-error", None, '"31-12-2024" is not a date (use YYYY-MM-DD).'),
    ]


@pytest.mark.parametrize(
    ("field", "value", "fix"),
    [
        ({"type": "integer"}, " 42 ", "42"),
        ({"type": "date"}, "31/12/2024", "2024-12-31"),
        ({"type": "date"}, "12/31/2024", "2024-12-31"),
        ({"type": "date"}, "03/04/2024", None),  # day or month first: no guess
        ({"type": "date"}, "5 March 2024", "2024-03-05"),
        ({"type": "datetime"}, "31/12/2024", "2024-12-31T00:00:00Z"),
        ({"constraints": {"enum": ["GB", "FR"]}}, "gb", "GB"),
        ({"constraints": {"enum": ["GB", "FR"]}}, "US", None),
        ({"type": "boolean"}, "Yes", "true"),
        ({"type": "boolean", "trueValues": ["ja"], "falseValues": ["nein"]}, "no", "nein"),
        ({"type": "integer"}, "1,234,567", "1234567"),
        ({"type": "number"}, "1 234.5", "1234.5"),
        ({"type": "number"}, "2,5", "2.5"),
        ({"type": "integer"}, "many", None),
        ({"format": "email"}, " a@b.co", "a@b.co"),
        (
            {"x-loadbay": {"transforms": [{"phone": {"region": "GB"}}]}},
            "020 7946 0958",
            "+442079460958",
        ),
        ({"x-loadbay": {"transforms": [{"phone": {"region": "GB"}}]}}, "12", None),
        ({}, "fine", None),
    ],
)
def test_propose_fix(field: dict[str, Any], value: str, fix: str | None) -> None:
    assert propose_fix(template({"name": "f", **field}).field("f"), value) == fix


def test_human_pattern() -> None:
    assert human_pattern("%d/%m/%Y %H:%M:%S %%") == "DD/MM/YYYY hh:mm:ss %"


class Remembered:
    """An in-memory `EarlierBatches`, as the server keeps it (there: keyed digests)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], int] = {}

    def first_rows(self, target: str, values: list[str], rows: list[int]) -> list[int | None]:
        out = [self.rows.get((target, v)) for v in values]
        for value, row, had in zip(values, rows, out, strict=True):
            if had is None:
                self.rows[(target, value)] = row
        return out


WHOLE_FILE = template(
    {"name": "id", "type": "integer", "constraints": {"unique": True}},
    {"name": "k", "constraints": {"enum": ["a", "b", "c"], "maxLength": 1}},
    {"name": "day", "type": "date", "constraints": {"minimum": "2024-01-01"}},
    primaryKey=["k", "day"],
)


def test_batches_give_the_errors_of_the_whole_file() -> None:
    n = 1000
    ids = [str(i % 700) for i in range(n)]
    ks = ["abcd"[i % 4] for i in range(n)]
    days = [f"2024-01-{1 + i % 40:02d}" if i % 97 else "2023-12-31" for i in range(n)]
    whole = strings(id=ids, k=ks, day=days)
    expected = validate(whole, WHOLE_FILE)
    assert {e.code for e in expected} == {
        "unique-error",
        "primary-key",
        "constraint-error",
        "type-error",
    }
    earlier = Remembered()
    batched: list[CellError] = []
    for offset in range(0, n, 128):
        batch = whole.slice(offset, min(128, n - offset))
        batched += validate(batch, WHOLE_FILE, first_row=2 + offset, earlier=earlier)
    assert batched == expected


def test_earlier_batches_make_a_first_occurrence_a_repeat() -> None:
    t = template({"name": "e", "constraints": {"unique": True}})
    earlier = Remembered()
    assert validate(strings(e=["a", "b"]), t, earlier=earlier) == []
    assert found(validate(strings(e=["c", "a", "a"]), t, first_row=4, earlier=earlier)) == [
        (5, "unique-error", "unique", '"a" is already in row 2: e must be unique.'),
        (6, "unique-error", "unique", '"a" is already in row 2: e must be unique.'),
    ]
