"""Spreadsheets: xlsx, xls, xlsb, ods read into Arrow strings, with sheets and header rows."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from pipeline.errors import ReadError
from pipeline.excel import _text
from pipeline.readers import ReadOptions, Sheet, read_file, sheet_names

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
HEADERS = ("Name", "Email", "Joined", "Amount", "Active", "Total")
ROWS = [
    ["Ada Lovelace", "ada@example.com", "2024-01-05", "42", "true", "84"],
    ["Alan Turing", "alan@example.com", "2024-02-29T13:30:05", "0.1", "false", "0.2"],
    ["Grace Hopper", "not-an-email", "2023-12-31", "1234.5", "true", "2469"],
    ["Zoë Ünïcödé", None, "2024-03-01", "-7", "false", "-14"],
    ["Merged Name", "merged1@example.com", None, None, None, None],
    [None, "merged2@example.com", None, None, None, None],  # merged: top-left cell only
]


def rows(sheet: Sheet) -> list[list[str | None]]:
    columns = [sheet.column(i).to_pylist() for i in range(len(sheet.headers))]
    return [list(r) for r in zip(*columns, strict=True)]


@pytest.mark.parametrize("kind", ["xlsx", "xls", "ods"])
def test_people_workbook(kind: str) -> None:
    sheet = read_file(str(FILES / f"people.{kind}"), f"people.{kind}")
    assert sheet.kind == kind
    assert (sheet.sheet_name, sheet.sheet_names) == ("People", ("People", "Notes"))
    assert sheet.header_row == 3  # title row 1 (merged), blank row 2
    assert sheet.first_data_row == 4
    assert sheet.headers == HEADERS
    expected = [list(r) for r in ROWS]
    if kind == "ods":  # LibreOffice stores Excel's booleans as numbers with a boolean format
        for r in expected:
            r[4] = {"true": "1", "false": "0"}.get(r[4] or "", r[4])
    assert rows(sheet) == expected
    assert sheet.problems == ()


def test_xlsb() -> None:
    sheet = read_file(str(FILES / "people.xlsb"), "people.xlsb")
    assert (sheet.kind, sheet.header_row, sheet.headers) == ("xlsb", 1, HEADERS[:5])
    assert rows(sheet) == [r[:5] for r in ROWS[:4]]


def test_sheet_can_be_picked_and_listed() -> None:
    path = str(FILES / "people.xlsx")
    assert sheet_names(path, "people.xlsx") == ["People", "Notes"]
    notes = read_file(path, "people.xlsx", ReadOptions(sheet="Notes"))
    assert (notes.sheet_name, notes.headers, rows(notes)) == (
        "Notes",
        ("Note", "By"),
        [["This sheet is not the data", "Ada"]],
    )
    with pytest.raises(ReadError) as excinfo:
        read_file(path, "people.xlsx", ReadOptions(sheet="Sheet9"))
    assert str(excinfo.value) == (
        "people.xlsx has no sheet “Sheet9”. Pick one of: “People”, “Notes”."
    )


def test_sheet_names_of_text_files_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"a,b\n1,2\n")
    assert sheet_names(str(path), "a.csv") == []


def test_header_row_can_be_chosen() -> None:
    sheet = read_file(str(FILES / "people.xlsx"), "people.xlsx", ReadOptions(header_row=1))
    assert sheet.header_row == 1
    assert sheet.headers == ("People export, March 2024",)  # columns end at its last label
    assert [(p.code, p.row) for p in sheet.problems][:2] == [("blank-row", 2), ("extra-cell", 3)]


def _write(path: Path, cells: dict[tuple[int, int], object], sheet: str = "S") -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet(sheet)
    for (r, c), v in cells.items():
        ws.write(r, c, v)
    book.close()


def test_rows_are_numbered_as_the_sheet_shows_them(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    # Data starts at D6; a blank row inside; a value right of the header.
    _write(
        path,
        {(5, 3): "name", (5, 4): "age", (6, 3): "Ada", (6, 4): 36, (8, 3): "Alan", (8, 5): "x"},
    )
    sheet = read_file(str(path), "t.xlsx")
    assert (sheet.header_row, sheet.headers) == (6, ("name", "age"))
    assert rows(sheet) == [["Ada", "36"], [None, None], ["Alan", None]]
    assert [(p.code, p.row, p.column) for p in sheet.problems] == [
        ("blank-row", 8, None),
        ("extra-cell", 9, 3),
    ]


def test_row_count_equals_the_sheet_dimension(tmp_path: Path) -> None:
    import python_calamine

    path = tmp_path / "big.xlsx"
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = book.add_worksheet("S")
    ws.write_row(0, 0, ["id", "name"])
    for i in range(1, 70_001):  # past one 64k-row batch
        ws.write_row(i, 0, [i, f"n{i}"])
    book.close()
    sheet = read_file(str(path), "big.xlsx")
    dimension = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name("S")
    assert sheet.num_rows == dimension.height - 1 == 70_000
    assert sheet.column(0).to_pylist()[-1] == "70000"


def test_empty_sheet_and_header_only(tmp_path: Path) -> None:
    path = tmp_path / "e.xlsx"
    _write(path, {})
    with pytest.raises(ReadError) as excinfo:
        read_file(str(path), "e.xlsx")
    assert str(excinfo.value) == (
        "e.xlsx (sheet “S”) is empty. Pick the sheet that holds the data."
    )
    _write(path, {(0, 0): "a", (0, 1): "b"})
    with pytest.raises(ReadError) as excinfo:
        read_file(str(path), "e.xlsx")
    assert str(excinfo.value) == (
        "e.xlsx (sheet “S”) has a header row but no data rows. "
        "Add at least one row under the header."
    )


def test_excel_cell_limit(tmp_path: Path) -> None:
    path = tmp_path / "l.xlsx"
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    ws = book.add_worksheet("S")
    ws.write_row(0, 0, ["a", "b"])
    ws.write_row(1, 0, ["1", "2"])
    book.close()
    with pytest.raises(ReadError, match="larger than the limit of 0 KiB"):
        read_file(str(path), "l.xlsx", ReadOptions(max_field_bytes=0))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42.0, "42"),
        (0.1, "0.1"),
        (-7.0, "-7"),
        (1e21, "1e+21"),
        (3, "3"),
        (True, "true"),
        (False, "false"),
        ("", None),
        ("x", "x"),
        (datetime.date(2024, 1, 5), "2024-01-05"),
        (datetime.datetime(2024, 1, 5, 13, 30), "2024-01-05T13:30:00"),
        (datetime.datetime(2024, 1, 5, 13, 30, 0, 500000), "2024-01-05T13:30:00.500000"),
        (datetime.time(9, 5), "09:05:00"),
        (datetime.timedelta(hours=1, minutes=30), "PT1H30M"),
        (datetime.timedelta(0), "PT0S"),
    ],
)
def test_cells_become_the_text_a_person_would_type(value: object, text: str | None) -> None:
    assert _text(value, "test", 1, 1 << 30) == text  # type: ignore[arg-type]


def test_a_blank_row_keeps_numbers_but_is_not_imported(tmp_path: Path) -> None:
    from pipeline.session import ImportSession
    from pipeline.template import parse_template

    path = tmp_path / "gap.xlsx"
    _write(path, {(0, 0): "name", (0, 1): "age", (1, 0): "Ada", (1, 1): 36, (3, 0): "Alan"})
    template = parse_template(
        {"fields": [{"name": "name", "constraints": {"required": True}}, {"name": "age"}]}
    )
    session = ImportSession.open(str(path), "gap.xlsx", template)
    assert session.sheet.blank_rows == (1,)
    assert session.report().rows == 2
    assert session.report().errors == []  # the blank row 3 is not "name is required"
    assert session.review.window(0, 10)[1].row == 4  # Alan, as the sheet shows him


# --- packages, passwords, sheets without a header row -------------------------------------------


def _move_workbook(src: Path, dest: Path) -> None:
    """Rewrite an xlsx with its workbook under book/ instead of xl/: the package's
    relationships and content types say where it is, as the format allows."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b'"/xl/', b'"/book/')
            elif info.filename == "_rels/.rels":
                data = data.replace(b'Target="xl/workbook.xml"', b'Target="book/workbook.xml"')
            name = info.filename
            zout.writestr("book/" + name[3:] if name.startswith("xl/") else name, data)


