"""Files loadbay writes for people: CSV and XLSX are escaped against formula injection.

A cell starting with = + - @ tab CR LF or NUL is prefixed with ' (OWASP, ASVS 5.0
1.2.10) so a spreadsheet never runs it. Machine formats (NDJSON, Parquet) keep values
exactly as they were.

A member whose role may not reveal personal data (server.permissions, data.reveal) gets
the template's personal-data fields as a mask in every format (`mask_columns`); the plan
names them and the audit entry of the download says so.

`export_import` streams a retained import batch by batch (memory bounded by one batch,
never the whole import): CSV, XLSX (XlsxWriter in constant-memory mode), Parquet (one
row group per batch) or NDJSON, the template's fields in template order. An import whose
data was deleted or expired raises `Gone`, naming when and why.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import xlsxwriter
from sqlalchemy import select
from sqlalchemy.orm import Session

from destinations.rows import escape_formulas
from pipeline.formulas import escape_text
from pipeline.template import personal_fields
from server import audit, db, imports, passthrough
from server.batches import load_batch
from server.errors import Gone, Invalid, NotFound
from server.runtime import Runtime

DOWNLOADED = "import.downloaded"
MASK = "••••••"
FORMATS = (".csv", ".ndjson", ".parquet")
EXCEL_ROWS = 1_048_576  # Excel's limit per sheet, the header row included
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
    "ndjson": "application/x-ndjson",
}


def write_export(table: pa.Table, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{out.name}: choose an output ending in {', '.join(FORMATS)}.")
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a Table gives a DataFrame
    if suffix == ".csv":
        escape_formulas(frame).write_csv(out)
    elif suffix == ".ndjson":
        frame.write_ndjson(out)
    else:
        frame.write_parquet(out)


# --- an import, streamed ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportPlan:
    """What a download will be, known before its first byte (so the API can still answer
    an error instead of a broken 200)."""

    import_id: str
    fmt: str
    media_type: str
    file_name: str
    columns: tuple[str, ...]
    rows: int
    batches: int
    personal: frozenset[str] = frozenset()  # the template's personal-data fields
    clear: bool = True  # False: the personal fields are written as a mask

    @property
    def masked(self) -> frozenset[str]:
        """The personal-data fields this download writes as a mask."""
        return frozenset() if self.clear else self.personal


def plan_export(
    rt: Runtime, import_id: str, fmt: str, *, org_id: str | None = None, clear: bool = True
) -> ExportPlan:
    """Check that `import_id` can be exported as `fmt` now: NotFound (no such import, or
    another organisation's with `org_id`), Gone (its data was deleted or expired: the
    message names the date and the reason), Invalid (unknown format, too many rows for
    Excel). Without `clear`, the plan masks the template's personal-data fields."""
    with rt.sessions() as session:
        imp = _retained(session, import_id, org_id)
        return _plan(session, imp, fmt, clear)


def mask_columns(table: pa.Table, fields: frozenset[str]) -> pa.Table:
    """`table` with each of `fields` it holds replaced by a text column of MASK (a
    missing value stays missing: it shows there was none, not what it was)."""
    for name in sorted(fields & set(table.column_names)):
        at = table.column_names.index(name)
        column = table.column(at)
        masked = pa.array(
            [None if v is None else MASK for v in column.to_pylist()], type=pa.string()
        )
        table = table.set_column(at, pa.field(name, pa.string()), masked)
    return table


def record_download(
    rt: Runtime, plan: ExportPlan, *, org_id: str, actor: str, address: str | None = None
) -> None:
    """The audit entry of a download (the import, the format, the row count, who and from
    where; never a value), written before its first byte."""
    audit.write(
        rt,
        action=DOWNLOADED,
        actor=actor,
        org_id=org_id,
        target=plan.import_id,
        address=address,
        detail={"format": plan.fmt, "rows": plan.rows, "masked": sorted(plan.masked)},
    )


def export_import(
    rt: Runtime,
    import_id: str,
    fmt: str,
    out: BinaryIO,
    *,
    org_id: str | None = None,
    clear: bool = True,
) -> int:
    """Write an import's rows to `out` as `fmt` (csv, xlsx, parquet, ndjson), one stored
    batch at a time, personal-data fields masked without `clear`; returns the rows
    written. Errors as `plan_export`, before writing."""
    with rt.sessions() as session:
        imp = _retained(session, import_id, org_id)
        plan = _plan(session, imp, fmt, clear)
        seqs = list(
            session.scalars(
                select(db.Batch.seq).where(db.Batch.import_id == imp.id).order_by(db.Batch.seq)
            )
        )

        def tables() -> Iterator[pa.Table]:
            for seq in seqs:
                table = load_batch(rt, session, imp, seq).select(list(plan.columns))
                table = mask_columns(table, plan.masked)
                session.commit()  # no transaction held while a slow client reads
                yield table

        return WRITERS[plan.fmt](tables(), plan.columns, out)


