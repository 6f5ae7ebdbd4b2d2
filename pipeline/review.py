"""Review and fix: the user's edits as an overlay on the immutable Arrow data.

The file's cells are never rewritten. Edits and deleted rows live here, small, and
are applied when a window is shown and when batches are encoded. Every change can be
undone. Re-validation after an edit looks at that one row, plus the whole column
only for rules that span rows (unique values, primary keys).
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import arro3.compute as acc
import arro3.core as ac

from pipeline.scan import positions, replaced
from pipeline.schema import Template
from pipeline.transforms import prepare_column, propose_fix
from pipeline.types import dictionary_encode, parse
from pipeline.validation import CellError, validate

_Was = tuple[int, str, str | None]  # one changed cell: row index, field, the value it held

CROSS_ROW_CODES = ("primary-key",)
CROSS_ROW_CONSTRAINTS = ("unique",)
MAX_WINDOW = 500


def _cross_row(error: CellError) -> bool:
    return error.code in CROSS_ROW_CODES or error.constraint in CROSS_ROW_CONSTRAINTS


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


def _by_field(errors: list[CellError]) -> dict[str, list[CellError]]:
    out: dict[str, list[CellError]] = {}
    for error in errors:
        out.setdefault(error.field, []).append(error)
    return out


@dataclass(frozen=True)
class View:
    """Which rows the grid shows: all, only rows with errors, narrowed by field or code."""

    errors_only: bool = False
    field: str | None = None
    code: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> View:
        return cls(
            errors_only=bool(data.get("errors_only", False)),
            field=data.get("field") or None,
            code=data.get("code") or None,
        )


@dataclass
class _Tally:
    """Error counts over the kept rows, kept up to date change by change: a summary after an
    edit costs the edit's rows, not a walk over every error of the file."""

    by_field: Counter[str] = field(default_factory=Counter)
    by_code: Counter[str] = field(default_factory=Counter)
    rows: int = 0

    def count(self, rows: Iterable[list[CellError]], sign: int) -> None:
        """Add (sign 1) or take away (sign -1) the errors of some rows (counted in C)."""
        groups = [errors for errors in rows if errors]
        if not groups:
            return
        self.rows += sign * len(groups)
        flat = list(itertools.chain.from_iterable(groups))
        for name, n in Counter(map(operator.itemgetter(1), flat)).items():
            self.by_field[name] += sign * n
        # (code, constraint) pairs counted in C; a problem goes by its constraint, else its code
        for (code, constraint), n in Counter(map(operator.itemgetter(2, 4), flat)).items():
            self.by_code[constraint or code] += sign * n


@dataclass
class _Change:
    """One undoable step: cell values before it, and rows it deleted."""

    cells: dict[tuple[int, str], tuple[bool, str | None]] = field(default_factory=dict)
    deleted: list[int] = field(default_factory=list)


