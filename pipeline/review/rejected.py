"""The rows an import leaves out, as a CSV the user can download and fix: the rows they
deleted, and under the valid-only policy the rows with problems, each with why.

Cells are escaped against formula injection by the rule every CSV of loadbay's follows
(`pipeline.formulas`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from pipeline.formulas import escape_text


def rejected_csv(header: list[str], rows: Iterable[tuple[int, list[str | None], str]]) -> str:
    """`header`: the row-number heading, the fields' labels and the reason heading;
    `rows`: (row number, cells, reason)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([escape_text(h) for h in header])
    for number, cells, reason in rows:
        texts = ["" if c is None else escape_text(c) for c in cells]
        writer.writerow([str(number), *texts, escape_text(reason)])
    return out.getvalue()