def test_workbook_part_is_found_through_the_package_relationships(tmp_path: Path) -> None:
    import zipfile

    import python_calamine

    path = tmp_path / "moved.xlsx"
    _move_workbook(FILES / "plain.xlsx", path)
    with zipfile.ZipFile(path) as zf:
        assert "xl/workbook.xml" not in zf.namelist()
        assert "book/workbook.xml" in zf.namelist()
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    assert book.sheet_names[0] == "People"  # calamine reads it: the package is valid
    sheet = read_file(str(path), "moved.xlsx")
    assert (sheet.kind, sheet.sheet_name, sheet.headers) == ("xlsx", "People", HEADERS)
    assert rows(sheet)[0] == ROWS[0]


def test_a_docx_is_still_not_a_spreadsheet(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "letter.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        zf.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        zf.writestr("word/document.xml", "<document/>")
    with pytest.raises(ReadError, match="an Office document but not a spreadsheet"):
        read_file(str(path), "letter.xlsx")


def _encrypt_ods(src: Path, dest: Path) -> None:
    """An ODS as LibreOffice saves it with a password: content.xml encrypted (opaque bytes,
    stored) and listed with its encryption data in META-INF/manifest.xml."""
    import os
    import zipfile

    entry = b'manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    encrypted = (
        b'manifest:full-path="content.xml" manifest:media-type="text/xml" '
        b'manifest:size="13906"><manifest:encryption-data manifest:checksum-type="urn:oasis:'
        b'names:tc:opendocument:xmlns:manifest:1.0#sha256-1k" manifest:checksum="AAAA">'
        b'<manifest:algorithm manifest:algorithm-name="http://www.w3.org/2001/04/xmlenc#'
        b'aes256-cbc" manifest:initialisation-vector="AAAA"/><manifest:key-derivation '
        b'manifest:key-derivation-name="PBKDF2" manifest:key-size="32" '
        b'manifest:iteration-count="100000" manifest:salt="AAAA"/></manifest:encryption-data>'
        b"</manifest:file-entry>"
    )
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "META-INF/manifest.xml":
                assert entry in data
                data = data.replace(entry, encrypted)
            elif info.filename == "content.xml":
                data = os.urandom(len(data))
            zout.writestr(info.filename, data)


