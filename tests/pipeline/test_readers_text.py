"""read_file on delimited text: encodings, line endings, header detection, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ReadError
from pipeline.readers import ReadOptions, Sheet, read_file

TEXT = "name;city\nZoé;Besançon\nJosé Nuñez;Málaga\n"
SHIFT_JIS = "名前,都市\n" + "".join(f"山田太郎{i},東京都渋谷区\n" for i in range(10))


def read(tmp_path: Path, data: bytes, name: str = "people.csv", **options: object) -> Sheet:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return read_file(str(path), name, ReadOptions(**options) if options else None)  # type: ignore[arg-type]


def cells(sheet: Sheet) -> list[list[str | None]]:
    return [sheet.column(i).to_pylist() for i in range(len(sheet.headers))]


@pytest.mark.parametrize(
    ("data", "encoding", "text"),
    [
        (TEXT.encode(), "utf-8", TEXT),
        (b"\xef\xbb\xbf" + TEXT.encode(), "utf-8", TEXT),
        (b"\xff\xfe" + TEXT.encode("utf-16-le"), "utf-16-le", TEXT),
        (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16-be", TEXT),
        (TEXT.encode("utf-16-le"), "utf-16-le", TEXT),  # no BOM: told by the NUL pattern
        (TEXT.encode("cp1252"), "windows-1252", TEXT),
        (TEXT.encode("latin-1"), "windows-1252", TEXT),
        ("name;price\nJosé;12€\nAnne;“3” – 4\n".encode("cp1252"), "windows-1252", None),
        (SHIFT_JIS.encode("shift_jis"), "shift_jis", SHIFT_JIS),
    ],
    ids=[
        "utf8",
        "utf8-bom",
        "utf16le-bom",
        "utf16be-bom",
        "utf16le",
        "cp1252",
        "latin1",
        "cp1252-typography",
        "shift-jis",
    ],
)
def test_encodings_are_detected(
    tmp_path: Path, data: bytes, encoding: str, text: str | None
) -> None:
    sheet = read(tmp_path, data)
    assert sheet.encoding == encoding
    if text is None:
        assert cells(sheet) == [["José", "Anne"], ["12€", "“3” – 4"]]
        return
    lines = [line.split(sheet.delimiter) for line in text.splitlines()]
    assert sheet.headers == tuple(lines[0])
    assert cells(sheet) == [list(col) for col in zip(*lines[1:], strict=True)]


def test_encoding_can_be_overridden(tmp_path: Path) -> None:
    data = "jméno,město\nJiří,Plzeň\n".encode("cp1250")
    assert cells(read(tmp_path, data)) != [["Jiří"], ["Plzeň"]]  # guessed Western
    sheet = read(tmp_path, data, encoding="cp1250")
    assert sheet.headers == ("jméno", "město")
    assert cells(sheet) == [["Jiří"], ["Plzeň"]]


def test_unknown_encoding_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="“klingon” is not an encoding loadbay knows. Pick one"):
        read(tmp_path, b"a,b\n1,2\n", encoding="klingon")


def test_wrong_encoding_override_names_the_byte(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as excinfo:
        read(tmp_path, "a,b\nZoé,1\n".encode("latin-1"), encoding="utf-8")
    assert str(excinfo.value) == (
        "people.csv is not UTF-8 encoded (byte 7 is not valid UTF-8). "
        "Pick the file's encoding, or save it as 'CSV UTF-8' and pick it again."
    )


def test_large_non_utf8_file_is_transcoded_in_chunks(tmp_path: Path) -> None:
    rows = 60_000  # several 1 MiB transcoding chunks, past one arrow batch
    text = "id;name\n" + "".join(f"{i};Zoé Ünïcödé {i}\n" for i in range(rows))
    sheet = read(tmp_path, text.encode("utf-16-le"))
    assert sheet.num_rows == rows
    assert sheet.column(1).to_pylist()[rows - 1] == f"Zoé Ünïcödé {rows - 1}"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_line_endings(tmp_path: Path, newline: str) -> None:
    text = newline.join(["name,note", 'Ada,"two' + newline + 'lines"', "Alan,x", ""])
    sheet = read(tmp_path, text.encode())
    assert cells(sheet) == [["Ada", "Alan"], ["two" + newline + "lines", "x"]]


@pytest.mark.parametrize(
    ("text", "header_row", "headers"),
    [
        ("name,age\nAda,36\n", 1, ("name", "age")),
        ("Contacts export\nname,age\nAda,36\n", 2, ("name", "age")),
        ("\n\nContacts export,,\n,,\nname,age,city\nAda,36,X\n", 5, ("name", "age", "city")),
        ("Report;;;\nname;age;city;zip\nAda;36;X;1\n", 2, ("name", "age", "city", "zip")),
        ("1,2\n3,4\n", 1, ("1", "2")),  # numbers only: the first row
        ("full name\nAda Lovelace\n", 1, ("full name",)),
    ],
    ids=["plain", "title", "blank-and-title", "two-cell-title", "numbers", "one-column"],
)
def test_header_row_is_detected(
    tmp_path: Path, text: str, header_row: int, headers: tuple[str, ...]
) -> None:
    sheet = read(tmp_path, text.encode())
    assert sheet.header_row == header_row
    assert sheet.first_data_row == header_row + 1
    assert sheet.headers == headers
    assert sheet.column(0).to_pylist()[0] in ("Ada", "3", "Ada Lovelace")


def test_header_row_can_be_chosen(tmp_path: Path) -> None:
    data = b"Contacts export\nname,age\nAda,36\n"
    sheet = read(tmp_path, data, header_row=2)
    assert (sheet.header_row, sheet.headers, sheet.num_rows) == (2, ("name", "age"), 1)
    with pytest.raises(ReadError) as excinfo:
        read(tmp_path, data, header_row=9)
    assert str(excinfo.value) == (
        "people.csv: the header row must be between 1 and 3 (the rows that were scanned), "
        "not 9. Pick one of those rows."
    )


def test_title_rows_with_a_transcoded_file(tmp_path: Path) -> None:
    text = "Rapport\nnom;ville;pays\nZoé;Besançon;FR\nAndré;Orléans;FR\n"
    sheet = read(tmp_path, b"\xff\xfe" + text.encode("utf-16-le"))
    assert sheet.header_row == 2
    assert cells(sheet) == [["Zoé", "André"], ["Besançon", "Orléans"], ["FR", "FR"]]


def test_blank_and_duplicate_headers_are_flagged(tmp_path: Path) -> None:
    sheet = read(tmp_path, b"Name,,Name\n1,2,3\n")
    assert sheet.headers == ("Name", "Column 2", "Name (2)")
    assert [(p.code, p.row, p.column) for p in sheet.problems] == [
        ("blank-label", 1, 2),
        ("duplicate-label", 1, 3),
    ]


def test_a_50_mb_line_is_refused_by_the_field_size_limit(tmp_path: Path) -> None:
    data = b"name,note\nAda," + b"x" * (50 * 1024 * 1024) + b"\nAlan,y\n"
    with pytest.raises(ReadError) as excinfo:
        read(tmp_path, data)
    assert str(excinfo.value) == (
        "people.csv: the cell at row 2, column “note” is larger than the limit of 128 KiB. "
        "Check for a missing closing quote, or shorten the cell, and pick the file again."
    )


def test_a_50_mb_file_without_line_breaks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ReadError,
        match=r"^people.csv: the cell at row 1 is larger than the "
        r"limit of 128 KiB. Check for a missing closing quote",
    ):
        read(tmp_path, b"x" * (50 * 1024 * 1024))


def test_field_size_limit_is_configurable_and_applies_to_ragged_files(tmp_path: Path) -> None:
    assert read(tmp_path, b"a,b\n1," + b"y" * 2000 + b"\n").num_rows == 1
    with pytest.raises(ReadError, match="row 3, column “b” is larger than the limit of 1 KiB"):
        read(tmp_path, b"a,b\n1,2\n1," + b"y" * 2000 + b"\n", max_field_bytes=1024)
    with pytest.raises(ReadError, match="row 3, column “b” is larger than the limit of 1 KiB"):
        read(tmp_path, b"a,b\n1\n1," + b"y" * 2000 + b"\n", max_field_bytes=1024)


def test_long_cells_are_found_anywhere_in_a_batch(tmp_path: Path) -> None:
    rows = [f"{i},short" for i in range(5000)]
    rows[4321] = "4321," + "z" * 1500
    data = ("id,text\n" + "\n".join(rows) + "\n").encode()
    with pytest.raises(ReadError, match="row 4323, column “text”"):
        read(tmp_path, data, max_field_bytes=1024)


@pytest.mark.parametrize(
    ("size", "limit", "message"),
    [
        (10, 9, "is larger than the limit of 9 bytes"),
        (10, 2 * 1024**3, None),
    ],
)
def test_size_limit_is_checked_before_reading(
    tmp_path: Path, size: int, limit: int, message: str | None
) -> None:
    data = b"a,b\n1,2345\n"[:size] + b"\n"
    if message is None:
        assert read(tmp_path, data, max_bytes=limit).num_rows == 1
        return
    with pytest.raises(ReadError) as excinfo:
        read(tmp_path, data, max_bytes=limit)
    assert str(excinfo.value) == (
        f"people.csv {message}. Split it into smaller files and import them one by one."
    )


def test_default_size_limit_is_1_gib_as_the_servers(tmp_path: Path) -> None:
    assert ReadOptions().max_bytes == 1024**3 == 1073741824
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:
        fh.truncate(1024**3 + 1)  # sparse: nothing is written
    with pytest.raises(ReadError, match=r"^huge.csv is larger than the limit of 1 GiB\. Split"):
        read_file(str(path), "huge.csv")


def test_csv_has_no_sheets(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="people.csv is a text \\(CSV\\) file: it has no sheets"):
        read(tmp_path, b"a,b\n1,2\n", sheet="Sheet1")


def test_type_is_judged_by_bytes_not_name(tmp_path: Path) -> None:
    sheet = read(tmp_path, b"a,b\n1,2\n", name="report.xlsx")
    assert (sheet.kind, sheet.headers) == ("csv", ("a", "b"))
    sheet = read(tmp_path, b'[{"a": 1}]', name="report.csv")
    assert (sheet.kind, sheet.headers) == ("json", ("a",))
