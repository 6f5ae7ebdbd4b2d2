"""What crosses the bridge to JavaScript (and to the server's importer page), typed.

Each message is a frozen dataclass with one serialiser, `to_dict()`, giving the JSON
shape the worker and the page read; the states the engine owns are enums whose values
are the strings on the wire. Plain Python with no engine imports but the template model,
so the server can import it natively (`field_infos` for the importer page's config).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.schema import Template


class FileKind(enum.StrEnum):
    """What a file is, judged by its bytes (`pipeline.sniff`)."""

    CSV = "csv"  # any delimited text: CSV, TSV, semicolon, pipe
    XLSX = "xlsx"
    XLSM = "xlsm"
    XLSB = "xlsb"
    XLS = "xls"
    ODS = "ods"
    JSON = "json"
    NDJSON = "ndjson"

    @property
    def is_spreadsheet(self) -> bool:
        return self in SPREADSHEET_KINDS

    @property
    def encoding_choosable(self) -> bool:
        """Delimited text may come in any encoding, so the user may correct the guess;
        spreadsheets carry their own, and JSON is UTF-8 by definition (RFC 8259)."""
        return self is FileKind.CSV

    @property
    def header_row_choosable(self) -> bool:
        """Rows of a table have a header row to pick; JSON objects name their own fields."""
        return self not in (FileKind.JSON, FileKind.NDJSON)


SPREADSHEET_KINDS = frozenset(
    {FileKind.XLSX, FileKind.XLSM, FileKind.XLSB, FileKind.XLS, FileKind.ODS}
)


class MatchSource(enum.StrEnum):
    """Why a column was matched to a field, most certain first."""

    REMEMBERED = "remembered"
    EXACT = "exact"
    SYNONYM = "synonym"
    FUZZY = "fuzzy"


class ValueSource(enum.StrEnum):
    """Why an allowed value is suggested for a value outside a list field's list."""

    CASE = "case"  # the same but for case, accents and spacing
    SYNONYM = "synonym"  # one of the template's other spellings of it
    FUZZY = "fuzzy"  # spelled alike


class Phase(enum.StrEnum):
    """What a progress report counts: rows read ("parse", total unknown) or fields checked."""

    PARSE = "parse"
    VALIDATE = "validate"


class Serialisable(Protocol):
    def to_dict(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class FieldInfo:
    """A template field as the page shows it: the page never re-derives labels or rules."""

    name: str
    label: str
    required: bool
    description: str | None
    allowed: tuple[str, ...] | None = None  # a list field's values: the grid edits with a select

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "required": self.required,
            "description": self.description,
        }
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        return out


def field_infos(template: Template) -> list[FieldInfo]:
    """The template's fields in order. `required` holds for primary-key fields too (the
    parsed template marks them required); `label` is the title, else the name."""
    return [
        FieldInfo(f.name, f.label, f.required, f.description or None, f.enum)
        for f in template.fields
    ]


@dataclass(frozen=True)
class Describe:
    """An opened file: what was read, the proposed mapping, and the template's fields."""

    file: str
    rows: int
    first_data_row: int
    headers: tuple[str, ...]
    kind: FileKind
    encoding: str | None
    sheet: str | None
    sheets: tuple[str, ...]
    header_row: int
    problems: tuple[Serialisable, ...]
    problem_count: int
    mapping: Mapping[str, int]
    matches: tuple[Serialisable, ...]
    preview: tuple[tuple[str | None, ...], ...]
    fields: tuple[FieldInfo, ...]
    max_bytes: int
    # The first row looks like data, not column names: offer "my file has no header row"
    # (header_row 0 when the user picked it; the columns are then Column A, B, ...).
    looks_headerless: bool = False
    # The rows above the header row (row 1 first): the preview shows them to pick from.
    above: tuple[tuple[str | None, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "first_data_row": self.first_data_row,
            "headers": list(self.headers),
            "kind": self.kind.value,
            "encoding": self.encoding,
            "encoding_choosable": self.kind.encoding_choosable,
            "header_row_choosable": self.kind.header_row_choosable,
            "sheet": self.sheet,
            "sheets": list(self.sheets),
            "header_row": self.header_row,
            "problems": [p.to_dict() for p in self.problems],
            "problem_count": self.problem_count,
            "mapping": dict(self.mapping),
            "matches": [m.to_dict() for m in self.matches],
            "preview": [list(row) for row in self.preview],
            "fields": [f.to_dict() for f in self.fields],
            "max_bytes": self.max_bytes,
            "looks_headerless": self.looks_headerless,
            "above": [list(row) for row in self.above],
        }


@dataclass(frozen=True)
class Summary:
    """The review's state after every change; `changed` only for replace and fix_column."""

    fields: tuple[str, ...]
    rows: int
    deleted: int
    error_count: int
    rows_with_errors: int
    by_field: Mapping[str, int]
    by_code: Mapping[str, int]
    view_rows: int
    can_undo: bool
    changed: int | None = None
    policy: str = "reject"  # the invalid-row policy (pipeline.schema.RowPolicy)
    sent: int = 0  # rows that will be sent under it
    submittable: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "policy": self.policy,
            "sent": self.sent,
            "left_out": self.rows - self.sent,
            "submittable": self.submittable,
            "fields": list(self.fields),
            "rows": self.rows,
            "deleted": self.deleted,
            "error_count": self.error_count,
            "rows_with_errors": self.rows_with_errors,
            "by_field": dict(self.by_field),
            "by_code": dict(self.by_code),
            "view_rows": self.view_rows,
            "can_undo": self.can_undo,
        }
        if self.changed is not None:
            out["changed"] = self.changed
        return out


