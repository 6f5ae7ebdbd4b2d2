"""The headless import: a file sent to the management API, imported without a browser.

The server does what the importer page does, with the same functions: the `pipeline`
engine reads the file (type judged by its bytes, sheets, header row, encoding), matches
its headers to the template (or takes the caller's mapping), validates every cell; the
rows then travel as the browser's batches would, through `server.uploads.receive_batch`
(re-validated, sealed, stored), and `server.imports.submit` creates the deliveries. A
delimited file is read, validated and uploaded part by part, in bounded memory
(`server.headless_rows`).

`accept` checks what can be checked at once (the template, the file's type) and creates
the import; `run` does the rest in a worker thread, one file at a time per process, and
records how it ended on the import: its status, and an `import.failed` event holding the
problem (row, column, sheet; never a cell's value) when it did not pass. A failed
import's batches already stored are shredded with it (`retention.shred`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from pipeline.errors import MappingError, PipelineError
from pipeline.readers import ReadOptions, file_kind
from pipeline.template import parse_template, with_row_policy
from server import db, deliveries, events, imports, passthrough, retention
from server.errors import NotFound, ServiceError, Unavailable
from server.headless_rows import Failure, Rejected, import_rows
from server.imports import CreatedImport, ImportState, ImportStatus
from server.logs import describe
from server.runtime import Runtime

log = logging.getLogger("loadbay.headless")

IMPORT_FAILED = "import.failed"
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
class FileImport:
    state: ImportState
    failure: Failure | None


class Runner:
    """One thread per process reads, validates and uploads headless files in turn: a part
    of a delimited file, or a spreadsheet's or JSON file's whole sheet, is the most memory
    this takes, never two files at once."""

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
    except Rejected as exc:
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
    ids = import_rows(rt, created, path, file_name, read, options.mapping, template)
    try:
        deliveries.enqueue_all(rt, ids)
    except deliveries.QueueUnavailable:  # recorded: the sweeper enqueues them
        log.warning("headless import %s: deliveries wait for the sweeper", created.import_id)


def _title(exc: Exception) -> str:
    if isinstance(exc, MappingError):
        return "The file's columns do not fit the template"
    if isinstance(exc, PipelineError):
        return "The file cannot be read"
    return "The file was not imported"


def _fail(rt: Runtime, import_id: str, failure: Failure) -> None:
    """Record the failure; an import that was not submitted fails, and the batches it
    stored before the failure was found are shredded with its data key."""
    in_redis = False
    with rt.sessions.begin() as session:
        imp = session.get(db.Import, import_id)
        if imp is None:
            return
        if imp.status == ImportStatus.UPLOADING:  # a submitted import's fate is its deliveries'
            imp.status = ImportStatus.FAILED
            in_redis = retention.shred(rt, session, imp, "the headless import failed")
        events.record(
            session,
            org_id=imp.org_id,
            kind=IMPORT_FAILED,
            actor="headless",
            import_id=import_id,
            detail=failure.to_dict(),
        )
    if in_redis:
        passthrough.forget(rt, import_id)


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
