"""Readers turn a file into a `Sheet`: its header and its cells as Arrow strings.

Every cell stays a string here; types are the validator's business, so that what the
user typed can always be shown back to them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import arro3.core as ac
import arro3.io as aio

from pipeline.errors import ReadError

SAMPLE_BYTES = 64 * 1024
BATCH_ROWS = 64 * 1024
DELIMITERS = ",;\t|"
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Sheet:
    """One table of a file. Column i of `table` is named str(i) and holds `headers[i]`."""

    file_name: str
    headers: tuple[str, ...]
    table: ac.Table
    header_row: int = 1
    delimiter: str = ","

    @property
    def first_data_row(self) -> int:
        """The row number the user sees for the first data row (header rows counted)."""
        return self.header_row + 1

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    def column(self, index: int) -> ac.Array:
        return self.table.column(str(index)).combine_chunks()


def read_csv(path: str, file_name: str | None = None) -> Sheet:
    """Read a UTF-8 delimited text file (comma, semicolon, tab or pipe, sniffed)."""
    name = file_name or path.rsplit("/", 1)[-1]
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    text = _decode_sample(sample, name)
    delimiter = _sniff_delimiter(text)
    headers = _unique_headers(_header_cells(text, delimiter, name))
    schema = ac.Schema([ac.Field(str(i), ac.DataType.string(), True) for i in range(len(headers))])
    try:
        reader = aio.read_csv(
            path, schema, has_header=True, batch_size=BATCH_ROWS, delimiter=delimiter
        )
        table = reader.read_all()
    except Exception as exc:  # noqa: BLE001 - arrow-rs raises plain exceptions; we explain them
        raise ReadError(_explain_csv_error(name, str(exc), len(headers))) from exc
    if table.num_rows == 0:
        raise ReadError(
            f"{name} has a header row but no data rows. Add at least one row under the header."
        )
    return Sheet(file_name=name, headers=headers, table=table, delimiter=delimiter)


def _decode_sample(sample: bytes, name: str) -> str:
    if not sample.strip():
        raise ReadError(
            f"{name} is empty. Pick a file with a header row and at least one row of data."
        )
    if b"\x00" in sample:
        raise ReadError(
            f"{name} does not look like a text (CSV) file: it contains binary data. "
            "Export the data as CSV and try again."
        )
    if sample.startswith(_UTF8_BOM):
        sample = sample[len(_UTF8_BOM) :]
    try:
        return sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(sample) == SAMPLE_BYTES and exc.start >= len(sample) - 3:
            return sample[: exc.start].decode("utf-8")  # a character cut by the sample's end
        raise ReadError(
            f"{name} is not UTF-8 encoded (byte {exc.start + 1} is not valid UTF-8). "
            "Save it as 'CSV UTF-8' and pick it again."
        ) from exc


def _sniff_delimiter(text: str) -> str:
    lines = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(lines, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _header_cells(text: str, delimiter: str, name: str) -> list[str]:
    try:
        row = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    except (StopIteration, csv.Error) as exc:
        raise ReadError(f"{name}: the header row cannot be read ({exc}).") from exc
    return [cell.strip() for cell in row]


def _unique_headers(cells: list[str]) -> tuple[str, ...]:
    """Blank headers get a position name; repeated ones a counter, so each is addressable."""
    seen: dict[str, int] = {}
    out = []
    for i, cell in enumerate(cells):
        label = cell or f"Column {i + 1}"
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return tuple(out)


def _explain_csv_error(name: str, detail: str, expected: int) -> str:
    if "incorrect number of fields" in detail:
        return (
            f"{name}: a row has a different number of cells than the header's {expected} "
            f"({detail}). Check for unquoted delimiters or a missing closing quote."
        )
    if "utf-8" in detail.lower() or "utf8" in detail.lower():
        return f"{name} is not UTF-8 encoded ({detail}). Save it as 'CSV UTF-8' and pick it again."
    return f"{name} cannot be read as CSV ({detail})."
