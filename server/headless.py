"""The headless import: a file sent to the management API, imported without a browser.

The server does what the importer page does, with the same functions: the `pipeline`
engine reads the file (type judged by its bytes, sheets, header row, encoding), matches
its headers to the template (or takes the caller's mapping), validates every cell; the
rows then travel as the browser's batches would, through `server.uploads.receive_batch`
(re-validated, sealed, stored), and `server.imports.submit` creates the deliveries.

`accept` checks what can be checked at once (the template, the file's type) and creates
the import; `run` does the rest in a worker thread, one file at a time per process, and
records how it ended on the import: its status, and an `import.failed` event holding the
problem (row, column, sheet; never a cell's value) when it did not pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pipeline.errors import MappingError, PipelineError
from pipeline.readers import ReadOptions, file_kind
from pipeline.schema import RowPolicy
from pipeline.session import ImportSession
from pipeline.template import parse_template, with_row_policy
from server import db, deliveries, events, imports, uploads
from server.errors import Invalid, NotFound, ServiceError, Unavailable
from server.imports import CreatedImport, ImportState, ImportStatus
from server.logs import describe
from server.runtime import Runtime

log = logging.getLogger("loadbay.headless")

IMPORT_FAILED = "import.failed"
ERRORS_KEPT = 20  # cell problems kept on the failure event (row, field, code; no values)
MAX_WAITING = 4  # files accepted but not started yet, per process; more are answered 503


@dataclass(frozen=True)
class FileOptions:
    """What the caller decides about one file (the importer page's choices)."""

    template_id: str
    sheet: str | None = None
    header_row: int | None = None
    encoding: str | None = None
    mapping: dict[str, str] | None = None  # field -> the file's header; None: match them

    def read_options(self, max_bytes: int) -> ReadOptions:
        return ReadOptions(
            encoding=self.encoding,
            sheet=self.sheet,
            header_row=self.header_row,
            max_bytes=max_bytes,
        )


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


@dataclass(frozen=True)
class FileImport:
    state: ImportState
    failure: Failure | None


class Runner:
    """One thread per process reads, validates and uploads headless files in turn: a
    file's whole-sheet Arrow table is the most memory this takes, never two at once."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loadbay-headless")
        self._waiting = threading.BoundedSemaphore(MAX_WAITING + 1)
        self._last: Future[None] | None = None

    def reserve(self) -> None:
        """Take a place in the line, or Unavailable (503) when it is full."""
        if not self._waiting.acquire(blocking=False):
            raise Unavailable(
                "The server is importing other files; send this one again in a minute.",
                retry_after=30,
            )

    def release(self) -> None:
        self._waiting.release()

    def submit(self, work: Callable[[], None]) -> None:
        """Run `work` in turn, in the place `reserve` took."""

        def run() -> None:
            try:
                work()
            finally:
                self._waiting.release()

        self._last = self._pool.submit(run)

    def drain(self) -> None:
        """Wait until every file submitted so far has been imported or has failed (the
        thread takes them in turn, so the last one ends after the others)."""
        if self._last is not None:
            self._last.result()


RUNNER = Runner()


def accept(
    rt: Runtime, org: db.Organisation, path: Path, file_name: str, options: FileOptions
) -> CreatedImport:
    """Check the template and the file's type, create the import; the caller then runs it.

    The file at `path` becomes this import's to delete once `run` has read it.
    """
    read = options.read_options(rt.settings.max_file_bytes)
    file_kind(str(path), file_name, read)  # ReadError now: empty, too large, not a table
    with rt.sessions() as session:
        template = session.get(db.Template, options.template_id)
        if template is None or template.org_id != org.id or template.deleted_at is not None:
            raise NotFound(f"Template {options.template_id} does not exist.")
        parse_template(template.schema)
    return imports.create_import(rt, org, options.template_id, file_name)


def start(
    rt: Runtime, org: db.Organisation, path: Path, file_name: str, options: FileOptions
) -> CreatedImport:
    """`accept`, then `run` in the process's headless thread; the file is deleted after.

    The place in line is taken first: a busy server creates no import it would not run."""
    try:
        RUNNER.reserve()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    try:
        created = accept(rt, org, path, file_name, options)
    except BaseException:
        RUNNER.release()
        path.unlink(missing_ok=True)
        raise
    RUNNER.submit(lambda: run(rt, created, path, file_name, options))
    return created


def run(
    rt: Runtime, created: CreatedImport, path: Path, file_name: str, options: FileOptions
) -> None:
    """Read, map and validate the file; if every cell passes, upload its batches, submit
    and enqueue the deliveries. Whatever stops it is recorded on the import."""
    try:
        _import(rt, created, path, file_name, options)
    except _Rejected as exc:
        _fail(rt, created.import_id, exc.failure)
    except (PipelineError, ServiceError) as exc:
        message = exc.message if isinstance(exc, ServiceError) else str(exc)
        _fail(rt, created.import_id, Failure(_title(exc), message))
    except Exception as exc:  # noqa: BLE001 - the thread's boundary: record it, log where
        log.error("headless import %s failed\n%s", created.import_id, describe(exc))
        _fail(
            rt,
            created.import_id,
            Failure("Internal error", f"loadbay failed ({type(exc).__name__}); send it again."),
        )
    finally:
        path.unlink(missing_ok=True)


def _import(
    rt: Runtime, created: CreatedImport, path: Path, file_name: str, options: FileOptions
) -> None:
    with rt.sessions() as session:
        imp = session.get(db.Import, created.import_id)
        template_row = session.get(db.Template, imp.template_id) if imp else None
        org = session.get(db.Organisation, imp.org_id) if imp else None
        if imp is None or template_row is None or org is None:
            raise NotFound(f"Import {created.import_id} does not exist.")
        # The policy its imports follow written in, as for the importer page.
        template = parse_template(with_row_policy(template_row.schema, org.invalid_row_policy))
    read = options.read_options(rt.settings.max_file_bytes)
    opened = ImportSession.open(str(path), file_name, template, read)
    if options.mapping is not None:
        opened.set_mapping(_columns(opened, options.mapping))
    summary = opened.review.summary()
    if not summary.submittable:  # the invalid-row policy's rule, as the page's Submit asks it
        report = opened.report()
        errors = [_shown(e.to_dict(), opened) for e in report.errors[:ERRORS_KEPT]]
        raise _Rejected(
            _refusal(summary.policy, file_name, summary.rows, errors, len(report.errors))
        )
    plan = opened.batch_plan()
    rows = 0
    for seq, batch in enumerate(plan):
        body = opened.encode_batch(batch.offset, batch.length, compression=None)
        rows += uploads.receive_batch(
            rt, created.import_id, created.upload_token, seq, batch.first_row, body, batch.left_out
        )
    ids = imports.submit(rt, created.import_id, created.upload_token, len(plan), rows)
    try:
        deliveries.enqueue_all(rt, ids)
    except deliveries.QueueUnavailable:  # recorded: the sweeper enqueues them
        log.warning("headless import %s: deliveries wait for the sweeper", created.import_id)


def _refusal(
    policy: str, file_name: str, rows: int, errors: list[dict[str, Any]], count: int
) -> Failure:
    """Why the file cannot be submitted under its invalid-row policy."""
    if rows == 0:
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
            f"{count} cell(s) in {file_name} do not pass the template's "
            "rules; nothing was imported. Fix them and send the file again."
        )
    return Failure("The file's cells do not pass the template's rules", detail, errors, count)


class _Rejected(Invalid):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def _columns(session: ImportSession, mapping: dict[str, str]) -> dict[str, int]:
    """The caller's {field: header} as column indices; an unknown header is a MappingError."""
    headers = session.sheet.headers
    columns: dict[str, int] = {}
    for name, header in mapping.items():
        if header not in headers:
            raise MappingError(
                f'The mapping names the column "{header[:100]}" for "{name[:100]}", but '
                f"{session.sheet.file_name} has no such header."
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


def _title(exc: Exception) -> str:
    if isinstance(exc, MappingError):
        return "The file's columns do not fit the template"
    if isinstance(exc, PipelineError):
        return "The file cannot be read"
    return "The file was not imported"


def _fail(rt: Runtime, import_id: str, failure: Failure) -> None:
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        if imp is None:
            return
        if imp.status == ImportStatus.UPLOADING:  # a submitted import's fate is its deliveries'
            imp.status = ImportStatus.FAILED
        events.record(
            session,
            org_id=imp.org_id,
            kind=IMPORT_FAILED,
            actor="headless",
            import_id=import_id,
            detail=failure.to_dict(),
        )


def file_import(rt: Runtime, org: db.Organisation, import_id: str) -> FileImport:
    """A headless import's status, with its rows received so far while it is uploading,
    and why it failed if it did."""
    with rt.sessions() as session:
        imp = session.get(db.Import, import_id)
        if imp is None or imp.org_id != org.id:
            raise NotFound(f"Import {import_id} does not exist.")
        state = imports.import_status(session, imp)
        if state.status == ImportStatus.UPLOADING:
            count, received = session.execute(
                select(
                    func.count(db.Batch.id), func.coalesce(func.sum(db.Batch.row_count), 0)
                ).where(db.Batch.import_id == import_id)
            ).one()
            state = ImportState(imp.id, state.status, int(received), int(count), state.deliveries)
        event = session.scalar(
            select(db.Event)
            .where(db.Event.import_id == import_id, db.Event.kind == IMPORT_FAILED)
            .order_by(db.Event.id.desc())
        )
    failure = None
    if event is not None:
        d = event.detail
        failure = Failure(d["title"], d["detail"], d.get("errors", []), d.get("error_count", 0))
    return FileImport(state, failure)
