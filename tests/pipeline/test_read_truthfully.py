"""Files read wrongly before (issue 20): each case read, validated and reviewed as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import arro3.core as ac
import pytest

from pipeline.delimited import batch_rows
from pipeline.errors import ReadError
from pipeline.readers import ReadOptions, read_file
from pipeline.review import View
from pipeline.session import ImportSession
from pipeline.template import parse_template
from pipeline.validation import validate


def session(
    tmp_path: Path, data: str | bytes, fields: list[dict[str, Any]], **kw: Any
) -> ImportSession:
    path = tmp_path / "people.csv"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    template = parse_template({"fields": fields, **kw.pop("schema", {})})
    return ImportSession.open(str(path), "people.csv", template, ReadOptions(**kw))


NAME_AGE = [{"name": "name", "constraints": {"required": True}}, {"name": "age", "type": "integer"}]


def test_rows_with_more_or_fewer_cells_are_errors_that_keep_the_extra_text(tmp_path: Path) -> None:
    s = session(tmp_path, "name,age\nAda,36\nAlan,41,Turing;Bletchley\nGrace\n", NAME_AGE)
    errors = [e.to_dict() for e in s.report().errors]
    assert [(e["row"], e["field"], e["code"]) for e in errors] == [
        (3, None, "extra-cell"),
        (4, None, "missing-cell"),
    ]
    assert 'the cells after column 2 hold "Turing;Bletchley"' in errors[0]["message"]
    assert errors[1]["message"].startswith("Row 4 has 1 cell(s) but the header has 2;")
    review = s.review
    summary = review.summary()
    assert (summary.error_count, summary.rows_with_errors) == (2, 2)
    assert summary.by_code == {"extra-cell": 1, "missing-cell": 1}
    assert not summary.submittable
    # The grid's rows carry them as row errors; deleting the rows clears them.
    review.set_view(View(errors_only=True))
    window = review.window(0, 10)
    assert [(w.row, w.row_errors[0][:10], dict(w.errors)) for w in window] == [
        (3, "Row 3 has ", {}),
        (4, "Row 4 has ", {}),
    ]
    review.edit(2, "age", "5")  # an edit elsewhere in the row does not clear it
    assert review.summary().error_count == 2
    after = review.delete_rows_with_errors()
    assert (after.error_count, after.rows, after.submittable) == (0, 1, True)


def test_a_quote_never_closed_is_refused_naming_its_row(tmp_path: Path) -> None:
    for data in (
        'name,age\nAda,36\nAlan,"41\nGrace,85\nLin,30\n',
        'name,age\nAda,36\n"Alan,41\nB,2',
    ):
        with pytest.raises(ReadError) as excinfo:
            session(tmp_path, data, NAME_AGE)
        assert str(excinfo.value) == (
            'people.csv: row 3 opens a quote (") that is never closed, so the rest of the file '
            "would be one cell. Close the quote or remove it, and pick the file again."
        )
    # Quotes closed, and a literal quote inside an unquoted cell (odd count): both read.
    s = session(tmp_path, 'name,age\n"Ada ""A"" L",36\nAl 5"11,41\n', NAME_AGE)
    assert s.sheet.column(0).to_pylist() == ['Ada "A" L', 'Al 5"11']
    assert s.report().errors == []


def test_a_row_of_empty_cells_is_a_blank_row_not_a_required_error(tmp_path: Path) -> None:
    fields = [{"name": n, "constraints": {"required": True}} for n in ("a", "b", "c")]
    for data in ("a,b,c\n1,2,3\n,,\n4,5,6\n,,\n,,\n", "a,b,c\n1,2,3\n,,\n4,5,6,\n,,\n"):
        s = session(tmp_path, data, fields)
        assert s.sheet.blank_rows == (1,)
        assert [(p.code, p.row) for p in s.sheet.problems if p.code == "blank-row"] == [
            ("blank-row", 3)
        ]
        assert s.report().errors == []
        assert s.report().rows == 2
        assert s.describe().rows == 2


def test_an_integer_beyond_64_bits_is_said_to_be_one(tmp_path: Path) -> None:
    s = session(
        tmp_path, "name,age\nA,9223372036854775808\nB,-9223372036854775809\nC,1e3\n", NAME_AGE
    )
    assert [(e.row, e.key) for e in s.report().errors] == [
        (2, "type.integer.range"),
        (3, "type.integer.range"),
        (4, "type.integer"),
    ]
    assert (
        s.report()
        .errors[0]
        .message.startswith(
            '"9223372036854775808" is a whole number beyond the 64 bits loadbay holds'
        )
    )


@pytest.mark.parametrize(
    ("type_", "format_"),
    [
        ("datetime", "any"),
        ("date", "any"),
        ("time", "any"),
        ("integer", "default"),
        ("string", "email"),
        ("boolean", "default"),
    ],  # fmt: skip
)
def test_an_empty_cell_is_a_type_error_when_missing_values_leave_it_out(
    tmp_path: Path, type_: str, format_: str
) -> None:
    fields = [{"name": "a", "type": type_, "format": format_, "constraints": {"required": True}}]
    s = session(
        tmp_path, "a,b\n,x\nNA,y\n", fields + [{"name": "b"}], schema={"missingValues": ["NA"]}
    )
    assert [(e.row, e.code) for e in s.report().errors] == [
        (2, "type-error"),
        (3, "constraint-error"),
    ]
    table = ac.Table.from_pydict({"a": ac.Array([None], ac.DataType.string())})
    template = parse_template({"fields": fields, "missingValues": []})
    assert [e.code for e in validate(table, template)] == ["type-error"]


def test_primary_key_errors_are_row_errors_naming_the_key_fields(tmp_path: Path) -> None:
    s = session(
        tmp_path,
        "name,age\nAda,36\nAda,36\n",
        NAME_AGE,
        schema={"primaryKey": ["name", "age"]},
    )
    (error,) = s.report().errors
    shown = error.to_dict()
    assert (shown["field"], shown["code"], shown["fields"]) == (
        None,
        "primary-key",
        ["name", "age"],
    )
    (row,) = s.review.window(1, 1)
    assert row.row_errors == (error.message,)
    assert set(row.errors) == {"name", "age"}  # the key's cells are marked too


def test_headerless_data_is_detected_and_read_with_lettered_columns(tmp_path: Path) -> None:
    data = "Ada,36,London\nAlan,41,Wilmslow\nGrace,85,New York\n"
    fields = [{"name": "name"}, {"name": "age", "type": "integer"}]
    detected = session(tmp_path, data, fields)
    assert detected.describe().to_dict()["looks_headerless"] is True
    labelled = session(tmp_path, "name,age\nAda,36\n", fields)
    assert labelled.describe().looks_headerless is False
    s = session(tmp_path, data, fields, header_row=0)
    described = s.describe().to_dict()
    assert described["headers"] == ["Column A", "Column B", "Column C"]
    assert (described["header_row"], described["first_data_row"], described["rows"]) == (0, 1, 3)
    assert described["looks_headerless"] is False
    s.set_mapping({"name": 0, "age": 1})
    s.review.edit(2, "age", "x")
    assert [(e.row, e.field) for e in s.report().errors] == [(3, "age")]


@pytest.mark.parametrize("width", [4_000, 20_000])
def test_wide_files_are_read_in_batches_sized_by_their_width(tmp_path: Path, width: int) -> None:
    assert batch_rows(width) * width <= 4 * 1024 * 1024
    header = ",".join(f"Question {i + 1} of the survey" for i in range(width))
    rows = "\n".join(",".join(str((r + i) % 7) for i in range(width)) for r in range(3))
    path = tmp_path / "wide.csv"
    path.write_text(f"{header}\n{rows}\n")
    sheet = read_file(str(path), "wide.csv")
    assert (len(sheet.headers), sheet.num_rows) == (width, 3)
    assert sheet.headers[-1] == f"Question {width} of the survey"
    assert sheet.column(width - 1).to_pylist() == [str((r + width - 1) % 7) for r in range(3)]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"[" * 100_000 + b"]" * 100_000, ""),
        (b'[{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]", ""),
        (b'{"a": 1}\n{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", " (line 2)"),
    ],
    ids=["array", "in-a-cell", "ndjson"],
)
def test_json_nested_too_deeply_is_refused_with_a_message(
    tmp_path: Path, data: bytes, where: str
) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(data)
    with pytest.raises(ReadError) as excinfo:
        read_file(str(path), "deep.json")
    assert str(excinfo.value).startswith(f"deep.json{where} nests lists or objects too deeply")
    shallow = tmp_path / "ok.json"
    shallow.write_text(json.dumps([{"a": [[[1]]]}]))
    assert read_file(str(shallow), "ok.json").column(0).to_pylist() == ["[[[1]]]"]
