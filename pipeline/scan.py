"""Regular expressions over a whole column at once, for columns of mostly distinct text.

arro3 has no string or regex kernels, and one `fullmatch` call per cell means a Python
string and a call per cell: most of the time validation took on a million e-mail
addresses. Instead, arrow-rs writes the column as one line per cell (its CSV writer, in
Rust), and a single `re.subn` (in C) blanks every line that matches `^(?:pattern)$`.
Only the lines left over are looked at one by one: the cells that fail, empty cells, and
cells the writer had to quote (they hold a quote, a line break or the separator). Those
are checked exactly as before, with `fullmatch` on the cell's own text.

The shortcut is taken only when it gives the same answers as `fullmatch` on each cell:
- a pattern with a lookaround could look past its own line, so it is checked per cell;
- a match that ran over a line break (a pattern such as `[^x]*`) shows in the line count,
  and then the column is checked per cell.
"""

from __future__ import annotations

import array
import functools
import io
import re
from collections import Counter

import arro3.compute as acc
import arro3.core as ac
import arro3.io as aio

SAMPLE_ROWS = 2048
SLICE_ROWS = 64 * 1024
DISTINCT_SHARE = 5  # mostly unique: more than 1/DISTINCT_SHARE of the rows are distinct
_SEPARATOR = "\x1f"  # a one-column file has none; a cell holding this one is quoted
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
_LINE = re.compile(r"[^\n]+")


def mostly_unique(column: ac.Array) -> bool:
    """A long text column of so many distinct values that dictionary-encoding it costs more
    than it saves: e-mails, ids, phone numbers (not dates or countries, which repeat).

    The column's distinct values are estimated from a sample with Chao1 (d + f1^2 / 2 f2:
    the values seen once and twice), which a few repeated junk values ("n/a") do not fool.
    More than a fifth of the rows counts as mostly unique.
    """
    if column.type != ac.DataType.string() or len(column) < 4 * SAMPLE_ROWS:
        return False
    counts = Counter(column.slice(0, SAMPLE_ROWS).to_pylist())  # counted in C
    counts.pop(None, None)
    seen = Counter(counts.values())
    once, twice = seen[1], seen[2]
    unseen = once * once / (2 * twice) if twice else once * (once - 1) / 2
    return (len(counts) + unseen) * DISTINCT_SHARE > len(column)


def mismatched(
    column: ac.Array, pattern: re.Pattern[str], shape: re.Pattern[str] | None = None
) -> list[int]:
    """Indices of the cells that are not empty and do not `fullmatch` the pattern, in order.

    `shape` is a faster pass for the pattern's usual cells: a line-anchored pattern over a
    few ASCII classes with possessive repeats (no backtracking), matching only text the
    pattern itself matches. Its lines are blanked first; the pattern runs on what is left.
    """
    candidates = _candidates(column, pattern, shape)
    if candidates is None:  # the shortcut would not be exact: every cell is a candidate
        return [i for i, v in enumerate(column.to_pylist()) if _fails(pattern, v)]
    if not candidates:
        return []
    indices = ac.Array(candidates, ac.DataType.int64())
    values = acc.take(column, indices).to_pylist()
    return [i for i, v in zip(candidates, values, strict=True) if _fails(pattern, v)]


def null_at(column: ac.Array, indices: list[int]) -> ac.Array:
    """The column with the cells at `indices` made empty (null)."""
    if not indices:
        return column
    # Row positions, -1 at `indices`: the cast to unsigned makes -1 null, and `take` gives
    # null for a null position. One pass, and no copy of the column to pad it with a null.
    keys = _positions_to_redirect(len(column))
    for index in indices:
        keys[index] = -1
    rows = acc.cast(ac.Array.from_buffer(keys), ac.DataType.uint64())
    return acc.take(column, rows)