@dataclass(frozen=True)
class WindowRow:
    """One row of the review grid (`window` answers a list of these)."""

    index: int  # the row's position in the file's data rows: what edits and deletes name
    row: int  # its number as the user sees it
    cells: Mapping[str, str | None]
    errors: Mapping[str, tuple[str, ...]]  # field -> messages, fields with errors only
    edited: tuple[str, ...]
    fixes: Mapping[str, str]  # field -> a one-click fix
    # Errors of the whole row (no field): extra or missing cells, a repeated primary key.
    row_errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "row": self.row,
            "cells": dict(self.cells),
            "errors": {name: list(messages) for name, messages in self.errors.items()},
            "edited": list(self.edited),
            "fixes": dict(self.fixes),
            "row_errors": list(self.row_errors),
        }


@dataclass(frozen=True)
class BatchRange:
    """One batch to encode and send (`batch_plan` answers a list of these)."""

    offset: int  # among the rows sent (deleted rows, and invalid ones under valid-only, left out)
    length: int
    first_row: int  # the number the user sees for the batch's first row
    left_out: int = 0  # invalid rows this batch leaves out (valid-only)

    def to_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "length": self.length,
            "first_row": self.first_row,
            "left_out": self.left_out,
        }


@dataclass(frozen=True)
class SavedReview:
    """What the page keeps (in IndexedDB) to resume an interrupted upload of the same file:
    the mapping and the user's edits, never the file's cells. `edits` holds, per field,
    (row index, value) of the cells the user changed; `deleted` the rows they deleted."""

    mapping: Mapping[str, int]
    edits: Mapping[str, tuple[tuple[int, str | None], ...]]
    deleted: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mapping": dict(self.mapping),
            "edits": {name: [list(cell) for cell in cells] for name, cells in self.edits.items()},
            "deleted": list(self.deleted),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SavedReview:
        edits = data.get("edits") or {}
        return cls(
            mapping={str(k): int(v) for k, v in dict(data.get("mapping") or {}).items()},
            edits={
                str(name): tuple((int(i), None if v is None else str(v)) for i, v in cells)
                for name, cells in dict(edits).items()
            },
            deleted=tuple(int(i) for i in data.get("deleted") or ()),
        )


@dataclass(frozen=True)
class OffendingValue:
    """A value outside a list field's list, how many kept cells hold it, and a suggestion."""

    value: str
    count: int
    suggestion: Serialisable | None  # pipeline.matching.ValueSuggestion

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "count": self.count,
            "suggestion": self.suggestion.to_dict() if self.suggestion else None,
        }


@dataclass(frozen=True)
class ValueProblems:
    """One list field's offending values, most frequent first (`more`: distinct values not
    listed), with the values it allows."""

    field: str
    allowed: tuple[str, ...]
    values: tuple[OffendingValue, ...]
    cells: int
    more: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "allowed": list(self.allowed),
            "values": [v.to_dict() for v in self.values],
            "cells": self.cells,
            "more": self.more,
        }


@dataclass(frozen=True)
class DateExample:
    """A cell's text and what it means read day first and month first (ISO dates)."""

    value: str
    day_first: str
    month_first: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "day_first": self.day_first, "month_first": self.month_first}


@dataclass(frozen=True)
class DateQuestion:
    """A date field whose cells are written d/m/y or m/d/y, which cannot be told apart.

    `ambiguous`: cells either order reads; `convertible`: cells the chosen order converts;
    `declared`: the order the template declares (then nothing is asked); `hint`: the order
    the file's unambiguous cells show (13/05/2024 is day first), None if they do not say."""

    field: str
    ambiguous: int
    convertible: int
    examples: tuple[DateExample, ...]
    declared: bool | None = None
    hint: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "ambiguous": self.ambiguous,
            "convertible": self.convertible,
            "examples": [e.to_dict() for e in self.examples],
            "declared": self.declared,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Questions:
    """What the review can fix in one step per column: list values to map, dates to read."""

    values: tuple[ValueProblems, ...]
    dates: tuple[DateQuestion, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": [v.to_dict() for v in self.values],
            "dates": [d.to_dict() for d in self.dates],
        }


@dataclass(frozen=True)
class ErrorAt:
    """Where the next (or previous) cell with a problem is in the current view."""

    position: int  # in the view's rows
    field: str | None  # None: a problem of the whole row (extra-cell, missing-cell, primaryKey)

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "field": self.field}
