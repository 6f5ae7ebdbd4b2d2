"""Every kept row's errors, kept right change by change without validating the file again.

After a change only the cells it touched are checked again (every rule but those that
span rows looks at one cell), then the rules that span rows (unique values, primary
keys): for one changed cell of a unique field, over the rows holding its old or new
value; otherwise over whole columns. The result is always what validating the edited
file afresh gives.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import arro3.compute as acc
import arro3.core as ac

from pipeline.review.overlay import Overlay, Was
from pipeline.scan import positions
from pipeline.schema import Template
from pipeline.transforms import prepare_column
from pipeline.types import dictionary_encode, parse
from pipeline.validation import CellError, validate

CROSS_ROW_CODES = ("primary-key",)
CROSS_ROW_CONSTRAINTS = ("unique",)


def cross_row(error: CellError) -> bool:
    return error.code in CROSS_ROW_CODES or error.constraint in CROSS_ROW_CONSTRAINTS


@dataclass
class Tally:
    """Error counts over the kept rows, kept up to date change by change: a summary after an
    edit costs the edit's rows, not a walk over every error of the file."""

    by_field: Counter[str] = field(default_factory=Counter)
    by_code: Counter[str] = field(default_factory=Counter)
    rows: int = 0

    def count(self, rows: Iterable[list[CellError]], sign: int) -> None:
        """Add (sign 1) or take away (sign -1) the errors of some rows (counted in C)."""
        groups = [errors for errors in rows if errors]
        if groups:
            self.count_errors(list(itertools.chain.from_iterable(groups)), len(groups), sign)

    def count_errors(self, flat: list[CellError], rows: int, sign: int) -> None:
        """As `count`, the errors of `rows` rows given in one list."""
        self.rows += sign * rows
        for name, n in Counter(map(operator.itemgetter(1), flat)).items():
            self.by_field[name] += sign * n
        # (code, constraint) pairs counted in C; a problem goes by its constraint, else its code
        for (code, constraint), n in Counter(map(operator.itemgetter(2, 4), flat)).items():
            self.by_code[constraint or code] += sign * n


