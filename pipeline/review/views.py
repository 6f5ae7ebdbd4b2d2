"""What the review grid shows: which rows (the view), and a window of them with errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.protocol import WindowRow
from pipeline.review.overlay import Overlay, take_rows
from pipeline.review.recheck import RowErrors
from pipeline.schema import Template
from pipeline.transforms import propose_fix
from pipeline.validation import CellError

MAX_WINDOW = 500


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

    @property
    def everything(self) -> bool:
        return not (self.errors_only or self.field or self.code)

    def shows(self, errors: list[CellError]) -> bool:
        """Whether a row with these errors is in the view (of those that narrow it)."""
        if self.field:
            errors = [e for e in errors if e.field == self.field]
        if self.code:
            errors = [e for e in errors if (e.constraint or e.code) == self.code]
        return bool(errors)


def view_rows(view: View, overlay: Overlay, errors: RowErrors) -> list[int]:
    """The row indices the view shows, in file order."""
    if view.everything:
        return overlay.kept_rows()
    deleted = overlay.deleted
    return [i for i in sorted(errors.by_row) if i not in deleted and view.shows(errors.by_row[i])]


def window_rows(
    rows: list[int], overlay: Overlay, errors: RowErrors, template: Template, first_row: int
) -> list[WindowRow]:
    """The given rows (ascending) as the grid shows them: cells, errors, edits, fixes."""
    if not rows:
        return []
    names = overlay.fields
    columns = {name: take_rows(overlay.table.column(name), rows).to_pylist() for name in names}
    out = []
    for i, index in enumerate(rows):
        cells = {name: overlay.value(index, name, columns[name][i]) for name in names}
        messages: dict[str, list[str]] = {}
        whole_row: list[str] = []
        for error in errors.of(index):
            if error.field is None:
                whole_row.append(error.message)
                # a repeated key is shown on the key's cells as well
                for name in error.params.get("fields", ()):  # type: ignore[attr-defined]
                    if name in cells:
                        messages.setdefault(name, []).append(error.message)
            else:
                messages.setdefault(error.field, []).append(error.message)
        fixes = {}
        for name in messages:
            value = cells[name]
            fix = propose_fix(template.field(name), value) if value is not None else None
            if fix is not None:
                fixes[name] = fix
        out.append(
            WindowRow(
                index=index,
                row=first_row + index,
                cells=cells,
                errors={name: tuple(texts) for name, texts in messages.items()},
                edited=tuple(overlay.edited(index)),
                fixes=fixes,
                row_errors=tuple(whole_row),
            )
        )
    return out
