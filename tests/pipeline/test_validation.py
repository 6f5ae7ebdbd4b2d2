"""validate / check_columns / coerce: error values, row numbers, and the typed output."""

from __future__ import annotations

import datetime as dt
from typing import Any

import arro3.core as ac
import pyarrow as pa
import pytest

from pipeline.errors import MappingError
from pipeline.template import Template, parse_template
from pipeline.validation import CellError, arrow_type, check_columns, coerce, validate

UTC = dt.UTC


def template(*fields: dict[str, Any]) -> Template:
    return parse_template({"fields": list(fields)})


def strings(**columns: list[str | None]) -> ac.Table:
    """A table as the reader makes it: every column text, nulls for empty cells."""
    names = list(columns)
    schema = ac.Schema([ac.Field(n, ac.DataType.string(), True) for n in names])
    arrays = [ac.Array(values, ac.DataType.string()) for values in columns.values()]
    return ac.Table.from_arrays(arrays, schema=schema)


def rows(errors: list[CellError]) -> list[tuple[int, str, str, str | None, str]]:
    return [(e.row, e.field, e.code, e.constraint, e.message) for e in errors]


def test_clean_table_has_no_errors() -> None:
    t = template({"name": "a", "type": "integer", "constraints": {"required": True}})
    assert validate(strings(a=["1", "2"]), t) == []


def test_required_reports_rows_as_the_user_sees_them() -> None:
    t = template({"name": "email", "title": "E-mail", "constraints": {"required": True}})
    errors = validate(strings(email=["a@x", None, "b@x", None]), t, first_row=2)
    assert rows(errors) == [
        (3, "email", "constraint-error", "required", "E-mail is required, but this cell is empty."),
        (5, "email", "constraint-error", "required", "E-mail is required, but this cell is empty."),
    ]


def test_first_row_offsets_row_numbers() -> None:
    t = template({"name": "a", "constraints": {"required": True}})
    errors = validate(strings(a=[None, "x", None]), t, first_row=65538)
    assert [e.row for e in errors] == [65538, 65540]


def test_default_first_row_is_two() -> None:
    t = template({"name": "a", "constraints": {"required": True}})
    assert [e.row for e in validate(strings(a=[None]), t)] == [2]


ALLOWED = "true, True, TRUE, 1, false, False, FALSE, 0"
TYPE_HINTS = {
    "integer": "is not a whole number",
    "number": "is not a number",
    "boolean": "is not one of true, True, TRUE, 1, false, False, FALSE, 0",
    "date": "is not a date (use YYYY-MM-DD)",
    "datetime": "is not a date and time (use YYYY-MM-DDThh:mm:ss, optionally with a time zone)",
}


@pytest.mark.parametrize(
    ("ftype", "good", "bad"),
    [
        ("integer", ["1", "-2", "+3", "007", "9223372036854775807"], "1.5"),
        ("integer", ["0"], "12a"),  # beyond 64 bits: test_deliverable, test_read_truthfully
        ("integer", ["0"], " 4"),
        ("integer", ["0"], "1e3"),
        ("number", ["1", "1.5", "-2.5e3", ".5", "5."], "1,5"),  # NaN, inf: test_deliverable
        ("number", ["0"], "ten"),
        ("boolean", ["true", "True", "TRUE", "1", "false", "False", "FALSE", "0"], "yes"),
        ("boolean", ["true"], "t"),
        ("date", ["2024-01-02", "2024-02-29", "0001-01-01"], "2024-02-30"),
        ("date", ["2024-12-31"], "02/01/2024"),
        ("date", ["2024-12-31"], "2024-1-2"),
        ("date", ["2024-12-31"], "20240102"),
        ("date", ["2024-12-31"], "2024-01-02T23:30:00-05:00"),  # would lose its time of day
        (
            "datetime",
            ["2024-01-02T10:00:00", "2024-01-02T10:00:00Z", "2024-01-02T10:00:00+02:00"],
            "2024-01-02T10:00",
        ),
        ("datetime", ["2024-01-02 10:00:00.5"], "1704189600"),
        ("datetime", ["2024-01-02T23:59:59"], "2024-01-02T24:00:01"),
    ],
)
def test_type_errors(ftype: str, good: list[str], bad: str) -> None:
    t = template({"name": "f", "title": "Not used in type messages", "type": ftype})
    errors = validate(strings(f=[*good, bad, None]), t)
    assert [e.to_dict() for e in errors] == [
        {
            "row": 2 + len(good),
            "field": "f",
            "code": "type-error",
            "message": f'"{bad}" {TYPE_HINTS[ftype]}.',
            "key": f"type.{ftype}",
            "params": {"value": bad, **({"allowed": ALLOWED} if ftype == "boolean" else {})},
        }
    ]