class RowErrors:
    """Row index -> its errors in order (a row without errors has no entry), and the tally."""

    def __init__(
        self,
        overlay: Overlay,
        template: Template,
        first_row: int,
        on_field: Callable[[int, int], None] | None = None,
        row_errors: Iterable[CellError] = (),
        found: list[CellError] | None = None,
    ) -> None:
        """`row_errors`: the reader's errors of whole rows (sorted by row); no edit clears
        them, deleting the row does. `found`: the cells' errors as `validate` gives them,
        when the engines that read the file's parts computed them (pipeline.chunking)."""
        self.overlay = overlay
        self.template = template
        self.first_row = first_row
        self.by_row: dict[int, list[CellError]] = {}
        self.tally = Tally()
        self._field_order: dict[str | None, int] = {None: -1}  # row errors first
        self._field_order.update({name: i for i, name in enumerate(template.field_names)})
        key = template.primary_key
        spanning = [f.name for f in template.fields if f.unique] + list(key)
        self.cross_fields = [n for n in dict.fromkeys(spanning) if n in overlay.fields]
        self._cross_rows: set[int] = set()  # rows with a unique or primary-key error
        # What one row's re-check needs: every rule but those that span rows.
        self._row_template = replace(
            template,
            fields=tuple(replace(f, unique=False) for f in template.fields),
            primary_key=(),
        )
        if found is None:
            found = validate(overlay.table, template, first_row, on_field=on_field)
        self._set(list(heapq.merge(row_errors, found, key=operator.itemgetter(0))))

    def of(self, index: int) -> list[CellError]:
        return self.by_row.get(index, [])

    def kept_rows_of(
        self, name: str, matches: Callable[[CellError], bool] | None = None
    ) -> list[int]:
        """Kept rows (ascending) with a problem of field `name` (one `matches` accepts)."""
        deleted = self.overlay.deleted
        return sorted(
            index
            for index, errs in self.by_row.items()
            if index not in deleted
            and any(e.field == name and (matches is None or matches(e)) for e in errs)
        )

    def listed(self) -> list[CellError]:
        """Every kept row's errors, by row and then template field."""
        deleted, order = self.overlay.deleted, self._field_order
        out = [e for index, errs in self.by_row.items() if index not in deleted for e in errs]
        out.sort(key=lambda e: (e.row, order[e.field]))
        return out

    def recheck(self, rows: list[int], names: list[str], was: Was | None = None) -> None:
        """Re-check the cells of `names` in `rows` (the cells a change touched), then the
        rules that span rows among `names`; `was` when one cell changed."""
        deleted = self.overlay.deleted
        live = sorted({i for i in rows if i not in deleted})
        for index in set(rows) - set(live):
            self.by_row.pop(index, None)  # a deleted row: not in the tally
        changed = set(names)
        found: dict[int, list[CellError]] = {}
        if live:  # every touched row in one validation: a replace can touch most of a file
            fields = tuple(f for f in self._row_template.fields if f.name in changed)
            template = replace(self._row_template, fields=fields)
            numbers = [self.first_row + index for index in live]
            table = self.overlay.materialise(live, [f.name for f in fields])
            for error in validate(table, template, numbers):
                found.setdefault(error.row - self.first_row, []).append(error)
        order = self._field_order
        self._replace(
            {
                i: sorted(
                    [e for e in self.of(i) if e.field not in changed or cross_row(e)]
                    + found.get(i, []),
                    key=lambda e: (order[e.field], cross_row(e)),
                )
                for i in live
                if i in found or i in self.by_row
            }
        )
        cross = [name for name in names if name in self.cross_fields]
        if was is not None and cross == [was[1]]:
            self._recheck_values(*was)
        elif cross:
            self._recheck_cross_row()

    def deleted(self, rows: Iterable[int], sign: int) -> None:
        """Rows deleted (sign -1) or back (sign 1): their errors leave or rejoin the tally."""
        self.tally.count((self.of(index) for index in rows), sign)

    def _recheck_values(self, index: int, name: str, was: str | None) -> None:
        """After one cell of a unique or key field changed: only rows holding the value it had
        or the value it has now can gain or lose a repeat (of the value, or of a key holding
        it). Find them in Arrow, validate just those, for that field's rules that span rows."""
        kept = self.overlay.kept_rows()
        field = self.template.field(name)
        primary = self.template.primary_key
        names = [n for n in self.overlay.fields if n == name or (name in primary and n in primary)]
        spanned = self._spanned(names, unique=name)
        column = self.overlay.materialise(kept, [name]).column(name).combine_chunks()
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

        self._replace({row: [e for e in self.of(row) if not recomputed(e)] for row in affected})
        self._check_cross_row(affected, names, spanned)

    def _recheck_cross_row(self) -> None:
        """Unique values and keys again, over the kept rows; only rows they flag change."""
        self._replace({i: [e for e in self.of(i) if not cross_row(e)] for i in self._cross_rows})
        self._cross_rows = set()
        self._check_cross_row(self.overlay.kept_rows(), self.cross_fields)

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
        for error in validate(self.overlay.materialise(rows, names), spanned, numbers):
            if cross_row(error):
                added.setdefault(error.row - self.first_row, []).append(error)
        self._replace({i: [*self.of(i), *errs] for i, errs in added.items()})
        self._cross_rows.update(added)

    def _replace(self, changes: dict[int, list[CellError]]) -> None:
        """Rows' errors ({row index: errors}), the tally following (deleted rows not counted)."""
        counted = [index for index in changes if index not in self.overlay.deleted]
        self.tally.count((self.of(index) for index in counted), -1)
        self.tally.count((changes[index] for index in counted), +1)
        for index, errors in changes.items():
            if errors:
                self.by_row[index] = errors
            else:
                self.by_row.pop(index, None)

    def _set(self, errors: list[CellError]) -> None:
        """Errors (sorted by row) grouped by row index, and counted (in C: there can be many)."""
        first = self.first_row
        for row, group in itertools.groupby(errors, key=operator.itemgetter(0)):
            self.by_row[row - first] = list(group)
        blank = self.overlay.deleted  # only the file's blank rows, at the start
        live = [e for e in errors if e.row - first not in blank] if blank else errors
        self._cross_rows = (
            {e.row - first for e in live if cross_row(e)} if self.cross_fields else set()
        )
        self.tally = Tally()
        rows = (
            len(self.by_row) - len(blank.intersection(self.by_row)) if blank else len(self.by_row)
        )
        self.tally.count_errors(live, rows, +1)
