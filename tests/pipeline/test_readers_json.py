"""JSON arrays and NDJSON: union of keys, values as text, non-object rows reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ReadError
from pipeline.readers import ReadOptions, Sheet, read_file


def read(tmp_path: Path, data: bytes | str, name: str = "rows.json", **kw: object) -> Sheet:
    path = tmp_path / "upload"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return read_file(str(path), name, ReadOptions(**kw) if kw else None)  # type: ignore[arg-type]


def columns(sheet: Sheet) -> list[list[str | None]]:
    return [sheet.column(i).to_pylist() for i in range(len(sheet.headers))]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ('[{"a": 1, "b": "x"}, {"c": true, "a": 2.5}, {"b": null, "d": {"k": [1, "é"]}}]', "json"),
        (
            '  \n[\n {"a": 1, "b": "x"},\n {"c": true, "a": 2.5},\n'
            ' {"b": null, "d": {"k": [1, "é"]}}\n]',
            "json",
        ),
        (
            '{"a": 1, "b": "x"}\n{"c": true, "a": 2.5}\n\n{"b": null, "d": {"k": [1, "é"]}}\n',
            "ndjson",
        ),
        (
            '\ufeff{"a": 1, "b": "x"}\r\n{"c": true, "a": 2.5}\r\n'
            '{"b": null, "d": {"k": [1, "é"]}}',
            "ndjson",
        ),
    ],
    ids=["array", "pretty-array", "ndjson", "ndjson-bom-crlf"],
)
def test_rows_and_union_of_keys(tmp_path: Path, data: str, kind: str) -> None:
    sheet = read(tmp_path, data)
    assert sheet.kind == kind
    assert sheet.headers == ("a", "b", "c", "d")
    assert (sheet.header_row, sheet.first_data_row) == (0, 1)  # row N is the N-th object
    assert columns(sheet) == [
        ["1", "2.5", None],
        ["x", None, None],
        [None, "true", None],
        [None, None, '{"k":[1,"é"]}'],
    ]
    assert sheet.problems == ()


def test_utf16_json(tmp_path: Path) -> None:
    sheet = read(tmp_path, '\ufeff[{"name": "Zoé"}]'.encode("utf-16-le"))
    assert columns(sheet) == [["Zoé"]]


def test_non_object_rows_are_reported_and_kept_empty(tmp_path: Path) -> None:
    sheet = read(tmp_path, '[{"a": 42.0}, 7, ["x"], {"a": ""}]')
    assert columns(sheet) == [["42", None, None, None]]
    assert [(p.code, p.row, p.message) for p in sheet.problems] == [
        ("invalid-row", 2, "Row 2 is not an object (it is a number); it is left empty."),
        ("invalid-row", 3, "Row 3 is not an object (it is a list); it is left empty."),
    ]


def test_broken_ndjson_line_is_reported(tmp_path: Path) -> None:
    sheet = read(tmp_path, '{"a": 1}\n{"a": \n{"a": 3}\n', "rows.ndjson")
    assert columns(sheet) == [["1", None, "3"]]
    assert [(p.code, p.row) for p in sheet.problems] == [("invalid-row", 2)]
    assert "line 2 is not valid JSON" in sheet.problems[0].message


def test_single_pretty_object_is_one_row(tmp_path: Path) -> None:
    sheet = read(tmp_path, '{\n  "a": 1,\n  "b": [1, 2]\n}\n')
    assert (sheet.kind, sheet.headers, columns(sheet)) == ("json", ("a", "b"), [["1"], ["[1,2]"]])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            '[{"a": 1},',
            "rows.json is not valid JSON (line 1, column 11: Expecting value). "
            "Fix the file or export it again, and pick it again.",
        ),
        (
            "[1, 2]",
            "rows.json holds no objects with fields. Pick a JSON array of objects "
            '(like [{"name": "Ada"}, ...]) or NDJSON.',
        ),
        ("[]", "rows.json holds no rows. Pick a file with at least one object in it."),
        (
            b'[{"a": "\xe9"}]',
            "rows.json is not UTF-8 encoded (invalid continuation byte); JSON files must be. "
            "Save it as UTF-8 and pick it again.",
        ),
    ],
    ids=["truncated", "numbers", "empty-array", "latin1"],
)
def test_unreadable_json(tmp_path: Path, data: str | bytes, message: str) -> None:
    with pytest.raises(ReadError) as excinfo:
        read(tmp_path, data)
    assert str(excinfo.value) == message


def test_json_size_and_field_limits(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match=r"^rows.json is a JSON document larger than the limit"):
        read(tmp_path, '[{"a": 1}]' + " " * (2 * 1024 * 1024), max_json_bytes=1024 * 1024)
    with pytest.raises(ReadError, match="row 2, column “a” is larger than the limit of 1 KiB"):
        read(tmp_path, '[{"a": 1}, {"a": "' + "x" * 2000 + '"}]', max_field_bytes=1024)
