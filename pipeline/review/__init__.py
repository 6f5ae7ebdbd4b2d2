"""Review and fix: the user's edits over the validated rows, kept valid change by change.

`Overlay` (pipeline.review.overlay) holds the edits, deleted rows and undo; `RowErrors`
(pipeline.review.recheck) keeps every row's errors right after each change; the grid's
views and windows are pipeline.review.views. `Review` puts them together for the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import arro3.core as ac

from pipeline.policy import rows_sent, submittable
from pipeline.protocol import ErrorAt, Questions, SavedReview, Summary, WindowRow
from pipeline.review.dates import converted_cells, date_question
from pipeline.review.overlay import Change, Overlay, Was, take_rows
from pipeline.review.recheck import RowErrors
from pipeline.review.rejected import rejected_csv
from pipeline.review.values import mapped_cells, value_problems
from pipeline.review.views import MAX_WINDOW, View, view_rows, window_rows
from pipeline.schema import RowPolicy, Template
from pipeline.transforms import propose_fix
from pipeline.validation import CellError

__all__ = ["MAX_WINDOW", "Review", "View", "take_rows"]


class Review:
    def __init__(
        self,
        table: ac.Table,
        template: Template,
        first_row: int,
        on_field: Callable[[int, int], None] | None = None,
        blank_rows: Iterable[int] = (),
        row_errors: Iterable[CellError] = (),
        found: list[CellError] | None = None,
    ) -> None:
        """`blank_rows`: rows blank in the file, deleted from the start (and not undoable);
        `row_errors`: errors of whole rows the reader found (extra or missing cells);
        `found`: the cells' errors, already computed by parallel engines (pipeline.chunking),
        else the table is validated here."""
        self.template = template
        self.first_row = first_row
        fields = [f.name for f in template.fields if f.name in table.column_names]
        self.overlay = Overlay(table, fields, blank_rows)
        self.errors = RowErrors(self.overlay, template, first_row, on_field, row_errors, found)
        self.view = View()
        self._rows: list[int] | None = None  # rows of the current view, computed on demand
        self._sent: list[int] | None = None  # rows to send, computed on demand

    # -- reading -------------------------------------------------------------------

    @property
    def fields(self) -> list[str]:
        return self.overlay.fields

    @property
    def num_rows(self) -> int:
        return self.overlay.num_rows

    def error_list(self) -> list[CellError]:
        return self.errors.listed()

    def summary(self, changed: int | None = None) -> Summary:
        tally = self.errors.tally
        by_field = {n: tally.by_field[n] for n in self.template.field_names if tally.by_field[n]}
        policy = self.template.row_policy()
        sent = self.num_rows - tally.rows if policy is RowPolicy.VALID_ONLY else self.num_rows
        return Summary(
            fields=tuple(self.fields),
            rows=self.num_rows,
            deleted=len(self.overlay.deleted) - self.overlay.blank,
            error_count=sum(tally.by_field.values()),  # row errors (no field) too
            rows_with_errors=tally.rows,
            by_field=by_field,
            by_code={code: n for code, n in sorted(tally.by_code.items()) if n},
            view_rows=len(self._view_rows()),
            can_undo=bool(self.overlay.history),
            changed=changed,
            policy=policy.value,
            sent=sent,
            submittable=submittable(policy, self.num_rows, tally.rows),
        )

    def set_view(self, view: View) -> Summary:
        self.view = view
        self._rows = None
        return self.summary()

    def window(self, start: int, count: int) -> list[WindowRow]:
        """Rows [start, start + count) of the current view, with their errors."""
        rows = self._view_rows()[start : start + min(count, MAX_WINDOW)]
        return window_rows(rows, self.overlay, self.errors, self.template, self.first_row)

    def kept_rows(self) -> list[int]:
        return self.overlay.kept_rows()

    def sent_rows(self) -> list[int]:
        """The kept rows that travel under the template's invalid-row policy."""
        if self._sent is None:
            self._sent = rows_sent(self.template.row_policy(), self.kept_rows(), self.errors.by_row)
        return self._sent

    def materialise(self, rows: list[int], names: list[str] | None = None) -> ac.Table:
        """The given rows (ascending) with every edit applied: what is sent to the server."""
        return self.overlay.materialise(rows, names)

    # -- changing ------------------------------------------------------------------

    def edit(self, index: int, name: str, value: str | None) -> Summary:
        self.overlay.check_cell(index, name)
        was = self.overlay.values([index], name)[0]
        change = Change()
        self.overlay.set_cell(change, index, name, value)
        self._commit(change, [index], [name], was=(index, name, was))
        return self.summary()

    def replace(self, name: str, find: str, replacement: str) -> Summary:
        """Replace `find` inside every cell of one column (kept rows only)."""
        cells = [(i, v.replace(find, replacement) or None) for i, v in self._holding(name, find)]
        return self._set_cells(name, cells)

    def count_replace(self, name: str, find: str) -> int:
        """How many cells `replace` would change (said before the user confirms)."""
        return len(self._holding(name, find))

    def _holding(self, name: str, find: str) -> list[tuple[int, str]]:
        """(row index, current value) of the kept cells of a column that contain `find`."""
        if name not in self.fields:
            raise KeyError(name)
        if not find:
            return []
        column = self.overlay.table.column(name).to_pylist()
        edits = self.overlay.edits[name]
        hits = {i for i, v in enumerate(column) if v is not None and find in v and i not in edits}
        hits.update(i for i, v in edits.items() if v is not None and find in v)
        out = []
        for index in sorted(hits - self.overlay.deleted):
            current = edits.get(index, column[index])
            assert current is not None  # noqa: S101 - it holds `find`
            out.append((index, current))
        return out

    def fix_column(self, name: str) -> Summary:
        """Apply the engine's proposed fix to every cell of one column that has one."""
        return self._set_cells(name, self._fixes(name))

    def count_fix(self, name: str) -> int:
        """How many cells `fix_column` would change."""
        return len(self._fixes(name))

    def _fixes(self, name: str) -> list[tuple[int, str]]:
        if name not in self.fields:
            raise KeyError(name)
        field = self.template.field(name)
        rows = self.errors.kept_rows_of(name)
        out = []
        if rows:
            for index, value in zip(rows, self.overlay.values(rows, name), strict=True):
                if value is not None and (fix := propose_fix(field, value)) is not None:
                    out.append((index, fix))
        return out

    def questions(self) -> Questions:
        """The list fields with values outside their list, and the date fields whose dates
        read both ways: each fixed for the whole column in one step."""
        fields = [self.template.field(name) for name in self.fields]
        values = [p for f in fields if (p := value_problems(self.overlay, self.errors, f))]
        dates = [q for f in fields if (q := date_question(self.overlay, self.errors, f))]
        return Questions(values=tuple(values), dates=tuple(dates))

    def map_values(self, name: str, mapping: dict[str, str]) -> Summary:
        """Every offending cell of a list field whose value `mapping` names gets the allowed
        value it maps to: one undoable step."""
        if name not in self.fields:
            raise KeyError(name)
        return self._set_cells(
            name, mapped_cells(self.overlay, self.errors, self.template.field(name), mapping)
        )

    def convert_dates(self, name: str, day_first: bool) -> Summary:
        """Every rejected numeric date of the field read in the given order, written ISO."""
        if name not in self.fields:
            raise KeyError(name)
        field = self.template.field(name)
        return self._set_cells(name, converted_cells(self.overlay, self.errors, field, day_first))

    def error_at(self, position: int, step: int) -> ErrorAt | None:
        """The first row with a problem after (step 1) or before (step -1) `position` in the
        view, wrapping around; None if no row has one."""
        rows = self._view_rows()
        n = len(rows)
        for k in range(1, n + 1):
            at = (position + step * k) % n
            errs = self.errors.of(rows[at])
            if errs:
                order = {name: i for i, name in enumerate(self.fields)}
                # A problem of the whole row (no field) comes first: it is the row's.
                first = min(errs, key=lambda e: -1 if e.field is None else order.get(e.field, 0))
                return ErrorAt(position=at, field=first.field)
        return None

    def rejected(self, header: list[str], deleted_reason: str) -> str:
        """The rows left out (deleted by the user; with problems under valid-only) as CSV:
        row number, the fields (edits applied), why. `header`: row heading, reason heading."""
        sent = set(self.sent_rows())
        user_deleted = {i for change in self.overlay.history for i in change.deleted}
        rows = sorted((set(self.kept_rows()) - sent) | user_deleted)
        labels = [self.template.field(n).label for n in self.fields]
        columns = [self.overlay.values(rows, name) for name in self.fields] if rows else []

        def lines() -> list[tuple[int, list[str | None], str]]:
            out = []
            for at, index in enumerate(rows):
                cells = [column[at] for column in columns]
                if index in user_deleted:
                    reason = deleted_reason
                else:
                    reason = " ".join(e.message for e in self.errors.of(index))
                out.append((self.first_row + index, cells, reason))
            return out

        return rejected_csv([header[0], *labels, header[1]], lines())

    def delete_rows(self, indices: Iterable[int]) -> Summary:
        deleted = self.overlay.deleted
        change = Change(deleted=sorted({i for i in indices if i not in deleted}))
        for index in change.deleted:
            self.overlay.check_cell(index, None)
        self.errors.deleted(change.deleted, -1)
        self.overlay.delete(change)
        self._commit(change, [], self.errors.cross_fields)
        return self.summary()

    def delete_rows_with_errors(self) -> Summary:
        deleted = self.overlay.deleted
        return self.delete_rows(i for i, errs in self.errors.by_row.items() if i not in deleted)

    def undo(self) -> Summary:
        if not self.overlay.history:
            return self.summary()
        change = self.overlay.history.pop()
        was: Was | None = None
        if len(change.cells) == 1 and not change.deleted:  # one cell: what it holds now
            ((index, name),) = change.cells
            was = (index, name, self.overlay.values([index], name)[0])
        self.overlay.revert(change)
        self.errors.deleted(change.deleted, +1)
        names = sorted({name for _, name in change.cells})
        if change.deleted:  # rows back: unique values and keys may repeat again
            names = sorted(set(names) | set(self.errors.cross_fields))
        # Rows back keep the errors they had; their cells did not change while deleted.
        self.errors.recheck([index for index, _ in change.cells], names, was)
        self._rows = self._sent = None
        return self.summary()

    # -- resuming --------------------------------------------------------------------

    def saved(self, mapping: dict[str, int]) -> SavedReview:
        """The user's edits and deletions (not the file's blank rows), to restore later."""
        overlay = self.overlay
        return SavedReview(
            mapping=dict(mapping),
            edits={n: tuple(sorted(e.items())) for n, e in overlay.edits.items() if e},
            deleted=tuple(sorted({i for change in overlay.history for i in change.deleted})),
        )

    def restore(self, saved: SavedReview) -> Summary:
        """Apply saved edits, then deletions, to the same file read the same way; each is
        one undoable step, re-validated as if the user had just made it."""
        change = Change()
        for name, cells in saved.edits.items():
            for index, value in cells:
                self.overlay.check_cell(index, name)
                self.overlay.set_cell(change, index, name, value)
        touched = sorted({index for index, _ in change.cells})
        self._commit(change, touched, sorted({name for _, name in change.cells}))
        return self.delete_rows(saved.deleted)

    # -- internals -----------------------------------------------------------------

    def _set_cells(self, name: str, cells: Sequence[tuple[int, str | None]]) -> Summary:
        """Set cells of one column as one undoable step; the summary counts them."""
        change = Change()
        for index, value in cells:
            self.overlay.set_cell(change, index, name, value)
        touched = sorted({index for index, _ in change.cells})
        self._commit(change, touched, [name])
        return self.summary(changed=len(touched))

    def _commit(
        self, change: Change, rows: list[int], names: list[str], was: Was | None = None
    ) -> None:
        if not change:
            return
        self.overlay.history.append(change)
        self.errors.recheck(rows, names, was)
        self._rows = self._sent = None

    def _view_rows(self) -> list[int]:
        if self._rows is None:
            self._rows = view_rows(self.view, self.overlay, self.errors)
        return self._rows
