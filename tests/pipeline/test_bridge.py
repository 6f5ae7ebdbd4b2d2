"""The worker's JSON protocol: {"ok": true, "value": ...} or {"ok": false, "error": message}."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline import bridge
from pipeline.errors import PipelineError

TEMPLATE = json.dumps(
    {
        "fields": [
            {"name": "email", "title": "E-mail", "constraints": {"required": True}},
            {"name": "age", "type": "integer"},
        ]
    }
)
NO_FILE = "No file is open. Pick a file first."


@pytest.fixture(autouse=True)
def no_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bridge keeps one module-level session; every test starts without one."""
    monkeypatch.setattr(bridge, "_session", None)
    yield


def decode_ipc(data: bytes) -> pa.Table:
    """A batch as the server reads it (pyarrow)."""
    return pa.ipc.open_stream(data).read_all()


def write_csv(tmp_path: Path, data: str | bytes) -> str:
    path = tmp_path / "current"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def answer(raw: str) -> dict[str, Any]:
    assert isinstance(raw, str)
    decoded = json.loads(raw)
    assert isinstance(decoded, dict)
    return decoded


def open_ok(tmp_path: Path, text: str) -> dict[str, Any]:
    return answer(bridge.open_file(write_csv(tmp_path, text), "people.csv", TEMPLATE))


def test_open_file_answers_with_the_description(tmp_path: Path) -> None:
    assert open_ok(tmp_path, "Age,E-mail,Other\n36,ada@x,o\nx,,p\n") == {
        "ok": True,
        "value": {
            "file": "people.csv",
            "rows": 2,
            "first_data_row": 2,
            "headers": ["Age", "E-mail", "Other"],
            "kind": "csv",
            "encoding": "utf-8",
            "encoding_choosable": True,
            "header_row_choosable": True,
            "sheet": None,
            "sheets": [],
            "header_row": 1,
            "problems": [],
            "problem_count": 0,
            "mapping": {"email": 1, "age": 0},
            "matches": [
                {
                    "field": "age",
                    "column": 0,
                    "confidence": 1.0,
                    "source": "exact",
                    "proposed": False,
                },
                {
                    "field": "email",
                    "column": 1,
                    "confidence": 1.0,
                    "source": "exact",
                    "proposed": False,
                },
            ],
            "preview": [["36", "ada@x", "o"], ["x", None, "p"]],
            "fields": [
                {"name": "email", "label": "E-mail", "required": True, "description": None},
                {"name": "age", "label": "age", "required": False, "description": None},
            ],
            "max_bytes": 1073741824,
            "looks_headerless": False,
            "above": [],
        },
    }


def test_open_file_applies_and_reports_the_byte_limit_it_is_given(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "Age,E-mail\n36,ada@x\n")
    limited = bridge.open_file(path, "people.csv", TEMPLATE, json.dumps({"max_bytes": 1000}))
    assert answer(limited)["value"]["max_bytes"] == 1000
    refused = answer(bridge.open_file(path, "people.csv", TEMPLATE, json.dumps({"max_bytes": 5})))
    assert refused == {
        "ok": False,
        "error": "people.csv is larger than the limit of 5 bytes. "
        "Split it into smaller files and import them one by one.",
    }


def test_open_file_takes_the_users_reading_choices(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "Export of 3 May\nAge,E-mail\n36,ada@x\n".encode("cp1252"))
    detected = answer(bridge.open_file(path, "people.csv", TEMPLATE))["value"]
    assert (detected["header_row"], detected["headers"]) == (2, ["Age", "E-mail"])
    chosen = answer(bridge.open_file(path, "people.csv", TEMPLATE, json.dumps({"header_row": 1})))[
        "value"
    ]
    assert (chosen["header_row"], chosen["headers"]) == (1, ["Export of 3 May"])


