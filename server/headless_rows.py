"""A headless file's rows: read, validated and uploaded as the importer page's batches.

Delimited text (CSV, TSV, ...; any encoding) is read part by part, one part in memory at
a time (`pipeline.chunking.in_turn`, cut every `Settings.headless_part_bytes`): each part
is validated by the engine's own `validate` and review, then uploaded as batches through
`server.uploads.receive_batch` (re-validated, sealed, stored). A file costs the memory of
one part, not of the whole file. The rules across rows span the parts: a
`unique_sets.SeenInFile` holds a keyed digest of every unique value and key read so far
(about 20 bytes a value), so a repeat in a later part is found with the row it first
appeared in, as validating the whole file finds it. Under `reject`, uploading stops at
the first part with an invalid row and the rest is still validated, so the failure holds
the file's first errors and their count; the caller then fails the import and shreds
what was stored (`server.headless`).

Spreadsheets (xlsx, xlsm, xlsb, xls, ods) and JSON are read whole into one
`ImportSession`: the engine's readers for them (`pipeline.excel`, `pipeline.jsonfile`)
return a whole sheet, and a JSON array is parsed whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline import chunking
from pipeline.delimited import Head, Part, sheet_of
from pipeline.errors import MappingError, ReadError
from pipeline.policy import may_pass, submittable
from pipeline.protocol import Summary
from pipeline.readers import ReadOptions, Sheet
from pipeline.schema import RowPolicy, Template
from pipeline.session import ImportSession
from pipeline.sheet import no_data_rows
from pipeline.validation import validate
from server import imports, uploads
from server.errors import Invalid
from server.imports import CreatedImport
from server.runtime import Runtime
from server.unique_sets import SeenInFile

ERRORS_KEPT = 20  # cell problems kept on the failure event (row, field, code; no values)


@dataclass(frozen=True)
class Failure:
    """Why a headless import did not pass: a problem detail, as the API answers it."""

    title: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "detail": self.detail,
            "error_count": self.error_count,
            "errors": self.errors,
        }


class Rejected(Invalid):
    """The file cannot be submitted under its invalid-row policy."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def import_rows(
    rt: Runtime,
    created: CreatedImport,
    path: Path,
    file_name: str,
    read: ReadOptions,
    mapping: dict[str, str] | None,
    template: Template,
) -> list[int]:
    """Read, validate and upload the file's rows, then submit; returns the deliveries' ids.
    Rejected when its cells do not pass; a ReadError, MappingError or ServiceError when it
    stops. What was uploaded before then stays for the caller to shred."""
    copy = path.with_name(path.name + ".utf-8")  # a file in another encoding, transcoded
    try:
        source = chunking.in_turn(str(path), file_name, read, str(copy))
        batches = _Batches(rt, created)
        if source is None:
            _whole(batches, path, file_name, read, mapping, template)
        else:
            _in_parts(batches, source, file_name, read, mapping, template)
        return batches.submit()
    finally:
        copy.unlink(missing_ok=True)


def _whole(
    batches: _Batches,
    path: Path,
    file_name: str,
    read: ReadOptions,
    mapping: dict[str, str] | None,
    template: Template,
) -> None:
    opened = ImportSession.open(str(path), file_name, template, read)
    if mapping is not None:
        opened.set_mapping(_columns(opened.sheet, mapping))
    summary = opened.review.summary()
    if not summary.submittable:  # the invalid-row policy's rule, as the page's Submit asks it
        found = _Found()
        found.add(opened, summary)
        raise Rejected(found.refusal(RowPolicy(summary.policy), file_name))
    for batch in opened.batch_plan():
        body = opened.encode_batch(batch.offset, batch.length, compression=None)
        batches.send(batch.first_row, body, batch.left_out)


def _in_parts(
    batches: _Batches,
    source: chunking.InTurn,
    file_name: str,
    read: ReadOptions,
    mapping: dict[str, str] | None,
    template: Template,
) -> None:
    policy = template.row_policy()
    seen = SeenInFile()
    found = _Found()
    columns: dict[str, int] | None = None
    bounds = source.bounds(batches.rt.settings.headless_part_bytes)
    for part, before in chunking.parts_in_turn(source, bounds):
        if part.table.num_rows == len(part.blank_rows):
            del part
            continue  # blank lines only: nothing to check or send
        session = ImportSession(template, _part_sheet(source.head, part, before), read.max_bytes)
        del part  # held by the session's sheet only: it goes with the session
        if columns is None:  # the same headers in every part: mapped once
            columns = session.mapping if mapping is None else _columns(session.sheet, mapping)
        session.set_mapping(columns)
        first = session.sheet.first_data_row
        checked = validate(session.mapped_table(), template, first, seen)
        review = session.start_review(found=checked)
        found.add(session, review.summary())
        if may_pass(policy, found.rows_with_errors):
            plan = session.batch_plan()
            for batch in plan:
                body = session.encode_batch(batch.offset, batch.length, compression=None)
                batches.send(batch.first_row, body, batch.left_out)
            if not plan:  # valid-only, no row of this part passes: counted on the next batch
                batches.leave_out(len(review.kept_rows()))
        del session, review, checked
    if found.rows == 0:
        raise ReadError(no_data_rows(file_name))
    if not submittable(policy, found.rows, found.rows_with_errors):
        raise Rejected(found.refusal(policy, file_name))


