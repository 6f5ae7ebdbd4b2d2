"""Files loadbay writes for people: CSV is escaped against formula injection.

A cell starting with = + - @ tab CR LF or NUL is prefixed with ' (OWASP, ASVS 5.0
1.2.10) so a spreadsheet never runs it. Machine formats (NDJSON, Parquet) keep values
exactly as they were.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

FORMULA_START = r"^[=+\-@\t\r\n\x00]"
FORMATS = (".csv", ".ndjson", ".parquet")


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


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