def test_use_remembered_reproposes_the_mapping(tmp_path: Path) -> None:
    open_ok(tmp_path, "Years,Mail address\n36,ada@x\n")
    described = answer(bridge.use_remembered(json.dumps({"Years": "age"})))["value"]
    assert described["mapping"]["age"] == 0
    assert {
        "field": "age",
        "column": 0,
        "confidence": 1.0,
        "source": "remembered",
        "proposed": False,
    } in described["matches"]


@pytest.mark.parametrize(
    ("data", "template", "error"),
    [
        (
            "email\n",
            TEMPLATE,
            "people.csv has a header row but no data rows. Add at least one row under the header.",
        ),
        (
            "a,b\n1,\x002\n",
            TEMPLATE,
            "people.csv does not look like a text (CSV) file: it contains binary data. "
            "Export the data as CSV and try again.",
        ),
        (
            "email\na@x\n",
            json.dumps({"fields": [{"name": "a", "type": "geopoint"}]}),
            'Field "a": type "geopoint" is not supported; use one of '
            "string, integer, number, boolean, date, datetime, time, year, yearmonth, "
            "duration, any.",
        ),
    ],
    ids=["no-rows", "binary", "bad-template"],
)
def test_open_file_errors_come_back_as_data(
    tmp_path: Path, data: str, template: str, error: str
) -> None:
    raw = bridge.open_file(write_csv(tmp_path, data), "people.csv", template)
    assert answer(raw) == {"ok": False, "error": error}
    assert answer(bridge.batch_plan()) == {"ok": False, "error": NO_FILE}


@pytest.mark.parametrize(
    "call",
    [lambda: bridge.set_mapping('{"email": 0}'), lambda: bridge.batch_plan()],
    ids=["set_mapping", "batch_plan"],
)
def test_calls_before_open_say_no_file_is_open(call: Any) -> None:
    assert answer(call()) == {"ok": False, "error": NO_FILE}


def test_close_file_drops_the_file_and_its_review(tmp_path: Path) -> None:
    """A closed importer kept hidden by embed.js holds nothing of the user's file."""
    open_ok(tmp_path, "Age,E-mail\n36,ada@x\n")
    assert answer(bridge.set_mapping('{"email": 1}'))["ok"] is True
    assert answer(bridge.close_file()) == {"ok": True, "value": None}
    assert bridge._session is None
    assert answer(bridge.window(0, 1)) == {"ok": False, "error": NO_FILE}


def test_encode_batch_before_open_raises() -> None:
    with pytest.raises(PipelineError, match=NO_FILE):
        bridge.encode_batch(0, 1)


def test_set_mapping_answers_with_the_review_summary(tmp_path: Path) -> None:
    open_ok(tmp_path, "Age,E-mail,Other\n36,ada@x,o\nx,,p\n")
    # JavaScript sends numbers; strings of digits are accepted too.
    summary = answer(bridge.set_mapping('{"email": 1, "age": "0"}'))["value"]
    assert summary["rows"] == 2
    assert summary["error_count"] == 2
    assert summary["by_code"] == {"required": 1, "type-error": 1}
    window = answer(bridge.window(0, 10))["value"]
    assert window[1]["errors"] == {
        "email": ["E-mail is required, but this cell is empty."],
        "age": ['"x" is not a whole number.'],
    }
    assert answer(bridge.edit(1, "age", '"37"'))["value"]["error_count"] == 1
    assert answer(bridge.undo())["value"]["error_count"] == 2


@pytest.mark.parametrize(
    ("mapping", "error"),
    [
        ({"email": 1, "nope": 0}, '"nope" is not a field of the template.'),
        ({"email": 9}, "Column 10 does not exist in people.csv."),
        ({"email": 1, "age": 1}, "A column can be mapped to one field only."),
        (
            {"age": 0},
            "Required field(s) E-mail are not mapped to any column. Map a column to each of them.",
        ),
    ],
)
def test_set_mapping_refusals(tmp_path: Path, mapping: dict[str, int], error: str) -> None:
    open_ok(tmp_path, "Age,E-mail\n36,ada@x\n")
    assert answer(bridge.set_mapping(json.dumps(mapping))) == {"ok": False, "error": error}


