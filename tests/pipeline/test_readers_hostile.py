"""Files built to hurt: zip bombs, lying zip directories, password-protected and broken files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.errors import ReadError
from pipeline.readers import ReadOptions, read_file, sheet_names
from tests.pipeline.hostile import bomb_xlsx, lying_xlsx, many_entries_zip, plain_zip

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
BOMB_ADVICE = (
    "That is how a zip bomb looks, not a normal spreadsheet. If the file is genuine, open it "
    "in your spreadsheet program, save it again (or save it as CSV) and pick the new file."
)
DAMAGED_ADVICE = "Open it in your spreadsheet program, save it again, and pick the new file."


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return str(path)


def refusal(path: str, name: str, options: ReadOptions | None = None) -> str:
    with pytest.raises(ReadError) as excinfo:
        read_file(path, name, options)
    return str(excinfo.value)


def test_zip_bomb_is_refused_before_calamine_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import python_calamine

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("calamine must not open a zip bomb")

    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_path", never)
    data = bomb_xlsx(200)
    assert len(data) < 1024 * 1024
    assert refusal(write(tmp_path, data), "report.xlsx") == (
        "report.xlsx was refused: its part xl/worksheets/sheet1.xml inflates 1,028 times, "
        f"more than the limit of 100 times. {BOMB_ADVICE}"
    )


def test_lying_directory_is_caught_while_inflating(tmp_path: Path) -> None:
    assert refusal(write(tmp_path, lying_xlsx()), "report.xlsx") == (
        "report.xlsx was refused: its part xl/worksheets/sheet1.xml holds more than its "
        f"directory says. {BOMB_ADVICE}"
    )


def test_inflated_bytes_are_capped(tmp_path: Path) -> None:
    # Ratio allowed, declared total allowed: the count while inflating stops it.
    options = ReadOptions(max_unzipped_bytes=10 * 1024 * 1024, max_zip_ratio=10_000)
    path = write(tmp_path, lying_xlsx(real_megabytes=20, claimed=1000))
    message = refusal(path, "report.xlsx", options)
    assert message.startswith("report.xlsx was refused: ")
    assert message.endswith(BOMB_ADVICE)


def test_declared_total_over_the_cap(tmp_path: Path) -> None:
    options = ReadOptions(max_unzipped_bytes=4096)
    path = str(FILES / "people.xlsx")
    assert refusal(path, "people.xlsx", options) == (
        "people.xlsx was refused: it would unpack to 0 MiB, more than the limit of 0 MiB. "
        f"{BOMB_ADVICE}"
    )


def test_too_many_entries(tmp_path: Path) -> None:
    assert refusal(write(tmp_path, many_entries_zip(10_001)), "many.xlsx") == (
        f"many.xlsx was refused: it holds 10,003 entries, more than the limit of 10,000. "
        f"{BOMB_ADVICE}"
    )


def test_password_protected_xlsx(tmp_path: Path) -> None:
    expected = (
        "secret.xlsx is password-protected; remove the password and save it again, "
        "then pick the file again."
    )
    assert refusal(str(FILES / "protected.xlsx"), "secret.xlsx") == expected
    with pytest.raises(ReadError, match="password-protected"):
        sheet_names(str(FILES / "protected.xlsx"), "secret.xlsx")


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (
            (FILES / "people.xlsx").read_bytes()[:3000],
            "cut.xlsx",
            "cut.xlsx looks like a zip-based spreadsheet (xlsx, ods) but cannot be opened: it "
            "is damaged or incomplete (File is not a zip file). " + DAMAGED_ADVICE,
        ),
        (
            plain_zip(),
            "data.xlsx",
            "data.xlsx is a zip archive, not a spreadsheet. "
            "Unzip it and pick the CSV or Excel file inside.",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,
            "old.xls",
            "old.xls looks like an Excel 97-2003 workbook (xls) but cannot be opened: it is "
            "damaged or incomplete (",
        ),
    ],
    ids=["truncated-xlsx", "plain-zip", "broken-ole2"],
)
def test_damaged_files(tmp_path: Path, data: bytes, name: str, message: str) -> None:
    got = refusal(write(tmp_path, data), name)
    if message.endswith("("):
        assert got.startswith(message)
        assert got.endswith(DAMAGED_ADVICE)
    else:
        assert got == message


def test_corrupt_sheet_xml(tmp_path: Path) -> None:
    import zipfile

    source = FILES / "plain.xlsx"
    target = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            zout.writestr(info, data)
    message = refusal(str(target), "broken.xlsx")
    assert message.startswith("broken.xlsx")
    assert "damaged or incomplete" in message
    assert message.endswith(DAMAGED_ADVICE)


def test_renamed_binary_is_not_read_as_csv(tmp_path: Path) -> None:
    shutil.copy(FILES / "people.xlsx", tmp_path / "x")
    sheet = read_file(str(tmp_path / "x"), "people.csv")  # an xlsx named .csv: read as xlsx
    assert sheet.kind == "xlsx"
    assert refusal(write(tmp_path, bytes(range(256)) * 10), "data.csv") == (
        "data.csv does not look like a text (CSV) file: it contains binary data. "
        "Export the data as CSV and try again."
    )