def _part_sheet(head: Head, part: Part, before: int) -> Sheet:
    """A part as a sheet whose rows keep the file's numbers (`before` data rows above it)."""
    shifted = replace(head, header_row=head.header_row + before)
    return sheet_of(shifted, part.table, part.blank_rows, part.row_errors)


@dataclass
class _Found:
    """The rows read so far, how many have errors, and the first errors (without values)."""

    rows: int = 0
    rows_with_errors: int = 0
    count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, session: ImportSession, summary: Summary) -> None:
        self.rows += summary.rows
        self.rows_with_errors += summary.rows_with_errors
        if summary.rows_with_errors:
            listed = session.report().errors
            self.count += len(listed)
            kept = listed[: max(0, ERRORS_KEPT - len(self.errors))]
            self.errors += [_shown(e.to_dict(), session) for e in kept]

    def refusal(self, policy: RowPolicy, file_name: str) -> Failure:
        """Why the file cannot be submitted under its invalid-row policy."""
        if self.rows == 0:
            return Failure(
                "The file has no rows",
                f"{file_name} has a header row but no data rows; nothing was imported.",
            )
        if policy == RowPolicy.VALID_ONLY:
            detail = (
                f"No row of {file_name} passes the template's rules (valid rows only are "
                "imported); nothing was imported. Fix the cells and send the file again."
            )
        else:
            detail = (
                f"{self.count} cell(s) in {file_name} do not pass the template's "
                "rules; nothing was imported. Fix them and send the file again."
            )
        title = "The file's cells do not pass the template's rules"
        return Failure(title, detail, self.errors, self.count)


class _Batches:
    """An import's batches sent in turn through `receive_batch`, then submitted.

    The last one is held back until the next one or the end: rows left out after it
    (valid-only, a part with no passing row) are counted on the batch that follows them,
    or on the last one, as the page's batch plan counts them."""

    def __init__(self, rt: Runtime, created: CreatedImport) -> None:
        self.rt, self._created = rt, created
        self.count = self.rows = 0
        self._held: tuple[int, bytes, int] | None = None  # first row, body, left out
        self._left_out = 0  # rows left out since the held batch

    def send(self, first_row: int, body: bytes, left_out: int) -> None:
        self._flush()
        self._held = (first_row, body, left_out + self._left_out)
        self._left_out = 0

    def leave_out(self, rows: int) -> None:
        self._left_out += rows

    def submit(self) -> list[int]:
        if self._held is not None:
            first_row, body, left_out = self._held
            self._held = (first_row, body, left_out + self._left_out)
        self._flush()
        created = self._created
        return imports.submit(self.rt, created.import_id, created.upload_token, self.count,
                              self.rows)  # fmt: skip

    def _flush(self) -> None:
        if self._held is None:
            return
        first_row, body, left_out = self._held
        self._held = None
        created = self._created
        self.rows += uploads.receive_batch(
            self.rt, created.import_id, created.upload_token, self.count, first_row, body,
            left_out,
        )  # fmt: skip
        self.count += 1


def _columns(sheet: Sheet, mapping: dict[str, str]) -> dict[str, int]:
    """The caller's {field: header} as column indices; an unknown header is a MappingError."""
    headers = sheet.headers
    columns: dict[str, int] = {}
    for name, header in mapping.items():
        if header not in headers:
            raise MappingError(
                f'The mapping names the column "{header[:100]}" for "{name[:100]}", but '
                f"{sheet.file_name} has no such header."
            )
        columns[name] = headers.index(header)
    return columns


def _shown(error: dict[str, Any], session: ImportSession) -> dict[str, Any]:
    """Where a cell problem is (row, column, sheet) and what it is; its value stays out."""
    header = session.mapping.get(str(error["field"]))
    return {
        "row": error["row"],
        "field": error["field"],
        "column": None if header is None else session.sheet.headers[header],
        "sheet": session.sheet.sheet_name,
        "code": error["code"],
        "key": error["key"],
        **({"constraint": error["constraint"]} if "constraint" in error else {}),
    }
