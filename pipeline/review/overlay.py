"""The user's edits and deleted rows, an overlay on the immutable Arrow table, and undo.

The file's cells are never rewritten: edits live here, small, and are applied when a
window is shown and when batches are encoded. Every change is a step that can be undone.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

import arro3.compute as acc
import arro3.core as ac

from pipeline.scan import replaced

Was = tuple[int, str, str | None]
"""One changed cell: its row index, its field, and the value it held before."""


@dataclass
class Change:
    """One undoable step: cell values before it (had an edit, the edit), and rows it deleted."""

    cells: dict[tuple[int, str], tuple[bool, str | None]] = field(default_factory=dict)
    deleted: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.cells or self.deleted)


class Overlay:
    def __init__(self, table: ac.Table, fields: list[str], blank_rows: Iterable[int]) -> None:
        """`blank_rows`: rows blank in the file, deleted from the start (and not undoable)."""
        self.table = table
        self.fields = fields
        self.edits: dict[str, dict[int, str | None]] = {name: {} for name in fields}
        self.deleted: set[int] = set(blank_rows)
        self.blank = len(self.deleted)
        self.history: list[Change] = []
        self._kept: list[int] | None = None

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows) - len(self.deleted)

    def check_cell(self, index: int, name: str | None) -> None:
        if not 0 <= index < int(self.table.num_rows) or index in self.deleted:
            raise IndexError(f"row index {index} is not in the file")
        if name is not None and name not in self.fields:
            raise KeyError(name)

    def value(self, index: int, name: str, original: str | None) -> str | None:
        return self.edits[name].get(index, original)

    def values(self, rows: list[int], name: str) -> list[str | None]:
        """Current values (edits applied) of one column at the given rows (ascending)."""
        column = take_rows(self.table.column(name), rows).to_pylist()
        return [self.value(i, name, v) for i, v in zip(rows, column, strict=True)]

    def edited(self, index: int) -> list[str]:
        return [name for name in self.fields if index in self.edits[name]]

    def set_cell(self, change: Change, index: int, name: str, value: str | None) -> None:
        edits = self.edits[name]
        if (index, name) not in change.cells:
            change.cells[(index, name)] = (index in edits, edits.get(index))
        edits[index] = value if value != "" else None

    def delete(self, change: Change) -> None:
        self.deleted.update(change.deleted)
        self._kept = None

    def revert(self, change: Change) -> None:
        """The cells and rows as they were before `change`."""
        for (index, name), (had, old) in change.cells.items():
            if had:
                self.edits[name][index] = old
            else:
                self.edits[name].pop(index, None)
        self.deleted.difference_update(change.deleted)
        self._kept = None

    def kept_rows(self) -> list[int]:
        if self._kept is None:
            rows = range(int(self.table.num_rows))
            self._kept = [i for i in rows if i not in self.deleted] if self.deleted else list(rows)
        return self._kept

    def materialise(self, rows: list[int], names: list[str] | None = None) -> ac.Table:
        """The given rows (ascending) with every edit applied: what is sent to the server."""
        names = self.fields if names is None else names
        arrays = []
        for name in names:
            column = take_rows(self.table.column(name), rows)
            hits = _positions_of(rows, self.edits[name])
            if hits:
                column = replaced(column, hits)
            arrays.append(column)
        schema = ac.Schema([ac.Field(n, ac.DataType.string(), True) for n in names])
        return ac.Table.from_arrays(arrays, schema=schema)


def take_rows(column: ac.ChunkedArray, rows: list[int]) -> ac.Array:
    """The cells at `rows` (ascending, each once) of a column read in chunks, without combining
    the chunks: that would copy the whole column for a window of 60 rows or a one-cell edit.
    """
    if not rows:
        return column.slice(0, 0).combine_chunks()
    if rows[-1] - rows[0] + 1 == len(rows):  # a run of rows: slice (kept rows, no deletions)
        return column.slice(rows[0], len(rows)).combine_chunks()
    parts = []
    start = 0
    for chunk in column.chunks:
        end = start + len(chunk)
        first, last = bisect.bisect_left(rows, start), bisect.bisect_left(rows, end)
        if first < last:
            local = ac.Array([r - start for r in rows[first:last]], ac.DataType.int64())
            parts.append(acc.take(chunk, local))
        start = end
    return ac.ChunkedArray(parts).combine_chunks() if len(parts) > 1 else parts[0]


def _positions_of(rows: list[int], edits: dict[int, str | None]) -> list[tuple[int, str | None]]:
    """(position in `rows`, edited value) for the edited ones among `rows` (ascending): by
    looking each edit up in `rows`, or each row up in the edits, whichever is fewer."""
    if len(edits) < len(rows) // 16:
        hits = []
        for index, value in edits.items():
            at = bisect.bisect_left(rows, index)
            if at < len(rows) and rows[at] == index:
                hits.append((at, value))
        return hits
    return [(at, edits[index]) for at, index in enumerate(rows) if index in edits]
