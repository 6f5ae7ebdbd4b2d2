"""Formula injection: a cell a spreadsheet would run as a formula (OWASP's "CSV injection")
is written with a leading apostrophe in every CSV loadbay produces (exports, the S3
destination's CSV, the audit log, the rows an import left out). The one rule; the column
version for polars frames (`destinations.rows.escape_formulas`) uses its pattern."""

from __future__ import annotations

FORMULA_STARTERS = frozenset("=+-@\t\r\n\x00")
FORMULA_START = r"^[=+\-@\t\r\n\x00]"  # the same characters, as a regular expression


def escape_text(value: str) -> str:
    """One cell as a CSV should hold it: prefixed with ' when it starts like a formula."""
    return "'" + value if value[:1] in FORMULA_STARTERS else value