def test_type_error_messages_in_full() -> None:
    t = template({"name": "i", "type": "integer"}, {"name": "d", "type": "date"})
    errors = validate(strings(i=["x"], d=["1.2.2024"]), t)
    assert [e.message for e in errors] == [
        '"x" is not a whole number.',
        '"1.2.2024" is not a date (use YYYY-MM-DD).',
    ]


def test_empty_cells_are_not_type_errors() -> None:
    for ftype in ("integer", "number", "boolean", "date", "datetime"):
        assert validate(strings(f=[None, None]), template({"name": "f", "type": ftype})) == []


def test_required_empty_cell_is_one_error_not_two() -> None:
    t = template({"name": "n", "type": "integer", "constraints": {"required": True}})
    assert rows(validate(strings(n=["1", None]), t)) == [
        (3, "n", "constraint-error", "required", "n is required, but this cell is empty.")
    ]


def test_long_values_are_cut_in_messages() -> None:
    value = "x" * 61
    (error,) = validate(strings(n=[value]), template({"name": "n", "type": "number"}))
    assert error.message == '"' + "x" * 60 + '…" is not a number.'
    (error,) = validate(strings(n=["y" * 60]), template({"name": "n", "type": "number"}))
    assert error.message == '"' + "y" * 60 + '" is not a number.'


def test_boolean_with_custom_values() -> None:
    t = template(
        {"name": "ok", "type": "boolean", "trueValues": ["ja", "J"], "falseValues": ["nein"]}
    )
    table = strings(ok=["ja", "nein", "J", "true", None])
    assert rows(validate(table, t)) == [
        (5, "ok", "type-error", None, '"true" is not one of ja, J, nein.')
    ]
    typed = pa.table(coerce(strings(ok=["ja", "nein", "J", None]), t))
    assert typed.schema.field("ok").type == pa.bool_()
    assert typed.column("ok").to_pylist() == [True, False, True, None]


def test_enum_is_a_constraint_error() -> None:
    t = template({"name": "plan", "title": "Plan", "constraints": {"enum": ["free", "pro"]}})
    errors = validate(strings(plan=["free", "Pro", None, "pro", "gold"]), t)
    assert [e.to_dict() for e in errors] == [
        {
            "row": 3,
            "field": "plan",
            "code": "constraint-error",
            "constraint": "enum",
            "message": '"Pro" is not one of the allowed values: free, pro.',
            "key": "enum",
            "params": {"allowed": "free, pro", "value": "Pro"},
        },
        {
            "row": 6,
            "field": "plan",
            "code": "constraint-error",
            "constraint": "enum",
            "message": '"gold" is not one of the allowed values: free, pro.',
            "key": "enum",
            "params": {"allowed": "free, pro", "value": "gold"},
        },
    ]