def replaced(column: ac.Array, values: list[tuple[int, str | None]]) -> ac.Array:
    """A text column with a few cells replaced ((index, new value) pairs): one `take` from
    the column and the new values, not a Python string per cell."""
    keys = _positions_to_redirect(len(column))
    for k, (index, _) in enumerate(values):
        keys[index] = len(column) + k
    extra = ac.Array([value for _, value in values], ac.DataType.string())
    both = ac.ChunkedArray([column, extra]).combine_chunks()
    return acc.take(both, ac.Array.from_buffer(keys))


def _positions_to_redirect(length: int) -> array.array[int]:
    """0, 1, ... length-1 as a mutable int64 array, for a `take` that reads a few rows elsewhere."""
    keys = array.array("q")
    keys.frombytes(memoryview(positions(length).buffer()).cast("B"))  # type: ignore[attr-defined]
    return keys


def _fails(pattern: re.Pattern[str], value: str | None) -> bool:
    return value is not None and pattern.fullmatch(value) is None


def _candidates(
    column: ac.Array, pattern: re.Pattern[str], shape: re.Pattern[str] | None
) -> list[int] | None:
    """Rows that may fail (a superset), or None when only a check per cell is exact.

    A slice of rows at a time, so the text in memory is a slice's, not the column's.
    """
    if _LOOKAROUND.search(pattern.pattern):
        return None
    try:  # a quoted line (it starts with '"') is never blanked, so it stays a candidate
        whole = re.compile(f'^(?!")(?:{pattern.pattern})$', pattern.flags | re.MULTILINE)
    except re.error:  # e.g. inline flags, which must come first
        return None
    rows: list[int] = []
    for start in range(0, len(column), SLICE_ROWS):
        part = column.slice(start, min(SLICE_ROWS, len(column) - start))
        text = _lines(part)
        lines = len(part)
        if text.count("\n") != lines:  # a cell holds a line break
            return None
        if shape is not None:
            text = shape.sub("", text)
        left, _ = whole.subn("", text)
        del text
        if left.count("\n") != lines:  # a match ran over a line break
            return None
        row, at = start, 0
        for found in _LINE.finditer(left):
            row += left.count("\n", at, found.start())
            at = found.start()
            rows.append(row)
    return rows


def containing(column: ac.Array, pattern: re.Pattern[str]) -> list[int]:
    """Indices of the cells in which `pattern` is found (`search`), in order.

    One C pass per slice over the column written as lines; the lines it is found in are
    then checked on their cells' own text (a quoted line is written differently). The
    pattern must not match a line break.
    """
    rows: list[int] = []
    for start in range(0, len(column), SLICE_ROWS):
        part = column.slice(start, min(SLICE_ROWS, len(column) - start))
        text = _lines(part)
        if text.count("\n") != len(part):  # a cell holds a line break: look at each cell
            found = [i for i, v in enumerate(part.to_pylist()) if v and pattern.search(v)]
        else:
            found, line, at = [], 0, 0
            for match in pattern.finditer(text):
                line += text.count("\n", at, match.start())
                at = match.start()
                if not found or found[-1] != line:
                    found.append(line)
            if found:
                values = acc.take(part, ac.Array(found, ac.DataType.int64())).to_pylist()
                found = [i for i, v in zip(found, values, strict=True) if pattern.search(v)]
        rows += [start + i for i in found]
    return rows


def _lines(part: ac.Array) -> str:
    """A text column as one line per cell, written by arrow-rs (quoted where it must be)."""
    out = io.BytesIO()
    aio.write_csv(ac.Table.from_arrays([part], names=["cell"]), out, header=False,
                  delimiter=_SEPARATOR)  # fmt: skip
    with out.getbuffer() as written:  # decoded where it lies: no copy of the bytes
        text = str(written, "utf-8")
    out.close()
    return text


@functools.lru_cache(maxsize=4)  # a one-row re-check must not evict the table's
def positions(length: int) -> ac.Array:
    """0, 1, ... length-1 (int64), built by doubling in Arrow: no Python int per row."""
    out = ac.Array([0], ac.DataType.int64())
    while len(out) < length:
        shifted = acc.add(out, ac.Scalar(len(out), ac.DataType.int64()))
        out = ac.ChunkedArray([out, shifted]).combine_chunks()
    return out.slice(0, length)
