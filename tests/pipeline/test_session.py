"""ImportSession: open, describe, map, report, and what goes into the encoded batches."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.errors import MappingError, ReadError
from pipeline.readers import ReadOptions
from pipeline.session import PREVIEW_ROWS, ImportSession, Report
from pipeline.template import Template, parse_template
from pipeline.validation import CellError

SECRET = "TOPSECRET-7f3a"
CONTACTS = parse_template(
    {
        "fields": [
            {
                "name": "email",
                "title": "E-mail",
                "constraints": {"required": True},
                "x-loadbay": {"synonyms": ["mail"]},
            },
            {"name": "age", "type": "integer"},
            {"name": "plan", "constraints": {"enum": ["free", "pro"]}},
        ]
    }
)


def decode_ipc(data: bytes) -> pa.Table:
    """A batch as the server reads it (pyarrow)."""
    return pa.ipc.open_stream(data).read_all()


def write_csv(tmp_path: Path, text: str, name: str = "upload.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def open_session(
    tmp_path: Path, text: str, template: Template = CONTACTS, name: str = "contacts.csv"
) -> ImportSession:
    return ImportSession.open(str(write_csv(tmp_path, text)), name, template)


CONTACTS_CSV = (
    f"Notes,Mail,Age\n{SECRET}-1,ada@example.com,36\n{SECRET}-2,,x\n{SECRET}-3,alan@example.com,\n"
)


def test_describe(tmp_path: Path) -> None:
    session = open_session(tmp_path, CONTACTS_CSV)
    assert session.describe().to_dict() == {
        "file": "contacts.csv",
        "rows": 3,
        "first_data_row": 2,
        "headers": ["Notes", "Mail", "Age"],
        "kind": "csv",
        "encoding": "utf-8",
        "encoding_choosable": True,
        "header_row_choosable": True,
        "sheet": None,
        "sheets": [],
        "header_row": 1,
        "problems": [],
        "problem_count": 0,
        "mapping": {"email": 1, "age": 2},
        "matches": [
            {
                "field": "email",
                "column": 1,
                "confidence": 1.0,
                "source": "synonym",
                "proposed": False,
            },
            {"field": "age", "column": 2, "confidence": 1.0, "source": "exact", "proposed": False},
        ],
        "preview": [
            [f"{SECRET}-1", "ada@example.com", "36"],
            [f"{SECRET}-2", None, "x"],
            [f"{SECRET}-3", "alan@example.com", None],
        ],
        "fields": [
            {"name": "email", "label": "E-mail", "required": True, "description": None},
            {"name": "age", "label": "age", "required": False, "description": None},
            {
                "name": "plan",
                "label": "plan",
                "required": False,
                "description": None,
                "allowed": ["free", "pro"],
            },
        ],
        "max_bytes": 1073741824,
        "looks_headerless": False,
        "above": [],
    }
    assert json.loads(json.dumps(session.describe().to_dict())) == session.describe().to_dict()


def test_describe_gives_the_byte_limit_the_file_was_read_under(tmp_path: Path) -> None:
    path = str(write_csv(tmp_path, CONTACTS_CSV))
    session = ImportSession.open(path, "c.csv", CONTACTS, ReadOptions(max_bytes=5_000))
    assert session.describe().to_dict()["max_bytes"] == 5_000


def test_preview_is_capped(tmp_path: Path) -> None:
    text = "email\n" + "".join(f"u{i}@x\n" for i in range(PREVIEW_ROWS + 5))
    described = open_session(tmp_path, text).describe().to_dict()
    assert described["rows"] == PREVIEW_ROWS + 5
    assert described["preview"] == [[f"u{i}@x"] for i in range(PREVIEW_ROWS)]


def test_open_unreadable_file_raises_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"^contacts.csv has a header row but no data rows\."):
        open_session(tmp_path, "email,age\n")


def test_report_with_proposed_mapping(tmp_path: Path) -> None:
    report = open_session(tmp_path, CONTACTS_CSV).report()
    assert report == Report(
        rows=3,
        errors=[
            CellError(3, "email", "constraint-error", "required", "required", {"label": "E-mail"}),
            CellError(3, "age", "type-error", "type.integer", params={"value": "x"}),
        ],
    )
    assert report.to_dict() == {
        "rows": 3,
        "error_count": 2,
        "errors": [
            {
                "row": 3,
                "field": "email",
                "code": "constraint-error",
                "constraint": "required",
                "message": "E-mail is required, but this cell is empty.",
                "key": "required",
                "params": {"label": "E-mail"},
            },
            {
                "row": 3,
                "field": "age",
                "code": "type-error",
                "message": '"x" is not a whole number.',
                "key": "type.integer",
                "params": {"value": "x"},
            },
        ],
    }


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"nope": 0}, '"nope" is not a field of the template.'),
        ({"email": 3}, "Column 4 does not exist in contacts.csv."),
        ({"email": -1}, "Column 0 does not exist in contacts.csv."),
        ({"email": 1, "age": 1}, "A column can be mapped to one field only."),
    ],
)
def test_set_mapping_refusals(tmp_path: Path, mapping: dict[str, int], message: str) -> None:
    session = open_session(tmp_path, CONTACTS_CSV)
    with pytest.raises(MappingError) as excinfo:
        session.set_mapping(mapping)
    assert str(excinfo.value) == message
    assert session.mapping == {"email": 1, "age": 2}  # unchanged


def test_set_mapping_replaces_the_proposal(tmp_path: Path) -> None:
    session = open_session(tmp_path, CONTACTS_CSV)
    session.set_mapping({"email": 1, "plan": 2})
    assert session.mapping == {"email": 1, "plan": 2}
    assert [e.to_dict() for e in session.report().errors] == [
        {
            "row": 2,
            "field": "plan",
            "code": "constraint-error",
            "constraint": "enum",
            "message": '"36" is not one of the allowed values: free, pro.',
            "key": "enum",
            "params": {"allowed": "free, pro", "value": "36"},
        },
        {
            "row": 3,
            "field": "email",
            "code": "constraint-error",
            "constraint": "required",
            "message": "E-mail is required, but this cell is empty.",
            "key": "required",
            "params": {"label": "E-mail"},
        },
        {
            "row": 3,
            "field": "plan",
            "code": "constraint-error",
            "constraint": "enum",
            "message": '"x" is not one of the allowed values: free, pro.',
            "key": "enum",
            "params": {"allowed": "free, pro", "value": "x"},
        },
    ]


def test_unmapping_a_required_field_is_a_mapping_error(tmp_path: Path) -> None:
    session = open_session(tmp_path, CONTACTS_CSV)
    session.set_mapping({"age": 2})
    with pytest.raises(MappingError, match=r"^Required field\(s\) E-mail are not mapped"):
        session.report()


def test_an_empty_mapping_is_refused(tmp_path: Path) -> None:
    optional = parse_template({"fields": [{"name": "note"}]})
    session = open_session(tmp_path, "a,b\n1,2\n3,4\n", optional)
    assert session.mapping == {}
    message = "No column is mapped to a template field. Map at least one column."
    with pytest.raises(MappingError, match=message):
        session.report()
    with pytest.raises(MappingError, match=message):
        session.batches()


def test_mapped_table_holds_only_mapped_columns_named_by_field(tmp_path: Path) -> None:
    session = open_session(tmp_path, CONTACTS_CSV)
    session.set_mapping({"age": 2, "email": 1})
    table = pa.table(session.mapped_table())
    assert table.to_pydict() == {  # template order, not mapping order
        "email": ["ada@example.com", None, "alan@example.com"],
        "age": ["36", "x", None],
    }
    assert all(f.type == pa.string() for f in table.schema)


def test_unmapped_column_never_reaches_the_batch_bytes(tmp_path: Path) -> None:
    session = open_session(tmp_path, CONTACTS_CSV)
    assert session.mapping == {"email": 1, "age": 2}  # "Notes" (column 0) is not mapped
    ((offset, length),) = session.batches()
    data = session.encode_batch(offset, length)

    decoded = decode_ipc(data)
    assert decoded.column_names == ["email", "age", "__row"]
    assert SECRET not in json.dumps(decoded.to_pydict())
    assert SECRET.encode() not in data
    # Control: the same bytes check finds the value once its column is mapped.
    session.set_mapping({"email": 1, "plan": 0})
    mapped = session.encode_batch(offset, length)
    assert SECRET.encode() in mapped
    assert (decode_ipc(mapped)).column("plan").to_pylist() == [
        f"{SECRET}-1",
        f"{SECRET}-2",
        f"{SECRET}-3",
    ]


def test_batches_cover_every_row_once(tmp_path: Path) -> None:
    text = "mail,age\n" + "".join(f"u{i}@x,{i}\n" for i in range(25))
    session = open_session(tmp_path, text)
    plan = session.batches(batch_rows=10)
    assert plan == [(0, 10), (10, 10), (20, 5)]
    parts = [(decode_ipc(session.encode_batch(o, n))) for o, n in plan]
    assert [p.num_rows for p in parts] == [10, 10, 5]
    joined = pa.concat_tables(parts)
    assert joined.column("email").to_pylist() == [f"u{i}@x" for i in range(25)]
    assert joined.column("age").to_pylist() == [str(i) for i in range(25)]


def test_report_rows_counts_every_data_row(tmp_path: Path) -> None:
    text = "mail\n" + 'a@x\n"multi\nline@x"\n\nb@x\n'
    report = open_session(tmp_path, text).report()
    assert report.to_dict() == {"rows": 3, "error_count": 0, "errors": []}


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_blank_lines_keep_every_later_row_at_its_number_and_are_not_imported(
    tmp_path: Path, newline: str
) -> None:
    lines = ["Mail,Age", "ada@example.com,36", "", "", "alan@example.com,x", "", ""]
    path = tmp_path / "gaps.csv"
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    session = ImportSession.open(str(path), "gaps.csv", CONTACTS)
    assert [(p.code, p.row) for p in session.sheet.problems] == [("blank-row", 3), ("blank-row", 4)]
    report = session.report()  # the age error is on line 5, as a spreadsheet app shows it
    assert [(e.row, e.field, e.code) for e in report.errors] == [(5, "age", "type-error")]
    assert report.rows == 2  # trailing blank lines are dropped, inner ones left out
    assert session.describe().to_dict()["rows"] == 2
    assert session.review.summary().deleted == 0  # blank rows are not the user's deletions
    sent = [(decode_ipc(session.encode_batch(o, n))) for o, n in session.batches()]
    assert [t.column("__row").to_pylist() for t in sent] == [[2, 5]]
    assert [t.column("email").to_pylist() for t in sent] == [
        ["ada@example.com", "alan@example.com"]
    ]


def test_a_blank_line_deep_in_a_long_file_keeps_the_numbers_after_it(tmp_path: Path) -> None:
    rows = 150_000  # past arrow-rs's first batches: the blank line is found while streaming
    body = [f"user{i}@example.com,{i % 90}" for i in range(rows)]
    body[140_000] = "user140000@example.com,old"
    lines = ["Mail,Age", *body[:100_000], "", *body[100_000:]]
    session = open_session(tmp_path, "\n".join(lines) + "\n")
    errors = session.report().errors
    assert [(e.row, e.code) for e in errors] == [(2 + 140_000 + 1, "type-error")]
    assert session.review.num_rows == rows


def test_a_blank_line_inside_a_quoted_cell_is_part_of_the_cell(tmp_path: Path) -> None:
    session = open_session(tmp_path, 'Mail,Notes\n"a@x.com","one\n\ntwo"\nb@y.com,\n')
    assert session.sheet.problems == ()
    assert session.sheet.table.column("1").to_pylist() == ["one\n\ntwo", None]
    assert session.report().rows == 2


def test_an_unsure_match_is_proposed_not_preselected(tmp_path: Path) -> None:
    # "Age (years)" is like "age" (an extra word) but not enough to be chosen for the user.
    described = open_session(tmp_path, "Mail,Age (years)\na@x.org,3\n").describe().to_dict()
    unsure = next(m for m in described["matches"] if m["field"] == "age")
    assert (unsure["column"], unsure["source"], unsure["proposed"]) == (1, "fuzzy", True)
    assert unsure["confidence"] < 0.8
    assert described["mapping"] == {"email": 0}


def test_json_files_have_no_header_row_to_choose(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"email": "a@x.org", "age": 3}]))
    described = ImportSession.open(str(path), "c.json", CONTACTS).describe().to_dict()
    assert described["header_row_choosable"] is False


def test_changing_the_mapping_keeps_the_edits_of_fields_that_stay_mapped(tmp_path: Path) -> None:
    session = open_session(tmp_path, CONTACTS_CSV)
    session.set_mapping({"email": 1, "age": 2})
    session.review.edit(1, "email", "grace@example.com")
    session.review.edit(1, "age", "7")
    session.review.delete_rows([2])
    # Back to the mapping: age now comes from the Notes column, e-mail stays where it was.
    session.set_mapping({"email": 1, "age": 0})
    kept = session.saved().to_dict()
    assert kept["mapping"] == {"email": 1, "age": 0}
    assert kept["edits"] == {"email": [[1, "grace@example.com"]]}
    assert kept["deleted"] == [2]
    assert session.review.summary().deleted == 1
    # The age edit was dropped with its column; mapping it back does not bring it back.
    session.set_mapping({"email": 1, "age": 2})
    assert session.saved().to_dict()["edits"] == {"email": [[1, "grace@example.com"]]}


def test_a_new_proposal_starts_with_no_edits(tmp_path: Path) -> None:
    session = open_session(tmp_path, CONTACTS_CSV)
    session.set_mapping({"email": 1})
    session.review.edit(0, "email", "x@example.com")
    session.use_remembered(None)
    session.set_mapping({"email": 1})
    assert session.saved().to_dict()["edits"] == {}
