"""Names for the columns of a file that has no header row, one rule for every reader.

Spreadsheet letters: "Column A" .. "Column Z", then "Column AA", "Column AB", .. "Column ZZ",
"Column AAA" (bijective base 26, as Excel and LibreOffice label columns).

"No header row" travels as `header_row = 0` (`ReadOptions.header_row`, `Describe.header_row`):
header rows are 1-based as the user sees rows, None means "detect it", 0 means the data
starts at row 1 and the columns are named here.
"""

from __future__ import annotations

NO_HEADER_ROW = 0


def column_letters(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA", 701 -> "ZZ", 702 -> "AAA"."""
    if index < 0:
        raise ValueError(f"a column index is 0 or more, not {index}")
    letters = ""
    number = index + 1
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def default_column_names(count: int) -> list[str]:
    """The headers of a file without a header row: ["Column A", "Column B", ...]."""
    return [f"Column {column_letters(i)}" for i in range(count)]