class Review:
    def __init__(
        self,
        table: ac.Table,
        template: Template,
        first_row: int,
        on_field: Callable[[int, int], None] | None = None,
        blank_rows: Iterable[int] = (),
    ) -> None:
        """`blank_rows`: rows blank in the file, deleted from the start (and not undoable)."""
        self.table = table
        self.template = template
        self.first_row = first_row
        self.fields = [f.name for f in template.fields if f.name in table.column_names]
        self._field_order = {name: i for i, name in enumerate(template.field_names)}
        self.edits: dict[str, dict[int, str | None]] = {name: {} for name in self.fields}
        self.deleted: set[int] = set(blank_rows)
        self._blank = len(self.deleted)
        self.history: list[_Change] = []
        self.errors: dict[int, list[CellError]] = {}  # row index -> its errors, in order
        self._tally = _Tally()
        self._cross_rows: set[int] = set()  # rows with a unique or primary-key error
        # What one row's re-check needs: every rule but those that span rows.
        self._row_template = replace(
            template,
            fields=tuple(replace(f, unique=False) for f in template.fields),
            primary_key=(),
        )
        self._set_errors(validate(table, template, first_row, on_field=on_field))
        self.view = View()
        self._rows: list[int] | None = None  # rows of the current view, computed on demand
        self._kept: list[int] | None = None

    # -- reading -------------------------------------------------------------------

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows) - len(self.deleted)

    def error_list(self) -> list[CellError]:
        order = self._field_order
        out = [e for index, errs in self.errors.items() if index not in self.deleted for e in errs]
        out.sort(key=lambda e: (e.row, order[e.field]))
        return out

    def summary(self) -> dict[str, Any]:
        tally = self._tally
        by_field = {n: tally.by_field[n] for n in self.template.field_names if tally.by_field[n]}
        return {
            "fields": self.fields,
            "rows": self.num_rows,
            "deleted": len(self.deleted) - self._blank,
            "error_count": sum(by_field.values()),
            "rows_with_errors": tally.rows,
            "by_field": by_field,
            "by_code": {code: n for code, n in sorted(tally.by_code.items()) if n},
            "view_rows": len(self._view_rows()),
            "can_undo": bool(self.history),
        }

    def set_view(self, view: View) -> dict[str, Any]:
        self.view = view
        self._rows = None
        return self.summary()

    def window(self, start: int, count: int) -> list[dict[str, Any]]:
        """Rows [start, start + count) of the current view, with their errors."""
        rows = self._view_rows()[start : start + min(count, MAX_WINDOW)]
        if not rows:
            return []
        columns = {
            name: take_rows(self.table.column(name), rows).to_pylist() for name in self.fields
        }
        out = []
        for i, index in enumerate(rows):
            cells = {name: self._value(index, name, columns[name][i]) for name in self.fields}
            row_errors = _by_field(self.errors.get(index, []))
            fixes = {}
            for name, errs in row_errors.items():
                value = cells[name]
                if errs and value is not None:
                    fix = propose_fix(self.template.field(name), value)
                    if fix is not None:
                        fixes[name] = fix
            out.append(
                {
                    "index": index,
                    "row": self.first_row + index,
                    "cells": cells,
                    "errors": {
                        name: [e.message for e in errs] for name, errs in row_errors.items() if errs
                    },
                    "edited": [name for name in self.fields if index in self.edits[name]],
                    "fixes": fixes,
                }
            )
        return out

    # -- changing ------------------------------------------------------------------

    def edit(self, index: int, name: str, value: str | None) -> dict[str, Any]:
        self._check_cell(index, name)
        was = self.window_values([index], name)[0]
        change = _Change()
        self._set_cell(change, index, name, value)
        self._commit(change, [index], [name], was=(index, name, was))
        return self.summary()

    def replace(self, name: str, find: str, replacement: str) -> dict[str, Any]:
        """Replace `find` inside every cell of one column (kept rows only)."""
        if name not in self.fields:
            raise KeyError(name)
        if not find:
            return {**self.summary(), "changed": 0}
        change = _Change()
        column = self.table.column(name).to_pylist()
        edits = self.edits[name]
        hits = {i for i, v in enumerate(column) if v is not None and find in v and i not in edits}
        hits.update(i for i, v in edits.items() if v is not None and find in v)
        touched = sorted(hits - self.deleted)
        for index in touched:
            current = edits.get(index, column[index])
            assert current is not None  # noqa: S101 - it holds `find`
            self._set_cell(change, index, name, current.replace(find, replacement) or None)
        self._commit(change, touched, [name])
        return {**self.summary(), "changed": len(touched)}

    def fix_column(self, name: str) -> dict[str, Any]:
        """Apply the engine's proposed fix to every cell of one column that has one."""
        if name not in self.fields:
            raise KeyError(name)
        field = self.template.field(name)
        rows = sorted(
            i
            for i, errs in self.errors.items()
            if i not in self.deleted and any(e.field == name for e in errs)
        )
        change = _Change()
        if rows:
            originals = self.window_values(rows, name)
            for index, value in zip(rows, originals, strict=True):
                if value is not None and (fix := propose_fix(field, value)) is not None:
                    self._set_cell(change, index, name, fix)
        touched = sorted({index for index, _ in change.cells})
        self._commit(change, touched, [name])
        return {**self.summary(), "changed": len(touched)}

    def window_values(self, rows: list[int], name: str) -> list[str | None]:
        """Current values (edits applied) of one column at the given rows."""
        column = take_rows(self.table.column(name), rows).to_pylist()
        return [self._value(i, name, v) for i, v in zip(rows, column, strict=True)]

    def delete_rows(self, indices: Iterable[int]) -> dict[str, Any]:
        change = _Change(deleted=sorted({i for i in indices if i not in self.deleted}))
        for index in change.deleted:
            self._check_cell(index, None)
        self._tally.count((self.errors.get(index, []) for index in change.deleted), -1)
        self.deleted.update(change.deleted)
        self._kept = None
        self._commit(change, [], self._cross_row_fields())
        return self.summary()

    def delete_rows_with_errors(self) -> dict[str, Any]:
        return self.delete_rows(
            i for i, errs in self.errors.items() if errs and i not in self.deleted
        )

    def undo(self) -> dict[str, Any]:
        if not self.history:
            return self.summary()
        change = self.history.pop()
        was: _Was | None = None
        if len(change.cells) == 1 and not change.deleted:  # one cell: what it holds now
            ((index, name),) = change.cells
            was = (index, name, self.window_values([index], name)[0])
        for (index, name), (had, old) in change.cells.items():
            if had:
                self.edits[name][index] = old
            else:
                self.edits[name].pop(index, None)
        self.deleted.difference_update(change.deleted)
        self._tally.count((self.errors.get(index, []) for index in change.deleted), +1)
        self._kept = None
        names = sorted({name for _, name in change.cells})
        if change.deleted:  # rows back: unique values and keys may repeat again
            names = sorted(set(names) | set(self._cross_row_fields()))
        # Rows back keep the errors they had; their cells did not change while deleted.
        self._revalidate([index for index, _ in change.cells], names, was)
        self._rows = None
        return self.summary()

    # -- encoding ------------------------------------------------------------------

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

    # -- internals -----------------------------------------------------------------

    def _value(self, index: int, name: str, original: str | None) -> str | None:
        return self.edits[name].get(index, original)

    def _check_cell(self, index: int, name: str | None) -> None:
        if not 0 <= index < int(self.table.num_rows) or index in self.deleted:
            raise IndexError(f"row index {index} is not in the file")
        if name is not None and name not in self.fields:
            raise KeyError(name)

    def _set_cell(self, change: _Change, index: int, name: str, value: str | None) -> None:
        edits = self.edits[name]
        if (index, name) not in change.cells:
            change.cells[(index, name)] = (index in edits, edits.get(index))
        edits[index] = value if value != "" else None

    def _commit(
        self, change: _Change, rows: list[int], names: list[str], was: _Was | None = None
    ) -> None:
        if not change.cells and not change.deleted:
            return
        self.history.append(change)
        self._revalidate(rows, names, was)
        self._rows = None

    def _cross_row_fields(self) -> list[str]:
        data = self.template.to_dict()
        names = [f["name"] for f in data["fields"] if f.get("constraints", {}).get("unique")]
        key = data.get("primaryKey") or []
        names += [key] if isinstance(key, str) else list(key)
        return [n for n in dict.fromkeys(names) if n in self.fields]

    def _revalidate(self, rows: list[int], names: list[str], was: _Was | None = None) -> None:
        """Re-check the cells of `names` in `rows` (the cells a change touched; other rules
        look at one cell each), then cross-row rules: for one changed cell of a unique field,
        over the rows holding its old or new value; otherwise over whole columns.
        """
        live = sorted({i for i in rows if i not in self.deleted})
        for index in set(rows) - set(live):
            self.errors.pop(index, None)  # a deleted row: not in the tally
        changed = set(names)
        found: dict[int, list[CellError]] = {}
        if live:  # every touched row in one validation: a replace can touch most of a file
            fields = tuple(f for f in self._row_template.fields if f.name in changed)
            template = replace(self._row_template, fields=fields)
            numbers = [self.first_row + index for index in live]
            table = self.materialise(live, [f.name for f in fields])
            for error in validate(table, template, numbers):
                found.setdefault(error.row - self.first_row, []).append(error)
        order = self._field_order
        self._replace_errors(
            {
                i: sorted(
                    [e for e in self.errors.get(i, []) if e.field not in changed or _cross_row(e)]
                    + found.get(i, []),
                    key=lambda e: (order[e.field], _cross_row(e)),
                )
                for i in live
                if i in found or i in self.errors
            }
        )
        cross = [name for name in names if name in self._cross_row_fields()]
        if was is not None and cross == [was[1]]:
            self._recheck_values(*was)
        elif cross:
            self._recheck_cross_row()

    def _recheck_values(self, index: int, name: str, was: str | None) -> None:
        """After one cell of a unique or key field changed: only rows holding the value it had
        or the value it has now can gain or lose a repeat (of the value, or of a key holding
        it). Find them in Arrow, validate just those, for that field's rules that span rows."""
        kept = self.kept_rows()
        field = self.template.field(name)
        primary = self.template.primary_key
        names = [n for n in self.fields if n == name or (name in primary and n in primary)]
        spanned = self._spanned(names, unique=name)
        column = self.materialise(kept, [name]).column(name).combine_chunks()
        column = ac.ChunkedArray([column, ac.Array([was], ac.DataType.string())]).combine_chunks()
        encoded = dictionary_encode(parse(field, prepare_column(field, column, spanned)))
        keys = ac.dictionary_indices(encoded)
        here = bisect.bisect_left(kept, index)
        wanted = {keys[len(kept)].as_py(), keys[here].as_py()} - {None}
        rows = {index}
        if wanted:
            lookup = bytearray(len(ac.dictionary_dictionary(encoded)))
            for key in wanted:
                lookup[key] = 1
            flags = acc.cast(ac.Array.from_buffer(lookup), ac.DataType.bool())
            holding = acc.filter(positions(len(kept)), acc.take(flags, keys.slice(0, len(kept))))
            rows.update(kept[p] for p in holding.to_pylist())
        affected = sorted(rows)

        def recomputed(error: CellError) -> bool:
            if error.constraint == "unique":
                return error.field == name
            return error.code == "primary-key" and name in primary

        self._replace_errors(
            {row: [e for e in self.errors.get(row, []) if not recomputed(e)] for row in affected}
        )
        self._check_cross_row(affected, names, spanned)

    def _recheck_cross_row(self) -> None:
        """Unique values and keys again, over the kept rows; only rows they flag change."""
        self._replace_errors(
            {i: [e for e in self.errors.get(i, []) if not _cross_row(e)] for i in self._cross_rows}
        )
        self._cross_rows = set()
        self._check_cross_row(self.kept_rows(), self._cross_row_fields())

    def _spanned(self, names: list[str], unique: str | None = None) -> Template:
        """The template cut to the fields these rules span, none required: a column's worth
        of work, not a file's. The primary key stays only if all its fields are there; of the
        unique rules, only `unique`'s when it is given."""
        fields = tuple(
            replace(f, required=False, unique=f.unique and unique in (None, f.name))
            for f in self.template.fields
            if f.name in names
        )
        key = self.template.primary_key if set(self.template.primary_key) <= set(names) else ()
        return replace(self.template, fields=fields, primary_key=key)

    def _check_cross_row(
        self, rows: list[int], names: list[str], spanned: Template | None = None
    ) -> None:
        """Unique values and keys of `names` among `rows` (ascending), filed with their rows."""
        numbers: int | list[int]
        if rows and rows[-1] - rows[0] + 1 == len(rows):  # a run of rows: its first number
            numbers = self.first_row + rows[0]
        else:
            numbers = [self.first_row + row for row in rows]
        added: dict[int, list[CellError]] = {}
        spanned = spanned or self._spanned(names)
        for error in validate(self.materialise(rows, names), spanned, numbers):
            if _cross_row(error):
                added.setdefault(error.row - self.first_row, []).append(error)
        self._replace_errors({i: [*self.errors.get(i, []), *errs] for i, errs in added.items()})
        self._cross_rows.update(added)

    def _replace_errors(self, changes: dict[int, list[CellError]]) -> None:
        """Rows' errors ({row index: errors}), the tally following (deleted rows not counted)."""
        counted = [index for index in changes if index not in self.deleted]
        self._tally.count((self.errors.get(index, []) for index in counted), -1)
        self._tally.count((changes[index] for index in counted), +1)
        for index, errors in changes.items():  # a row without errors has no entry
            if errors:
                self.errors[index] = errors
            else:
                self.errors.pop(index, None)

    def _set_errors(self, errors: list[CellError]) -> None:
        """Errors (sorted by row) grouped by row index, and counted (in C: there can be many)."""
        first = self.first_row
        for row, group in itertools.groupby(errors, key=operator.itemgetter(0)):
            self.errors[row - first] = list(group)
        blank = self.deleted  # only the file's blank rows, at the start
        live = [e for e in errors if e.row - first not in blank] if blank else errors
        self._cross_rows = (
            {e.row - first for e in live if _cross_row(e)} if self._cross_row_fields() else set()
        )
        self._tally = _Tally()
        self._tally.count((errs for index, errs in self.errors.items() if index not in blank), +1)

    def _view_rows(self) -> list[int]:
        if self._rows is not None:
            return self._rows
        view = self.view
        if not (view.errors_only or view.field or view.code):
            rows = self.kept_rows()
        else:
            rows = []
            for index in sorted(self.errors):
                if index in self.deleted:
                    continue
                candidates = self.errors[index]
                if view.field:
                    candidates = [e for e in candidates if e.field == view.field]
                if view.code:
                    candidates = [e for e in candidates if (e.constraint or e.code) == view.code]
                if candidates:
                    rows.append(index)
        self._rows = rows
        return rows
