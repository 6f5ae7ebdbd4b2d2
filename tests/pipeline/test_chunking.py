"""A delimited file read in parts and joined gives exactly what reading it whole gives."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import arro3.core as ac
import pytest

from pipeline import chunking
from pipeline.cell_errors import CellError
from pipeline.chunking import (
    InTurn,
    ReadWhole,
    awaited_part,
    cells_from,
    cuts,
    errors_from_wire,
    errors_to_wire,
    in_turn,
    merged_errors,
    part_errors,
    part_meta,
    parts_in_turn,
    read_in_parts,
    read_ranges,
    renumbered,
    validate_in_parts,
    with_part,
    write_cells,
)
from pipeline.delimited import Head, Part, read_head, read_part
from pipeline.errors import ReadError
from pipeline.readers import read_file
from pipeline.sheet import ReadOptions, Sheet
from pipeline.template import parse_template
from pipeline.validation import validate

FILES: dict[str, bytes] = {
    "plain": b"a,b,c\n1,x,p\n2,y,q\n3,z,r\n4,w,s\n5,v,t\n",
    "quoted_newlines": b'a,b\n1,"one\ntwo"\n2,"x\n\ny"\n3,"a ""q"" b\nc"\n4,z\n5,"\n"\n',
    "crlf_bom": b'\xef\xbb\xbfa;b\r\n1;"x\r\ny"\r\n2;z\r\n3;w\r\n4;"\r\n"\r\n5;v\r\n',
    "blank_lines": b"a,b\n1,x\n\n2,y\n,\n3,z\n\n\n4,w\n",
    "trailing_blank": b"a,b\n1,x\n2,y\n,\n\n,\n\n",
    "ragged": b"a,b,c\n1,x,p\n2,y\n3,z,r,EXTRA\n4,w,s\n5,v,t\n6,u,o\n",
    "no_final_newline": b'a,b\n1,x\n2,"y\nz"\n3,w',
    "stray_quotes": b'a,b\n1,x"y\n2,"p\nq"\n3,z\n',
}


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / f"{name}.csv"
    path.write_bytes(data)
    return str(path)


def state(sheet: Sheet) -> dict[str, Any]:
    """Everything a Sheet tells the review and the page."""
    return {
        "headers": sheet.headers,
        "rows": [sheet.column(i).to_pylist() for i in range(len(sheet.headers))],
        "header_row": sheet.header_row,
        "delimiter": sheet.delimiter,
        "encoding": sheet.encoding,
        "blank_rows": sheet.blank_rows,
        "row_errors": [e.to_dict() for e in sheet.row_errors],
        "problems": [p.to_dict() for p in sheet.problems],
        "problem_count": sheet.problem_count,
        "headerless": sheet.looks_headerless,
    }


def head_of(path: str) -> Head:
    head = read_head(path, Path(path).name, ReadOptions(), Path(path).stat().st_size)
    assert head is not None
    return head


def joined_at(path: str, bounds: list[int]) -> Sheet:
    """The parts of `bounds` read one by one (as the workers do) and joined."""
    return read_ranges(path, head_of(path), bounds).sheet


def line_feeds(data: bytes, start: int) -> list[int]:
    """Every offset right after a line feed, past `start` and before the end."""
    return [i + 1 for i, byte in enumerate(data) if byte == 10 and start < i + 1 < len(data)]


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_cut_and_pair_of_cuts_joins_to_the_whole_read(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, FILES[name])
    whole = state(read_file(path, Path(path).name))
    head = head_of(path)
    feeds = line_feeds(FILES[name], head.start)
    assert feeds  # every file here can be cut
    for count in (1, 2):
        for chosen in itertools.combinations(feeds, count):
            bounds = [head.start, *chosen, len(FILES[name])]
            assert state(joined_at(path, bounds)) == whole, (name, bounds)


def test_a_cut_inside_quotes_is_read_with_the_next_range(tmp_path: Path) -> None:
    data = FILES["quoted_newlines"]
    path = write(tmp_path, "q", data)
    head = head_of(path)
    inside = data.index(b"one\n") + 4  # right after the line feed inside "one\ntwo"
    assert not read_part(path, head, head.start, inside, last=False).verified
    assert read_part(path, head, head.start, data.index(b"2,"), last=False).verified
    joined = read_in_parts(path, "q.csv", ReadOptions(), 1, 0)
    assert joined.bounds == ()  # one part: read whole
    sheet = joined_at(path, [head.start, inside, len(data)])
    assert sheet.column(1).to_pylist()[:2] == ["one\ntwo", "x\n\ny"]


def test_cuts_fall_after_line_feeds_and_split_evenly(tmp_path: Path) -> None:
    data = b"h1,h2\r\n" + b"".join(b"%d,value %d\r\n" % (i, i) for i in range(1000))
    path = write(tmp_path, "c", data)
    start = data.index(b"\n") + 1
    bounds = cuts(path, start, len(data), 4)
    assert bounds[0] == start and bounds[-1] == len(data) and len(bounds) == 5
    assert all(data[b - 1 : b] == b"\n" for b in bounds[1:-1])
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    assert max(sizes) - min(sizes) < 30  # within a line or two of a quarter each


def test_cuts_are_fewer_when_lines_are_longer_than_a_range(tmp_path: Path) -> None:
    data = b"a\n" + b"x" * 300_000 + b"\n" + b"y\n"
    path = write(tmp_path, "long", data)
    assert cuts(path, 2, len(data), 3) == [2, 300_003, len(data)]
    no_feed = b"a\r1\r2\r"  # old Mac line ends: no line feed to cut after
    assert cuts(write(tmp_path, "cr", no_feed), 2, len(no_feed), 3) == [2, len(no_feed)]


def test_only_the_part_with_a_ragged_row_takes_the_python_reader(tmp_path: Path) -> None:
    data = FILES["ragged"]
    path = write(tmp_path, "r", data)
    head = head_of(path)
    cut = data.index(b"4,w")
    first = read_part(path, head, head.start, cut, last=False)
    second = read_part(path, head, cut, len(data), last=True)
    assert first.slow and not second.slow
    assert [(e.row, e.code) for e in first.row_errors] == [(2, "missing-cell"), (3, "extra-cell")]
    sheet = joined_at(path, [head.start, cut, len(data)])
    assert [(e.row, e.code) for e in sheet.row_errors] == [(3, "missing-cell"), (4, "extra-cell")]
    # later parts' rows are renumbered too: a ragged row after the cut
    late = b"a,b\n1,x\n2,y\n3,z,EXTRA\n4,w\n"
    path = write(tmp_path, "late", late)
    head = head_of(path)
    sheet = joined_at(path, [head.start, late.index(b"3,"), len(late)])
    errors = [e.to_dict() for e in sheet.row_errors]
    assert [(e["row"], e["params"]["row"]) for e in errors] == [(4, 4)]  # type: ignore[index]
    assert "4" in str(errors[0]["message"])


def test_blank_rows_of_later_parts_are_renumbered(tmp_path: Path) -> None:
    data = FILES["blank_lines"]
    path = write(tmp_path, "b", data)
    head = head_of(path)
    sheet = joined_at(path, [head.start, data.index(b"3,z"), len(data)])
    assert sheet.blank_rows == (1, 3, 5, 6)
    assert [p.row for p in sheet.problems if p.code == "blank-row"] == [3, 5, 7, 8]


def test_renumbered_shifts_the_row_and_its_message() -> None:
    error = CellError(3, None, "extra-cell", "extra-cell", None, {"row": 3, "count": 4})
    moved = renumbered(error, 100)
    assert (moved.row, moved.params["row"], error.params["row"]) == (103, 103, 3)
    plain = CellError(5, "a", "type-error", "type-error")
    assert renumbered(plain, 10) == plain._replace(row=15)


@pytest.mark.parametrize(
    "data",
    [
        b'a,b\n1,2\n3,"4\n5,6\n7,8\n',  # a quote never closed
        # a cell over the limit, and a byte that is not UTF-8, after the head's sample
        b"a,b\n" + b"1,2\n" * 20_000 + b"1," + b"x" * (200 * 1024) + b"\n2,3\n4,5\n",
        b"a,b\n" + b"1,2\n" * 20_000 + b"3,\xe9\n4,5\n",
    ],
    ids=["unclosed_quote", "long_cell", "not_utf8"],
)
def test_a_part_that_cannot_be_read_reads_the_file_whole(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, "bad", data)
    try:
        whole: Any = state(read_file(path, "bad.csv"))
    except ReadError as exc:
        whole = str(exc)
    head = head_of(path)
    feeds = line_feeds(data, head.start)
    for cut in feeds[:: max(1, len(feeds) // 12)] + feeds[-3:]:
        try:
            joined: Any = state(joined_at(path, [head.start, cut, len(data)]))
        except ReadWhole:
            joined = "whole"
        assert joined in (whole, "whole")
    for count in (2, 3):
        try:
            parts: Any = state(read_in_parts(path, "bad.csv", ReadOptions(), count, 0).sheet)
        except ReadError as exc:
            parts = str(exc)
        assert parts == whole


TEMPLATE = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "email", "format": "email", "constraints": {"unique": True}},
        {"name": "code", "constraints": {"pattern": "[A-Z]{2}"}},
        {"name": "n", "type": "integer", "constraints": {"minimum": 0}},
    ],
    "primaryKey": ["code", "n"],
}


def test_validation_in_parts_equals_validation_of_the_whole(tmp_path: Path) -> None:
    rows = [
        ("1", "a@example.com", "AB", "1"),
        ("2", "b@example.com", "AB", "1"),  # primary key repeats row 2
        ("x", "not an email", "ab", "-1"),
        ("4", "a@example.com", "CD", "2"),  # email repeats, across the cut
        (None, "d@example.com", "CD", "3"),
        ("2", None, "CD", "2"),  # id and key repeat, across the cut
        ("7", "g@example.com", None, None),
        ("4", "not an email", "zz", "-5"),  # a repeated id in a row with cell errors too
        ("1", "a@example.com", "AB", "1"),  # every rule across rows, and the e-mail again
    ]
    lines = ["id,email,code,n"] + [",".join(c or "" for c in r) for r in rows]
    path = write(tmp_path, "v", ("\n".join(lines) + "\n").encode())
    template = parse_template(TEMPLATE)
    sheet = read_file(path, "v.csv")
    names = ["id", "email", "code", "n"]
    table = sheet.table.rename_columns(names)
    whole = validate(table, template, 2)
    assert {e.code for e in whole} >= {"primary-key", "type-error", "constraint-error"}
    assert any(e.constraint == "unique" for e in whole)
    for starts in ([0], [0, 3], [0, 1, 4], [0, 2, 5, 6], [0, 1, 2, 3, 4, 5, 6, 7, 8]):
        assert validate_in_parts(table, template, 2, starts) == whole, starts
    # a part alone checks no rule across rows
    assert not [e for e in part_errors(table, template, 2) if e.code == "primary-key"]
    assert merged_errors(template, [], []) == []


# --- in turn ------------------------------------------------------------------------------------


def rows_in_turn(source: InTurn, bounds: list[int]) -> dict[str, Any]:
    """The rows, blank rows and row errors of the parts read in turn, put end to end."""
    width = len(source.head.headers)
    columns: list[list[Any]] = [[] for _ in range(width)]
    blank: list[int] = []
    errors: list[Any] = []
    for part, before in parts_in_turn(source, bounds):
        for i in range(width):
            columns[i] += part.table.column(str(i)).to_pylist()
        blank += [before + index for index in part.blank_rows]
        errors += [e.to_dict() for e in part.row_errors]
    return {"rows": columns, "blank_rows": blank, "row_errors": errors}


def whole_rows(sheet: Sheet) -> dict[str, Any]:
    return {
        "rows": [sheet.column(i).to_pylist() for i in range(len(sheet.headers))],
        "blank_rows": list(sheet.blank_rows),
        "row_errors": [e.to_dict() for e in sheet.row_errors],
    }


def trimmed(found: dict[str, Any], rows: int) -> dict[str, Any]:
    """Without the blank rows after the last row (the whole read drops them)."""
    return {
        "rows": [column[:rows] for column in found["rows"]],
        "blank_rows": [i for i in found["blank_rows"] if i < rows],
        "row_errors": found["row_errors"],
    }


@pytest.mark.parametrize("name", sorted(FILES))
def test_parts_read_in_turn_at_any_cuts_are_the_whole_read(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, FILES[name])
    sheet = read_file(path, Path(path).name)
    source = in_turn(path, Path(path).name, ReadOptions(), str(tmp_path / "copy"))
    assert source is not None and source.path == path  # UTF-8: read in place
    feeds = line_feeds(FILES[name], source.head.start)
    for count in (0, 1, 2):
        for chosen in itertools.combinations(feeds, count):
            bounds = [source.head.start, *chosen, len(FILES[name])]
            found = trimmed(rows_in_turn(source, bounds), sheet.num_rows)
            assert found == whole_rows(sheet), (name, bounds)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("a;b\n1;café\n2;Zürich\n3;naïve\n".encode("cp1252"), None),
        ("a,b\n1,Łódź\n2,żółw\n".encode("utf-16"), None),
        ("a,b\n1,Ωμέγα\n2,ΑΒΓ\n".encode("cp1253"), "windows-1253"),
        (b"a,b\n" + b"1,plain\n" * 20_000 + b"2,caf\xe9\n3,x\n", None),  # cp1252 late
    ],
    ids=["cp1252", "utf16", "chosen", "ascii_then_cp1252"],
)
def test_a_file_in_another_encoding_is_read_in_turn_from_a_utf8_copy(
    tmp_path: Path, data: bytes, encoding: str | None
) -> None:
    path = write(tmp_path, "enc", data)
    options = ReadOptions(encoding=encoding)
    sheet = read_file(path, "enc.csv", options)
    copy = tmp_path / "copy.csv"
    source = in_turn(path, "enc.csv", options, str(copy))
    assert source is not None and source.path == str(copy)
    size = copy.stat().st_size
    for parts in (1, 3):
        bounds = cuts(source.path, source.head.start, size, parts)
        assert len(bounds) > min(parts, 2)  # cut in two at least
        assert trimmed(rows_in_turn(source, bounds), sheet.num_rows) == whole_rows(sheet)


@pytest.mark.parametrize(
    "data",
    [
        b'a,b\n1,2\n3,"4\n5,6\n7,8\n',  # a quote never closed
        b"a,b\n" + b"1,2\n" * 20_000 + b"1," + b"x" * (200 * 1024) + b"\n2,3\n4,5\n",
    ],
    ids=["unclosed_quote", "long_cell"],
)
def test_a_part_that_cannot_be_read_in_turn_names_the_files_row(
    tmp_path: Path, data: bytes
) -> None:
    path = write(tmp_path, "bad", data)
    with pytest.raises(ReadError) as whole:
        read_file(path, "bad.csv")
    source = in_turn(path, "bad.csv", ReadOptions(), str(tmp_path / "copy"))
    assert source is not None
    feeds = line_feeds(data, source.head.start)
    for cut in feeds[:: max(1, len(feeds) // 12)] + feeds[-3:]:
        with pytest.raises(ReadError) as turn:
            rows_in_turn(source, [source.head.start, cut, len(data)])
        assert str(turn.value) == str(whole.value), cut


def test_a_part_travels_in_pieces_and_comes_back_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender never holds the whole stream (each batch is its own piece), the receiver
    reads it as a worker gives it (a few bytes at a time) in place of the null cells that
    stood for it; its errors keep their type."""
    monkeypatch.setattr(chunking, "PIECE_BYTES", 1024)
    column = ac.Array([f"value {i}" for i in range(30_000)], ac.DataType.string())
    whole = ac.Table.from_arrays([column], names=["0"])
    table = ac.Table.from_batches(
        [b for k in range(3) for b in whole.slice(k * 10_000, 10_000).to_batches()]
    )
    pieces: list[bytes] = []
    write_cells(table, lambda piece: pieces.append(bytes(piece)))
    stream = b"".join(pieces)
    assert len(pieces) >= 3 and max(map(len, pieces)) < len(stream) / 2
    at = 0

    def read(n: int) -> bytes:
        nonlocal at
        piece = stream[at : at + min(n, 4096)]
        at += len(piece)
        return piece

    error = CellError(7, None, "extra-cell", "extra-cell", None, {"row": 7})
    awaited = awaited_part(30_000, part_meta(Part(table, (3,), (error,), True, False)), 1)
    assert awaited.table.num_rows == 30_000 and awaited.table.column(0).null_count == 30_000
    assert awaited.blank_rows == (3,) and awaited.row_errors == (error,)
    assert isinstance(awaited.row_errors[0], CellError)
    head = ac.Table.from_arrays([ac.Array(["a", "b"], ac.DataType.string())], names=["0"])
    joined = ac.Table.from_batches([*head.to_batches(), *awaited.table.to_batches()])
    filled = with_part(joined, [0, 2], 1, cells_from(read))
    assert filled.column("0").to_pylist() == ["a", "b", *column.to_pylist()]
    assert errors_from_wire(errors_to_wire([error, error])) == [error, error]
