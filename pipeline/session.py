"""One user's import of one file: read, map, validate, encode.

The browser worker drives this through JSON strings (no Python objects cross into
JavaScript, so no proxies leak); the CLI uses the same calls natively.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import arro3.core as ac

from pipeline.batches import BATCH_ROWS, batch_ranges, encode_ipc
from pipeline.errors import MappingError
from pipeline.matching import Match, propose
from pipeline.readers import ReadOptions, Sheet, read_file
from pipeline.review import Review
from pipeline.schema import Template
from pipeline.validation import CellError

PREVIEW_ROWS = 20
ERRORS_SHOWN = 1000
ROW_COLUMN = "__row"  # row numbers travel beside the cells; not a template field
PROBLEMS_SHOWN = 200


@dataclass(frozen=True)
class Report:
    rows: int
    errors: list[CellError]

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        shown = self.errors if limit is None else self.errors[:limit]
        return {
            "rows": self.rows,
            "error_count": len(self.errors),
            "errors": [e.to_dict() for e in shown],
        }


class ImportSession:
    def __init__(self, template: Template, sheet: Sheet) -> None:
        self.template = template
        self.sheet = sheet
        self.matches: list[Match] = []
        self.mapping: dict[str, int] = {}
        self._review: Review | None = None
        self.use_remembered(None)

    def use_remembered(self, remembered: dict[str, str] | None) -> None:
        """Propose a mapping; `remembered` ({header: field}) is what users confirmed before."""
        self.matches = propose(self.sheet.headers, self.template, remembered)
        self.mapping = {m.field: m.column for m in self.matches}
        self._review = None

    @classmethod
    def open(
        cls, path: str, file_name: str, template: Template, options: ReadOptions | None = None
    ) -> ImportSession:
        return cls(template, read_file(path, file_name, options))

    def set_mapping(self, mapping: dict[str, int]) -> None:
        """Field name -> column index; each column at most once."""
        for name, index in mapping.items():
            if name not in self.template.field_names:
                raise MappingError(f'"{name}" is not a field of the template.')
            if not 0 <= index < len(self.sheet.headers):
                raise MappingError(f"Column {index + 1} does not exist in {self.sheet.file_name}.")
        if len(set(mapping.values())) != len(mapping):
            raise MappingError("A column can be mapped to one field only.")
        self.mapping = dict(mapping)
        self._review = None

    def mapped_table(self) -> ac.Table:
        """Only mapped columns, named after their fields: unmapped data goes nowhere."""
        names = [f.name for f in self.template.fields if f.name in self.mapping]
        if not names:  # a table without columns would also have no rows to send
            raise MappingError("No column is mapped to a template field. Map at least one column.")
        # select and rename share the sheet's buffers: the cells are not copied
        return self.sheet.table.select([str(self.mapping[n]) for n in names]).rename_columns(names)

    def report(self) -> Report:
        """Every problem in the mapped cells (blank rows of the file left out)."""
        return Report(rows=self.review.num_rows, errors=self.review.error_list())

    @property
    def review(self) -> Review:
        """The validated rows with the user's edits; started on first use, per mapping."""
        return self.start_review()

    def start_review(self, on_field: Callable[[int, int], None] | None = None) -> Review:
        if self._review is None:
            table = self.mapped_table()
            self._review = Review(
                table, self.template, self.sheet.first_data_row, on_field, self.sheet.blank_rows
            )
        return self._review

    def batches(self, batch_rows: int = BATCH_ROWS) -> list[tuple[int, int]]:
        """(offset, length) over the rows that will be sent (deleted rows left out)."""
        return batch_ranges(self.review.num_rows, batch_rows)

    def encode_batch(self, offset: int, length: int) -> bytes:
        """Mapped cells with edits applied, plus each row's number as the user sees it."""
        rows = self.review.kept_rows()[offset : offset + length]
        table = self.review.materialise(rows)
        first = self.sheet.first_data_row
        numbers = ac.Array([first + index for index in rows], ac.DataType.int64())
        return encode_ipc(table.append_column(ROW_COLUMN, numbers))

    # JSON views for the browser worker.

    def describe_json(self) -> str:
        preview = self.sheet.table.slice(0, min(PREVIEW_ROWS, self.sheet.num_rows))
        rows = [preview.column(str(i)).to_pylist() for i in range(len(self.sheet.headers))]
        return json.dumps(
            {
                "file": self.sheet.file_name,
                "rows": self.sheet.num_rows - len(self.sheet.blank_rows),
                "first_data_row": self.sheet.first_data_row,
                "headers": list(self.sheet.headers),
                "kind": self.sheet.kind,
                "encoding": self.sheet.encoding,
                "sheet": self.sheet.sheet_name,
                "sheets": list(self.sheet.sheet_names),
                "header_row": self.sheet.header_row,
                "problems": [p.to_dict() for p in self.sheet.problems[:PROBLEMS_SHOWN]],
                "problem_count": self.sheet.problem_count,
                "mapping": self.mapping,
                "matches": [m.to_dict() for m in self.matches],
                "preview": [list(r) for r in zip(*rows, strict=True)],
            }
        )

    def report_json(self) -> str:
        return json.dumps(self.report().to_dict(limit=ERRORS_SHOWN))
