"""Delimited text: delimiters, quoting, encodings, headers, ragged rows, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ReadError
from pipeline.readers import SAMPLE_BYTES, Sheet, read_file


def write(tmp_path: Path, data: bytes | str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read(tmp_path: Path, data: bytes | str, name: str = "people.csv") -> Sheet:
    return read_file(str(write(tmp_path, data, name)), name)


def cells(sheet: Sheet) -> list[list[str | None]]:
    """Columns as Python lists, in header order."""
    return [sheet.column(i).to_pylist() for i in range(len(sheet.headers))]


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("name,age\nAda,36\nAlan,41\n", ","),
        ("name;age\nAda;36\nAlan;41\n", ";"),
        ("name\tage\nAda\t36\nAlan\t41\n", "\t"),
        ("name|age\nAda|36\nAlan|41\n", "|"),
    ],
)
def test_delimiter_is_sniffed(tmp_path: Path, text: str, delimiter: str) -> None:
    sheet = read(tmp_path, text)
    assert sheet.delimiter == delimiter
    assert sheet.headers == ("name", "age")
    assert cells(sheet) == [["Ada", "Alan"], ["36", "41"]]
    assert sheet.num_rows == 2


def test_semicolon_file_with_decimal_commas(tmp_path: Path) -> None:
    sheet = read(tmp_path, "name;price\nAda;1,5\nAlan;2,75\n")
    assert sheet.delimiter == ";"
    assert cells(sheet) == [["Ada", "Alan"], ["1,5", "2,75"]]


def test_comma_file_with_semicolons_in_values(tmp_path: Path) -> None:
    sheet = read(tmp_path, "name,tags\nAda,a;b\nAlan,c;d\n")
    assert sheet.delimiter == ","
    assert cells(sheet) == [["Ada", "Alan"], ["a;b", "c;d"]]


def test_single_column_file(tmp_path: Path) -> None:
    sheet = read(tmp_path, "full name\nAda Lovelace\nAlan Turing\n")
    assert sheet.headers == ("full name",)
    assert cells(sheet) == [["Ada Lovelace", "Alan Turing"]]


def test_quoted_fields_keep_delimiters_quotes_and_newlines(tmp_path: Path) -> None:
    sheet = read(
        tmp_path,
        'name,note\n"Lovelace, Ada","she said ""hi""\nthen left"\nAlan,plain\n',
    )
    assert sheet.num_rows == 2
    assert cells(sheet) == [
        ["Lovelace, Ada", "Alan"],
        ['she said "hi"\nthen left', "plain"],
    ]


def test_quoted_header_cells(tmp_path: Path) -> None:
    sheet = read(tmp_path, '"first name","last, name"\nAda,Lovelace\n')
    assert sheet.headers == ("first name", "last, name")
    assert cells(sheet) == [["Ada"], ["Lovelace"]]


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    sheet = read(tmp_path, b"\xef\xbb\xbfname,city\r\nZo\xc3\xa9,Paris\r\nAda,London\r\n")
    assert sheet.headers == ("name", "city")
    assert cells(sheet) == [["Zoé", "Ada"], ["Paris", "London"]]


def test_header_cells_are_stripped(tmp_path: Path) -> None:
    assert read(tmp_path, " name , age \nAda,36\n").headers == ("name", "age")


def test_blank_and_repeated_headers_get_unique_labels(tmp_path: Path) -> None:
    sheet = read(tmp_path, "Name,,Name, ,Name\n1,2,3,4,5\n")
    assert sheet.headers == ("Name", "Column 2", "Name (2)", "Column 4", "Name (3)")
    assert cells(sheet) == [["1"], ["2"], ["3"], ["4"], ["5"]]


def test_empty_and_quoted_empty_cells_are_null(tmp_path: Path) -> None:
    sheet = read(tmp_path, 'a,b,c\n"",x,\n,,"y"\n')
    assert cells(sheet) == [[None, None], ["x", None], [None, "y"]]


def test_trailing_blank_lines_and_missing_final_newline(tmp_path: Path) -> None:
    assert read(tmp_path, "a,b\n1,2\n\n\n", "a.csv").num_rows == 1
    assert cells(read(tmp_path, "a,b\n1,2\n3,4", "b.csv")) == [["1", "3"], ["2", "4"]]


def test_sheet_metadata(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\n1,2\n3,4\n", "upload-123")
    sheet = read_file(str(path), "contacts.csv")
    assert sheet.file_name == "contacts.csv"
    assert sheet.header_row == 1
    assert sheet.first_data_row == 2
    assert sheet.num_rows == 2
    assert sheet.table.column_names == ["0", "1"]


def test_large_file_reads_past_the_sniffing_sample(tmp_path: Path) -> None:
    rows = 6000  # about 3 x SAMPLE_BYTES
    text = "id,name\n" + "".join(f"{i},name number {i:05d} é\n" for i in range(rows))
    assert len(text.encode()) > 2 * SAMPLE_BYTES
    sheet = read(tmp_path, text)
    assert sheet.num_rows == rows
    ids = sheet.column(0).to_pylist()
    assert ids[0] == "0" and ids[-1] == str(rows - 1)
    assert sheet.column(1).to_pylist()[4321] == "name number 04321 é"


def test_multibyte_character_cut_by_the_sample_end(tmp_path: Path) -> None:
    head = "name,note\n"
    filler = "x" * (SAMPLE_BYTES - len(head) - 2)
    text = f"{head}{filler},é\n"  # "é" straddles byte SAMPLE_BYTES
    assert text.encode().index("é".encode()) == SAMPLE_BYTES - 1
    sheet = read(tmp_path, text + "a,b\n")
    assert sheet.headers == ("name", "note")
    assert cells(sheet) == [[filler, "a"], ["é", "b"]]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "people.csv is empty. Pick a file with a header row and at least one row of data."),
        (
            b"  \r\n\t\n",
            "people.csv is empty. Pick a file with a header row and at least one row of data.",
        ),
        (
            b"name,age\n",
            "people.csv has a header row but no data rows. Add at least one row under the header.",
        ),
        (
            b"name,age\r\n",
            "people.csv has a header row but no data rows. Add at least one row under the header.",
        ),
        (
            b"name,age\n\x00\x01\x02\x03,4\n",
            "people.csv does not look like a text (CSV) file: it contains binary data. "
            "Export the data as CSV and try again.",
        ),
        (
            b"PK\x03\x04\x14\x00\x06\x00",
            "people.csv looks like a zip-based spreadsheet (xlsx, ods) but cannot be opened: "
            "it is damaged or incomplete (File is not a zip file). Open it in your spreadsheet "
            "program, save it again, and pick the new file.",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,
            "people.csv looks like an Excel 97-2003 workbook (xls) but cannot be opened: "
            "it is damaged or incomplete (",
        ),
    ],
    ids=["empty", "whitespace", "header-only", "header-only-crlf", "binary", "zip", "ole2"],
)
def test_unreadable_files(tmp_path: Path, data: bytes, expected: str) -> None:
    with pytest.raises(ReadError) as excinfo:
        read(tmp_path, data)
    if expected.endswith("("):
        assert str(excinfo.value).startswith(expected)
        assert str(excinfo.value).endswith("save it again, and pick the new file.")
    else:
        assert str(excinfo.value) == expected


def test_ascii_sample_then_latin1_is_read_as_windows_1252(tmp_path: Path) -> None:
    data = b"a,b\n" + b"xxxxxxxxxx,yyyyyyyyyy\n" * 4000 + "é,z\n".encode("latin-1")
    assert len(data) > SAMPLE_BYTES
    sheet = read(tmp_path, data)
    assert sheet.encoding == "windows-1252"
    assert sheet.num_rows == 4001
    assert sheet.column(0).to_pylist()[-1] == "é"


def test_utf8_sample_then_latin1_is_refused(tmp_path: Path) -> None:
    data = "a,b\nZoé,x\n".encode() + b"xxxxxxxxxx,yyyyyyyyyy\n" * 4000 + b"\xe9,z\n"
    with pytest.raises(ReadError) as excinfo:
        read(tmp_path, data)
    message = str(excinfo.value)
    assert message.startswith("people.csv is not UTF-8 encoded throughout (row 4003 is not ")
    assert message.endswith(
        "Pick the file's encoding (for example Windows-1252), or save it as 'CSV UTF-8' "
        "and pick it again."
    )


@pytest.mark.parametrize(
    ("text", "columns", "problems"),
    [
        (
            "a,b\n1,2\n3,4,5\n6,7\n",
            [["1", "3", "6"], ["2", "4", "7"]],
            [
                (
                    "extra-cell",
                    3,
                    3,
                    "Row 3 has 3 cells but the header has 2; the cells after column 2 "
                    'hold "5". Check for an unquoted delimiter, or delete the row.',
                )
            ],
        ),
        (
            "a,b\n1,2\n3\n6,7\n",
            [["1", "3", "6"], ["2", None, "7"]],
            [
                (
                    "missing-cell",
                    3,
                    2,
                    "Row 3 has 1 cell(s) but the header has 2; the missing cells are read "
                    "as empty. Check for a missing delimiter or a line break, or delete the row.",
                )
            ],
        ),
        ("a,b\n1,2,\n3,4\n", [["1", "3"], ["2", "4"]], []),  # a trailing empty cell
    ],
    ids=["too-many", "too-few", "trailing-empty"],
)
def test_ragged_rows_are_reported_and_the_rest_is_usable(
    tmp_path: Path, text: str, columns: list[list[str | None]], problems: list[tuple[object, ...]]
) -> None:
    sheet = read(tmp_path, text)
    assert cells(sheet) == columns
    assert [(p.code, p.row, p.column, p.message) for p in sheet.problems] == problems
    assert sheet.problem_count == len(problems)


def test_many_ragged_rows_keep_a_bounded_list(tmp_path: Path) -> None:
    sheet = read(tmp_path, "a,b\n" + "1\n" * 3000)
    assert sheet.num_rows == 3000
    assert sheet.problem_count == 3000
    assert len(sheet.problems) == 1000
    assert sheet.problems[-1].row == 1001


def test_ragged_file_past_the_first_batch(tmp_path: Path) -> None:
    text = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(70_000)) + "x,y,z\n"
    sheet = read(tmp_path, text)
    assert sheet.num_rows == 70_001
    assert [(p.code, p.row) for p in sheet.problems] == [("extra-cell", 70_002)]