def test_batch_plan_and_encode_batch(tmp_path: Path) -> None:
    text = "E-mail,Age,Secret\n" + "".join(f"u{i}@x,{i},s3cret{i}\n" for i in range(5))
    open_ok(tmp_path, text)
    assert answer(bridge.batch_plan(2)) == {
        "ok": True,
        "value": [
            {"offset": 0, "length": 2, "first_row": 2, "left_out": 0},
            {"offset": 2, "length": 2, "first_row": 4, "left_out": 0},
            {"offset": 4, "length": 1, "first_row": 6, "left_out": 0},
        ],
    }
    data = bridge.encode_batch(2, 2)
    assert isinstance(data, bytes)
    assert (decode_ipc(data)).to_pydict() == {
        "email": ["u2@x", "u3@x"],
        "age": ["2", "3"],
        "__row": [4, 5],
    }
    assert b"s3cret" not in data


def test_opening_a_second_file_replaces_the_session(tmp_path: Path) -> None:
    open_ok(tmp_path, "email\na@x\n")
    second = tmp_path / "second.csv"
    second.write_text("email\nb@x\nc@x\n")
    described = answer(bridge.open_file(str(second), "second.csv", TEMPLATE))
    assert described["value"]["rows"] == 2
    assert answer(bridge.batch_plan())["value"] == [
        {"offset": 0, "length": 2, "first_row": 2, "left_out": 0}
    ]


VECTORS = Path(__file__).parent.parent / "conformance" / "vectors"
PHONE_TEMPLATE = json.dumps(
    {"fields": [{"name": "phone", "x-loadbay": {"transforms": [{"phone": {"region": "GB"}}]}}]}
)


@pytest.mark.parametrize(
    ("data", "template", "needed"),
    [
        ("file_xlsx/data.xlsx", TEMPLATE, ["python-calamine"]),
        ("file_ods/data.ods", TEMPLATE, ["python-calamine"]),
        ("file_xls/data.xls", TEMPLATE, ["python-calamine"]),
        ("clean/data.csv", TEMPLATE, []),
        ("file_json/data.json", TEMPLATE, []),
        ("clean/data.csv", PHONE_TEMPLATE, ["phonenumbers"]),
        ("file_xlsx/data.xlsx", PHONE_TEMPLATE, ["python-calamine", "phonenumbers"]),
    ],
)
def test_packages_for_names_what_the_file_and_template_need(
    data: str, template: str, needed: list[str]
) -> None:
    """The worker loads these before opening the file; it boots without them."""
    path = VECTORS / data
    assert answer(bridge.packages_for(str(path), path.name, template)) == {
        "ok": True,
        "value": needed,
    }
    assert set(needed) <= set(bridge.ON_DEMAND)


def test_packages_for_an_unreadable_file_is_none(tmp_path: Path) -> None:
    """open_file then says what is wrong with the file; no package is needed for that."""
    path = write_csv(tmp_path, b"")
    assert answer(bridge.packages_for(path, "empty.csv", TEMPLATE)) == {"ok": True, "value": []}
    assert "empty" in answer(bridge.open_file(path, "empty.csv", TEMPLATE))["error"]


def test_running_out_of_memory_closes_the_file_and_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wasm32 stops at 4 GB; Python's MemoryError there is recoverable, so the worker lives on."""
    assert open_ok(tmp_path, "Age,E-mail\n36,ada@x\n")["ok"]
    assert bridge._session is not None

    def exhausted(self: Any, *args: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(bridge.ImportSession, "start_review", exhausted)
    answer_ = answer(bridge.set_mapping(json.dumps({"email": 1})))
    assert answer_ == {"ok": False, "error": bridge.OUT_OF_MEMORY}
    assert "Save it as CSV" in answer_["error"]
    assert bridge._session is None
    assert answer(bridge.window(0, 10)) == {"ok": False, "error": NO_FILE}