def test_errors_are_sorted_by_row_then_template_field_order() -> None:
    t = template(
        {"name": "a", "type": "integer"},
        {"name": "b", "constraints": {"required": True}},
        {"name": "c", "type": "boolean"},
    )
    # Columns in a different order than the template: the template decides.
    table = strings(c=["maybe", "true", "no"], b=[None, "x", None], a=["1", "x", "y"])
    assert [(e.row, e.field, e.code) for e in validate(table, t)] == [
        (2, "b", "constraint-error"),
        (2, "c", "type-error"),
        (3, "a", "type-error"),
        (4, "a", "type-error"),
        (4, "b", "constraint-error"),
        (4, "c", "type-error"),
    ]


def test_a_cell_failing_its_type_is_not_checked_further() -> None:
    t = template({"name": "n", "type": "integer", "constraints": {"enum": ["1", "2"]}})
    assert rows(validate(strings(n=["2", "x", "3"]), t)) == [
        (3, "n", "type-error", None, '"x" is not a whole number.'),
        (4, "n", "constraint-error", "enum", '"3" is not one of the allowed values: 1, 2.'),
    ]


def test_enum_on_a_number_field_compares_numbers() -> None:
    t = template({"name": "n", "type": "number", "constraints": {"enum": [1.5, 2]}})
    assert validate(strings(n=["1.5", "2.0", "1.50"]), t) == []


def test_cell_error_to_dict_omits_a_missing_constraint() -> None:
    error = CellError(4, "age", "type-error", "type.integer", params={"value": "x"})
    assert error.to_dict() == {
        "row": 4,
        "field": "age",
        "code": "type-error",
        "message": '"x" is not a whole number.',
        "key": "type.integer",
        "params": {"value": "x"},
    }
    required = CellError(2, "a", "constraint-error", "required", "required", {"label": "A"})
    assert required.to_dict() == {
        "row": 2,
        "field": "a",
        "code": "constraint-error",
        "message": "A is required, but this cell is empty.",
        "constraint": "required",
        "key": "required",
        "params": {"label": "A"},
    }


def test_errors_with_one_message_share_its_parameters() -> None:
    """A million empty cells make a million errors, not a million parameter sets."""
    t = template({"name": "a", "title": "A", "constraints": {"required": True}})
    errors = validate(strings(a=[None, "x", None, None]), t)
    assert len(errors) == 3 and len({id(e.params) for e in errors}) == 1


def test_unknown_column_is_a_mapping_error() -> None:
    t = template({"name": "a"})
    with pytest.raises(MappingError) as excinfo:
        validate(strings(a=["1"], secret=["s"], other=["o"]), t)
    assert str(excinfo.value) == "Columns secret, other are not fields of the template."


def test_unmapped_required_field_is_a_mapping_error() -> None:
    t = template(
        {"name": "email", "title": "E-mail", "constraints": {"required": True}},
        {"name": "name", "constraints": {"required": True}},
        {"name": "note"},
    )
    with pytest.raises(MappingError) as excinfo:
        check_columns(["note"], t)
    assert str(excinfo.value) == (
        "Required field(s) E-mail, name are not mapped to any column. Map a column to each of them."
    )
    check_columns(["email", "name"], t)  # optional fields may be absent


def test_absent_optional_fields_are_not_checked() -> None:
    t = template({"name": "a", "type": "integer"}, {"name": "b", "constraints": {"enum": ["x"]}})
    assert validate(strings(a=["1"]), t) == []


ALL_TYPES = template(
    {"name": "s"},
    {"name": "i", "type": "integer"},
    {"name": "n", "type": "number"},
    {"name": "b", "type": "boolean"},
    {"name": "d", "type": "date"},
    {"name": "t", "type": "datetime"},
)
ARROW_TYPES = {
    "s": pa.string(),
    "i": pa.int64(),
    "n": pa.float64(),
    "b": pa.bool_(),
    "d": pa.date32(),
    "t": pa.timestamp("us", tz="UTC"),
}


def test_arrow_type_per_field_type() -> None:
    types = {f.name: pa.field(ac.Field("x", arrow_type(f), True)).type for f in ALL_TYPES.fields}
    assert types == ARROW_TYPES


