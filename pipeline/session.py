"""One user's import of one file: read, map, validate, encode.

The browser worker drives this through JSON strings (no Python objects cross into
JavaScript, so no proxies leak); the CLI uses the same calls natively.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import arro3.core as ac

from pipeline.batches import BATCH_ROWS, DEFAULT_COMPRESSION, Compression, batch_ranges, encode_ipc
from pipeline.errors import MappingError
from pipeline.matching import Match, propose
from pipeline.policy import left_out_per_batch
from pipeline.protocol import BatchRange, Describe, SavedReview, Summary, field_infos
from pipeline.readers import ReadOptions, Sheet, read_file
from pipeline.review import Review
from pipeline.schema import Template
from pipeline.validation import CellError

PREVIEW_ROWS = 20
ROW_COLUMN = "__row"  # row numbers travel beside the cells; not a template field
PROBLEMS_SHOWN = 200


@dataclass(frozen=True)
class Report:
    rows: int
    errors: list[CellError]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "error_count": len(self.errors),
            "errors": [e.to_dict() for e in self.errors],
        }


class ImportSession:
    def __init__(
        self, template: Template, sheet: Sheet, max_bytes: int = ReadOptions.max_bytes
    ) -> None:
        """`max_bytes`: the size limit the file was read under (shown to the user)."""
        self.template = template
        self.sheet = sheet
        self.max_bytes = max_bytes
        self.matches: list[Match] = []
        self.mapping: dict[str, int] = {}
        self._review: Review | None = None
        self._carried: SavedReview | None = None  # edits kept across a change of mapping
        self.use_remembered(None)

    def use_remembered(self, remembered: dict[str, str] | None) -> None:
        """Propose a mapping; `remembered` ({header: field}) is what users confirmed before."""
        self.matches = propose(self.sheet.headers, self.template, remembered)
        self.mapping = {m.field: m.column for m in self.matches}
        self._review = self._carried = None

    @classmethod
    def open(
        cls, path: str, file_name: str, template: Template, options: ReadOptions | None = None
    ) -> ImportSession:
        options = options or ReadOptions()
        return cls(template, read_file(path, file_name, options), options.max_bytes)

    def set_mapping(self, mapping: dict[str, int]) -> None:
        """Field name -> column index; each column at most once.

        Going back from the review to change the mapping keeps the user's edits of every
        field still mapped to the same column, and the rows they deleted; the edits of a
        field mapped elsewhere or no longer mapped are dropped."""
        for name, index in mapping.items():
            if name not in self.template.field_names:
                raise MappingError(f'"{name}" is not a field of the template.')
            if not 0 <= index < len(self.sheet.headers):
                raise MappingError(f"Column {index + 1} does not exist in {self.sheet.file_name}.")
        if len(set(mapping.values())) != len(mapping):
            raise MappingError("A column can be mapped to one field only.")
        before = self.saved() if self._review is not None else self._carried
        self.mapping = dict(mapping)
        self._review = None
        self._carried = before and SavedReview(
            self.mapping,
            {f: e for f, e in before.edits.items() if before.mapping.get(f) == mapping.get(f)},
            before.deleted,
        )

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

    def start_review(
        self,
        on_field: Callable[[int, int], None] | None = None,
        found: list[CellError] | None = None,
    ) -> Review:
        """`found`: the mapped cells' errors, when parallel engines computed them."""
        if self._review is None:
            table = self.mapped_table()
            self._review = Review(
                table,
                self.template,
                self.sheet.first_data_row,
                on_field,
                self.sheet.blank_rows,
                self.sheet.row_errors,
                found,
            )
            if self._carried is not None:
                self._review.restore(self._carried)
                self._carried = None
        return self._review

    def saved(self) -> SavedReview:
        """The mapping and edits, for resuming an interrupted upload of this file."""
        return self.review.saved(self.mapping)

    def restore(self, saved: SavedReview) -> Summary:
        """The mapping and edits of an earlier session of the same file, re-applied."""
        self._review = self._carried = None
        self.set_mapping(dict(saved.mapping))
        try:
            return self.review.restore(saved)
        except (IndexError, KeyError) as exc:
            self._review = None
            raise MappingError(
                "The saved edits do not fit this file; pick the file again to start over."
            ) from exc

    def batches(self, batch_rows: int = BATCH_ROWS) -> list[tuple[int, int]]:
        """(offset, length) over the rows that will be sent (deleted rows left out, and
        invalid ones when the template's policy is valid-only)."""
        return batch_ranges(len(self.review.sent_rows()), batch_rows)

    def batch_plan(self, batch_rows: int = BATCH_ROWS) -> list[BatchRange]:
        """The batches, each with the row number the user sees for its first row and how
        many invalid rows it leaves out."""
        kept, sent = self.review.kept_rows(), self.review.sent_rows()
        first = self.sheet.first_data_row
        spans = self.batches(batch_rows)
        left_out = left_out_per_batch(kept, sent, spans)
        return [
            BatchRange(offset, length, first + sent[offset], out)
            for (offset, length), out in zip(spans, left_out, strict=True)
        ]

    def encode_batch(
        self, offset: int, length: int, compression: Compression = DEFAULT_COMPRESSION
    ) -> bytes:
        """Mapped cells with edits applied, plus each row's number as the user sees it.

        `compression=None` writes what the browser sends (the server's headless import)."""
        rows = self.review.sent_rows()[offset : offset + length]
        table = self.review.materialise(rows)
        first = self.sheet.first_data_row
        numbers = ac.Array([first + index for index in rows], ac.DataType.int64())
        return encode_ipc(table.append_column(ROW_COLUMN, numbers), compression)

    def _proposed_pairs(self) -> set[tuple[str, int]]:
        return {(m.field, m.column) for m in self.matches if m.proposed}

    def describe(self) -> Describe:
        """The file as read, the proposed mapping and the template's fields, for the page."""
        sheet = self.sheet
        preview = sheet.table.slice(0, min(PREVIEW_ROWS, sheet.num_rows))
        columns = [preview.column(str(i)).to_pylist() for i in range(len(sheet.headers))]
        return Describe(
            file=sheet.file_name,
            rows=sheet.num_rows - len(sheet.blank_rows),
            first_data_row=sheet.first_data_row,
            headers=sheet.headers,
            kind=sheet.kind,
            encoding=sheet.encoding,
            sheet=sheet.sheet_name,
            sheets=sheet.sheet_names,
            header_row=sheet.header_row,
            problems=sheet.problems[:PROBLEMS_SHOWN],
            problem_count=sheet.problem_count,
            # a match the engine is unsure of is offered beside its field, not pre-selected
            mapping={f: c for f, c in self.mapping.items() if (f, c) not in self._proposed_pairs()},
            matches=tuple(self.matches),
            preview=tuple(zip(*columns, strict=True)),
            fields=tuple(field_infos(self.template)),
            max_bytes=self.max_bytes,
            looks_headerless=sheet.looks_headerless,
            above=sheet.above,
        )
