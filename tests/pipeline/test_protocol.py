"""The bridge's typed messages: their JSON shapes, and the fields as the page sees them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.protocol import (
    SPREADSHEET_KINDS,
    BatchRange,
    FieldInfo,
    FileKind,
    MatchSource,
    Summary,
    WindowRow,
    field_infos,
)
from pipeline.readers import file_kind
from pipeline.template import parse_template

REPO = Path(__file__).resolve().parents[2]


def test_field_infos_in_template_order_with_labels_and_required() -> None:
    template = parse_template(
        {
            "fields": [
                {"name": "id", "type": "integer"},  # required through the primary key only
                {"name": "email", "title": "E-mail", "constraints": {"required": True}},
                {"name": "note", "description": "Anything else"},
            ],
            "primaryKey": ["id"],
        }
    )
    assert [f.to_dict() for f in field_infos(template)] == [
        {"name": "id", "label": "id", "required": True, "description": None},
        {"name": "email", "label": "E-mail", "required": True, "description": None},
        {"name": "note", "label": "note", "required": False, "description": "Anything else"},
    ]
    assert field_infos(template)[1] == FieldInfo("email", "E-mail", True, None)


def test_a_composite_primary_key_makes_every_one_of_its_fields_required() -> None:
    template = parse_template(
        {"fields": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "primaryKey": ["a", "b"]}
    )
    assert [f.required for f in field_infos(template)] == [True, True, False]


def test_protocol_imports_natively_without_the_readers() -> None:
    """The server imports it for the importer page: no reader, no Arrow kernel needed."""
    code = (
        "import sys, pipeline.protocol; "
        "print(sorted(m for m in sys.modules if m.startswith(('pipeline', 'arro3'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "['pipeline', 'pipeline.protocol', 'pipeline.schema']"


def test_file_kinds_are_the_strings_on_the_wire() -> None:
    assert [k.value for k in FileKind] == [
        "csv", "xlsx", "xlsm", "xlsb", "xls", "ods", "json", "ndjson"
    ]  # fmt: skip
    assert {k for k in FileKind if k.is_spreadsheet} == SPREADSHEET_KINDS
    assert json.dumps([FileKind.CSV, MatchSource.FUZZY]) == '["csv", "fuzzy"]'


def test_only_delimited_text_lets_the_user_choose_its_encoding() -> None:
    """The engine says it (describe's encoding_choosable); the page no longer guesses."""
    assert [k for k in FileKind if k.encoding_choosable] == [FileKind.CSV]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"a,b\n1,2\n", FileKind.CSV),
        (b"a\tb\n1\t2\n", FileKind.CSV),
        (b'[{"a": 1}]', FileKind.JSON),
        (b'{"a": 1}\n{"a": 2}\n', FileKind.NDJSON),
    ],
)
def test_file_kind_and_the_sheets_kind_agree(tmp_path: Path, data: bytes, kind: FileKind) -> None:
    """One value set: what `file_kind` says is what the Sheet (and describe) says."""
    from pipeline.readers import read_file

    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_kind(str(path), "f") is kind
    assert read_file(str(path), "f").kind is kind


def test_summary_shape() -> None:
    summary = Summary(
        ("a",), 3, 1, 2, 1, {"a": 2}, {"required": 2}, 3, True,
        policy="valid-only", sent=2, submittable=True,
    )  # fmt: skip
    assert summary.to_dict() == {
        "policy": "valid-only",
        "sent": 2,
        "left_out": 1,
        "submittable": True,
        "fields": ["a"],
        "rows": 3,
        "deleted": 1,
        "error_count": 2,
        "rows_with_errors": 1,
        "by_field": {"a": 2},
        "by_code": {"required": 2},
        "view_rows": 3,
        "can_undo": True,
    }
    assert Summary(("a",), 3, 1, 2, 1, {}, {}, 3, True, changed=0).to_dict()["changed"] == 0


def test_window_row_and_batch_range_shapes() -> None:
    row = WindowRow(0, 2, {"a": "x"}, {"a": ("bad",)}, ("a",), {"a": "y"})
    assert row.to_dict() == {
        "index": 0,
        "row": 2,
        "cells": {"a": "x"},
        "errors": {"a": ["bad"]},
        "edited": ["a"],
        "fixes": {"a": "y"},
        "row_errors": [],
    }
    assert BatchRange(0, 10, 2, 3).to_dict() == {
        "offset": 0,
        "length": 10,
        "first_row": 2,
        "left_out": 3,
    }
