"""The rows above the header row are read and described, so the mapping screen's preview can
show them and the user can click one of them as the header row (#19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.readers import read_file

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "files"


def test_a_csv_title_row_is_kept_above_the_detected_header(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "Contacts export,,\nname,email,age\nAda,ada@example.com,36\nGrace,grace@example.com,45\n",
        encoding="utf-8",
    )
    sheet = read_file(str(path), "export.csv")
    assert sheet.header_row == 2
    assert sheet.above == (("Contacts export", "", ""),)


def test_no_rows_above_a_header_in_row_1_nor_without_a_header_row(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("name,email\nAda,ada@example.com\n", encoding="utf-8")
    assert read_file(str(path), "plain.csv").above == ()


@pytest.mark.parametrize("kind", ["xlsx", "ods"])
def test_a_workbook_title_and_blank_row_are_above_its_header(kind: str) -> None:
    sheet = read_file(str(FILES / f"people.{kind}"), f"people.{kind}")
    assert sheet.header_row == 3
    assert len(sheet.above) == 2
    assert sheet.above[0][0] == "People export, March 2024"
    assert not any(sheet.above[1])
