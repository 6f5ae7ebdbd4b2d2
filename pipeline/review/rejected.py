"""The rows an import leaves out, as a CSV the user can download and fix: the rows they
deleted, and under the valid-only policy the rows with problems, each with why.

Cells are escaped against formula injection by the rule loadbay's exports follow
(`server.exports.escape_text`; the tests check the two agree)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTERS = frozenset("=+-@\t\r\n\x00")


def escape_text(value: str) -> str:
    """A cell a spreadsheet would run as a formula, prefixed with ' (OWASP)."""
    return "'" + value if value[:1] in FORMULA_STARTERS else value


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