def test_coerce_types_and_values() -> None:
    table = strings(
        t=["2024-01-02T10:00:00", "2024-01-02T10:00:00+02:00", None],
        s=["hello", None, "wörld"],
        i=["1", "-20", None],
        n=["1.5", "-2e3", None],
        b=["true", "0", None],
        d=["2024-02-29", None, "1999-12-31"],
    )
    assert validate(table, ALL_TYPES) == []
    typed = pa.table(coerce(table, ALL_TYPES))
    assert typed.column_names == ["s", "i", "n", "b", "d", "t"]  # template order
    assert {f.name: f.type for f in typed.schema} == ARROW_TYPES
    assert typed.to_pydict() == {
        "s": ["hello", None, "wörld"],
        "i": [1, -20, None],
        "n": [1.5, -2000.0, None],
        "b": [True, False, None],
        "d": [dt.date(2024, 2, 29), None, dt.date(1999, 12, 31)],
        "t": [
            dt.datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
            dt.datetime(2024, 1, 2, 8, 0, tzinfo=UTC),
            None,
        ],
    }


def test_coerce_never_delivers_numbers_json_cannot_hold() -> None:
    t = template({"name": "n", "type": "number"})
    values = pa.table(coerce(strings(n=["NaN", "inf", "-inf", "1"]), t)).column("n").to_pylist()
    assert values == [None, None, None, 1.0]


def test_coerce_fills_absent_fields_with_typed_nulls() -> None:
    typed = pa.table(coerce(strings(s=["a", "b", "c"]), ALL_TYPES))
    assert typed.num_rows == 3
    assert {f.name: f.type for f in typed.schema} == ARROW_TYPES
    assert all(f.nullable for f in typed.schema)
    assert typed.to_pydict() == {
        "s": ["a", "b", "c"],
        "i": [None] * 3,
        "n": [None] * 3,
        "b": [None] * 3,
        "d": [None] * 3,
        "t": [None] * 3,
    }


def test_mostly_unique_columns_are_checked_without_a_dictionary() -> None:
    """Past the sample size, e-mails and patterns take the per-row path: same errors."""
    from pipeline.types import Distinct

    rows = 10_000
    emails: list[str | None] = [f"user{i}@example.com" for i in range(rows)]
    emails[7_000] = "not-an-email"
    emails[8_000] = None
    codes: list[str | None] = [f"C{i:05d}" for i in range(rows)]
    codes[9_000] = "c9000"
    codes[9_001] = None
    string = ac.DataType.string()
    table = ac.Table.from_arrays(
        [ac.Array(emails, string), ac.Array(codes, string)],
        schema=ac.Schema([ac.Field("email", string, True), ac.Field("code", string, True)]),
    )
    template = parse_template(
        {
            "fields": [
                {"name": "email", "format": "email", "constraints": {"maxLength": 30}},
                {"name": "code", "constraints": {"pattern": "C[0-9]{5}", "minLength": 6}},
            ]
        }
    )
    assert len(Distinct.for_checks(table.column("email").combine_chunks()).values) == rows
    errors = [(e.row, e.field, e.code, e.constraint) for e in validate(table, template, 2)]
    assert errors == [
        (7_002, "email", "type-error", None),
        (9_002, "code", "constraint-error", "minLength"),  # "c9000" is 5 characters
        (9_002, "code", "constraint-error", "pattern"),
    ]


def test_an_empty_string_that_is_not_a_missing_value_must_still_parse() -> None:
    template = parse_template(
        {"missingValues": ["NA"], "fields": [{"name": "n", "type": "integer"}]}
    )
    table = ac.Table.from_arrays([ac.Array(["1", "", "NA"], ac.DataType.string())], names=["n"])
    assert validate(table, template) == [
        CellError(3, "n", "type-error", "type.integer", params={"value": ""})
    ]