def test_password_protected_ods_is_named_so(tmp_path: Path) -> None:
    path = tmp_path / "secret.ods"
    _encrypt_ods(FILES / "people.ods", path)
    with pytest.raises(ReadError) as excinfo:
        read_file(str(path), "secret.ods")
    assert str(excinfo.value) == (
        "secret.ods is password-protected; remove the password and save it again, "
        "then pick the file again."
    )
    with pytest.raises(ReadError, match="password-protected"):
        sheet_names(str(path), "secret.ods")


DATA_ONLY = [["Ada", None, None], ["Alan", None, None], ["Grace", "grace@example.com", 85]]


def _write_rows(path: Path, data: list[list[object]]) -> None:
    _write(
        path, {(r, c): v for r, row in enumerate(data) for c, v in enumerate(row) if v is not None}
    )


def test_a_sheet_of_data_only_is_read_without_a_header_row(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    _write_rows(path, DATA_ONLY)  # today's detection took row 3 for the header: "no data rows"
    sheet = read_file(str(path), "data.xlsx")
    assert (sheet.header_row, sheet.first_data_row) == (0, 1)
    assert sheet.headers == ("Column A", "Column B", "Column C")
    assert rows(sheet) == [
        ["Ada", None, None],
        ["Alan", None, None],
        ["Grace", "grace@example.com", "85"],
    ]
    assert sheet.looks_headerless


def test_no_header_row_can_be_chosen(tmp_path: Path) -> None:
    path = tmp_path / "numbers.xlsx"
    _write_rows(path, [[1, "Ada", 36], [2, "Alan", 41], [3, "Grace", 85]])
    detected = read_file(str(path), "numbers.xlsx")
    assert (detected.header_row, detected.num_rows) == (1, 2)
    assert detected.looks_headerless  # the page offers "my file has no header row"
    sheet = read_file(str(path), "numbers.xlsx", ReadOptions(header_row=0))
    assert (sheet.header_row, sheet.first_data_row, sheet.num_rows) == (0, 1, 3)
    assert sheet.headers == ("Column A", "Column B", "Column C")
    assert rows(sheet)[0] == ["1", "Ada", "36"]
    assert not sheet.looks_headerless
    labelled = read_file(str(FILES / "people.xlsx"), "people.xlsx")
    assert not labelled.looks_headerless


def test_no_header_row_names_every_column_and_numbers_rows_from_1(tmp_path: Path) -> None:
    from pipeline.session import ImportSession
    from pipeline.template import parse_template

    path = tmp_path / "wide.xlsx"
    _write_rows(path, [[f"v{r}{c}" for c in range(28)] for r in range(3)])
    sheet = read_file(str(path), "wide.xlsx", ReadOptions(header_row=0))
    assert sheet.headers[25:] == ("Column Z", "Column AA", "Column AB")
    template = parse_template({"fields": [{"name": "Column AB", "type": "integer"}]})
    session = ImportSession(template, sheet)
    assert session.mapping == {"Column AB": 27}
    errors = session.start_review().error_list()
    assert [(e.row, e.field) for e in errors] == [
        (1, "Column AB"),
        (2, "Column AB"),
        (3, "Column AB"),
    ]


def test_a_long_cell_past_the_scanned_rows_is_refused_with_its_row(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "long.xlsx"
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("S")
    ws.write_row(0, 0, ["id", "note"])
    for i in range(1, 20_001):  # past the header scan and the first 16k-row chunk
        ws.write_row(i, 0, [i, "short" if i != 18_000 else "x" * 2000])
    book.close()
    assert read_file(str(path), "long.xlsx").num_rows == 20_000
    with pytest.raises(ReadError) as excinfo:
        read_file(str(path), "long.xlsx", ReadOptions(max_field_bytes=1024))
    assert str(excinfo.value) == (
        "long.xlsx (sheet “S”): the cell at row 18001 is larger than the limit of 1 KiB. "
        "Check for a missing closing quote, or shorten the cell, and pick the file again."
    )


def test_columns_of_mixed_kinds_read_as_cell_by_cell(tmp_path: Path) -> None:
    """The bulk conversion gives every cell the text `_text` gives it, whatever the mix."""
    import xlsxwriter

    path = tmp_path / "mixed.xlsx"
    values: list[list[object]] = [
        [1.0, "a", True, datetime.date(2024, 1, 5), datetime.datetime(2024, 1, 5, 13, 30)],
        ["x.0", 2.5, False, "", datetime.datetime(2024, 1, 5, 13, 30, 0, 500000)],
        [None, "", None, datetime.date(1999, 12, 31), "soon"],
        [-0.0, 1e21, "True", 3.0, datetime.time(9, 5)],
    ]
    for i in range(6):  # so that each column has a typed majority too
        day = datetime.date(2024, 2, i + 1)
        values.append([float(i), i + 0.5, i % 2 == 0, day, datetime.datetime(2024, 2, i + 1, i)])
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("S")
    date = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    ws.write_row(0, 0, ["a", "b", "c", "d", "e"])
    for r, row in enumerate(values, start=1):
        for c, v in enumerate(row):
            if isinstance(v, datetime.date | datetime.time):
                ws.write_datetime(r, c, v, date)
            elif isinstance(v, str):
                ws.write_string(r, c, v)
            elif v is not None:
                ws.write(r, c, v)
    book.close()
    import python_calamine

    raw = list(
        python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name("S").iter_rows()
    )
    expected = [[_text(v, "t", 1, 1 << 30) for v in row] for row in raw[1:]]
    assert rows(read_file(str(path), "mixed.xlsx")) == expected
    assert expected[0] == ["1", "a", "true", "2024-01-05", "2024-01-05T13:30:00"]
    assert expected[3][:3] == ["-0", "1e+21", "True"]


def test_the_page_can_choose_no_header_row_through_the_bridge(tmp_path: Path) -> None:
    import json

    from pipeline import bridge

    path = tmp_path / "numbers.xlsx"
    _write_rows(path, [[1, "Ada"], [2, "Alan"], [3, "Grace"]])
    template = json.dumps({"fields": [{"name": "Column B"}]})
    detected = json.loads(bridge.open_file(str(path), "numbers.xlsx", template))["value"]
    assert (detected["header_row"], detected["rows"]) == (1, 2)
    chosen = json.loads(
        bridge.open_file(str(path), "numbers.xlsx", template, json.dumps({"header_row": 0}))
    )["value"]
    assert (chosen["header_row"], chosen["first_data_row"], chosen["rows"]) == (0, 1, 3)
    assert chosen["headers"] == ["Column A", "Column B"]
    assert chosen["mapping"] == {"Column B": 1}