def _retained(session: Session, import_id: str, org_id: str | None) -> db.Import:
    imp = session.get(db.Import, import_id)
    if imp is None or (org_id is not None and imp.org_id != org_id):
        raise NotFound(f"Import {import_id} does not exist.")
    gone = imports.data_state(session, imp)
    if gone is not None:
        raise gone.error()
    if passthrough.is_passthrough(imp):
        raise Gone(
            f"Import {import_id} is a no-store (passthrough) import: its rows are never "
            "stored, so they cannot be downloaded.",
            details={"import_id": import_id, "reason": "passthrough"},
        )
    return imp


def _plan(session: Session, imp: db.Import, fmt: str, clear: bool) -> ExportPlan:
    fmt = fmt.lower().lstrip(".")
    if fmt not in WRITERS:
        raise Invalid(f"Choose an export format among {', '.join(WRITERS)}, not {fmt!r}.")
    if fmt == "xlsx" and imp.row_count + 1 > EXCEL_ROWS:
        raise Invalid(
            f"Import {imp.id} holds {imp.row_count:,} rows; an Excel sheet holds at most "
            f"{EXCEL_ROWS - 1:,} below its header. Choose CSV, Parquet or NDJSON."
        )
    template = session.get(db.Template, imp.template_id)
    schema = template.schema if template is not None else {}
    fields = schema.get("fields", [])
    columns = tuple(str(f["name"]) for f in fields if isinstance(f, dict) and "name" in f)
    stem = Path(imp.file_name).stem or imp.id
    return ExportPlan(
        import_id=imp.id,
        fmt=fmt,
        media_type=MEDIA_TYPES[fmt],
        file_name=f"{stem}.{fmt}",
        columns=columns,
        rows=imp.row_count,
        batches=imp.batch_count,
        personal=personal_fields(schema),
        clear=clear,
    )


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a Table gives a DataFrame
    return frame


def _write_csv(tables: Iterator[pa.Table], columns: tuple[str, ...], out: BinaryIO) -> int:
    rows = 0
    header = True
    for table in tables:
        escape_formulas(_frame(table)).write_csv(out, include_header=header)
        header = False
        rows += table.num_rows
    if header:  # no batch at all: the header alone
        out.write((",".join(_csv_name(c) for c in columns) + "\n").encode())
    return rows


def _csv_name(name: str) -> str:
    name = escape_text(name)
    return '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\r\n') else name


def _write_ndjson(tables: Iterator[pa.Table], columns: tuple[str, ...], out: BinaryIO) -> int:
    rows = 0
    for table in tables:
        if table.num_rows:
            _frame(table).write_ndjson(out)
            rows += table.num_rows
    return rows


def _write_parquet(tables: Iterator[pa.Table], columns: tuple[str, ...], out: BinaryIO) -> int:
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for table in tables:
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema), row_group_size=max(1, table.num_rows))
            rows += table.num_rows
        if writer is None:  # no batch at all: the columns, as text
            schema = pa.schema([(c, pa.string()) for c in columns])
            writer = pq.ParquetWriter(out, schema, compression="zstd")
    finally:
        if writer is not None:
            writer.close()
    return rows


def _write_xlsx(tables: Iterator[pa.Table], columns: tuple[str, ...], out: BinaryIO) -> int:
    workbook = xlsxwriter.Workbook(
        out, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = workbook.add_worksheet("rows")
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for col, name in enumerate(columns):
        sheet.write_string(0, col, escape_text(name))
    rows = 0
    for table in tables:
        values = [table.column(i).to_pylist() for i in range(table.num_columns)]
        for r in range(table.num_rows):
            rows += 1
            if rows >= EXCEL_ROWS:
                raise Invalid(f"More than {EXCEL_ROWS - 1:,} rows do not fit an Excel sheet.")
            for col, column in enumerate(values):
                _cell(sheet, rows, col, column[r], day, moment)
        del values
    workbook.close()
    return rows


def _cell(sheet: Any, row: int, col: int, value: Any, day: Any, moment: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, col, value)
    elif isinstance(value, int | float) and not (
        isinstance(value, float) and not math.isfinite(value)
    ):
        sheet.write_number(row, col, value)
    elif isinstance(value, dt.datetime):
        naive = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        sheet.write_datetime(row, col, naive, moment)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, col, dt.datetime.combine(value, dt.time()), day)
    else:
        sheet.write_string(row, col, escape_text(str(value)))


WRITERS = {
    "csv": _write_csv,
    "xlsx": _write_xlsx,
    "parquet": _write_parquet,
    "ndjson": _write_ndjson,
}
