from __future__ import annotations

import pytest

from pipeline.columns import NO_HEADER_ROW, column_letters, default_column_names


@pytest.mark.parametrize(
    ("index", "letters"),
    [
        (0, "A"),
        (1, "B"),
        (25, "Z"),
        (26, "AA"),
        (27, "AB"),
        (51, "AZ"),
        (52, "BA"),
        (701, "ZZ"),
        (702, "AAA"),
        (16_383, "XFD"),
    ],
)
def test_column_letters_follow_spreadsheets(index: int, letters: str) -> None:
    assert column_letters(index) == letters


def test_default_column_names() -> None:
    assert default_column_names(0) == []
    assert default_column_names(3) == ["Column A", "Column B", "Column C"]
    names = default_column_names(28)
    assert names[25:] == ["Column Z", "Column AA", "Column AB"]
    assert len(set(default_column_names(20_000))) == 20_000


def test_negative_index_is_refused() -> None:
    with pytest.raises(ValueError):
        column_letters(-1)


def test_no_header_row_is_zero() -> None:
    assert NO_HEADER_ROW == 0
