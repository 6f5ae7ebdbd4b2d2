"""Readers turn a file into a `Sheet`: its header and its cells as Arrow strings.

Every cell stays a string here; types are the validator's business, so that what the
user typed can always be shown back to them.

One entry point, `read_file`, takes any file a user picks: its type is judged by its
bytes (pipeline.sniff), never by its name, and it is read by the matching module:
pipeline.delimited (CSV/TSV/...), pipeline.excel (xlsx/xlsm/xlsb/xls/ods, after
pipeline.zipguard has checked zip-based ones), pipeline.jsonfile (JSON, NDJSON). A file
that cannot be read raises `ReadError` with a message that names the file and says what
to do; problems that leave the file usable are listed in `Sheet.problems`.
"""

from __future__ import annotations

import os

from pipeline.delimited import DELIMITERS, SAMPLE_BYTES, read_delimited
from pipeline.errors import ReadError
from pipeline.protocol import FileKind
from pipeline.sheet import GIB, MIB, Problem, ReadOptions, Sheet
from pipeline.sniff import detect_kind

__all__ = [
    "DELIMITERS",
    "SAMPLE_BYTES",
    "Problem",
    "ReadOptions",
    "Sheet",
    "file_kind",
    "read_file",
    "sheet_names",
]


def _limit_text(limit: int) -> str:
    if limit >= GIB and limit % GIB == 0:
        return f"{limit // GIB} GiB"
    if limit >= MIB:
        return f"{limit // MIB} MiB"
    return f"{limit:,} bytes"


def _open(path: str, name: str, options: ReadOptions) -> tuple[FileKind, int]:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ReadError(f"{name} cannot be opened ({exc.strerror}). Pick the file again.") from exc
    if size > options.max_bytes:
        raise ReadError(
            f"{name} is larger than the limit of {_limit_text(options.max_bytes)}. "
            "Split it into smaller files and import them one by one."
        )
    if size == 0:
        raise ReadError(
            f"{name} is empty. Pick a file with a header row and at least one row of data."
        )
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    return detect_kind(path, name, head), size


def read_file(path: str, file_name: str, options: ReadOptions | None = None) -> Sheet:
    """Read any supported file into a Sheet, or raise ReadError saying why and what to do."""
    options = options or ReadOptions()
    kind, size = _open(path, file_name, options)
    if kind.is_spreadsheet:
        from pipeline.excel import read_spreadsheet

        return read_spreadsheet(path, file_name, kind, options)
    if kind in (FileKind.JSON, FileKind.NDJSON):
        from pipeline.jsonfile import read_json

        return read_json(path, file_name, kind, options, size)
    if options.sheet is not None:
        raise ReadError(
            f"{file_name} is a text (CSV) file: it has no sheets. Pick it without a sheet name."
        )
    return read_delimited(path, file_name, options, size)


def file_kind(path: str, file_name: str, options: ReadOptions | None = None) -> FileKind:
    """What the file is, judged by its bytes (pipeline.sniff)."""
    kind, _ = _open(path, file_name, options or ReadOptions())
    return kind


def sheet_names(path: str, file_name: str, options: ReadOptions | None = None) -> list[str]:
    """The sheets of a spreadsheet, in workbook order ([] for CSV and JSON files)."""
    options = options or ReadOptions()
    kind, _ = _open(path, file_name, options)
    if not kind.is_spreadsheet:
        return []
    from pipeline.excel import workbook_sheet_names

    return workbook_sheet_names(path, file_name, kind, options)
