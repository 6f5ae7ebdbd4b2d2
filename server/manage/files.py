"""`POST /api/v1/files` (a headless import) and `GET /api/v1/files/{id}` (how it stands).

The POST is multipart/form-data, so it has an edge of its own (the management API's
others read a JSON body): the address and key rate limits and the secret key first, then
the body streamed through Starlette's multipart parser with a byte cap on the whole
body, a wait limit between chunks, one file part and a few small fields; the file part
spools to disk, never whole in memory. It answers 202 with the import's id once the
file's type and the template are checked; server.headless does the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from python_multipart.exceptions import MultipartParseError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from pipeline.errors import PipelineError
from server import headless
from server.errors import Invalid, ServiceError, TooLarge, TooSlow
from server.http.auth import management_org, runtime_of
from server.http.limits import Limiter
from server.http.responses import problem_response, server_problem
from server.logs import describe
from server.manage.openapi import Endpoint
from server.runtime import Runtime

if TYPE_CHECKING:
    from server.manage.edge import Call

log = logging.getLogger("loadbay.manage.files")

FORM_OVERHEAD = 64 * 1024  # the fields and part headers besides the file
FIELD_BYTES = 64 * 1024  # one field (a mapping of many headers fits)
FIELDS = ("template_id", "sheet", "header_row", "encoding", "mapping")
COPY_CHUNK = 1024 * 1024
STALE_AFTER_S = 24 * 3600


class FileFailure(BaseModel):
    title: str
    detail: str
    error_count: int
    errors: list[dict[str, Any]] = Field(
        description="The first cell problems: row, field, column, sheet, code (no values)."
    )


class FileImportOut(BaseModel):
    id: str
    status: str
    final: bool
    rows: int = Field(description="Rows received so far (while uploading), then imported.")
    batches: int
    deliveries: dict[str, int]
    failure: FileFailure | None = None

    @classmethod
    def of(cls, found: headless.FileImport) -> FileImportOut:
        state = found.state.to_dict()
        failure = None if found.failure is None else FileFailure(**found.failure.to_dict())
        return cls(**state, failure=failure)


async def get_file_import(call: Call) -> FileImportOut:
    found = await run_in_threadpool(headless.file_import, call.rt, call.org, call.id)
    return FileImportOut.of(found)


async def post_file(request: Request) -> Response:
    try:
        rt = runtime_of(request)
        limiter: Limiter = request.app.state.limiter
        limiter.address(request)
        org, _, _ = await management_org(request, limiter)
        cap = rt.settings.max_file_bytes + FORM_OVERHEAD
        form = await _form(request, limiter, cap)
        try:
            upload, options = _parsed(form)
            path = await run_in_threadpool(_spooled_copy, rt, upload)
        finally:
            await form.close()
        name = (upload.filename or "upload")[:300]
        created = await run_in_threadpool(headless.start, rt, org, path, name, options)
    except (ServiceError, PipelineError) as exc:
        return problem_response(exc)
    except Exception as exc:  # noqa: BLE001 - answered as a problem, logged with its trace
        # By type and frames only: an exception's text may quote a cell (server.logs).
        log.error("unexpected error on POST /api/v1/files\n%s", describe(exc))
        return server_problem()
    body = {
        "id": created.import_id,
        "status": "uploading",
        "status_url": f"/api/v1/files/{created.import_id}",
    }
    return JSONResponse(body, status_code=202, headers={"location": body["status_url"]})


async def _form(request: Request, limiter: Limiter, cap: int) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise Invalid("Send the file as multipart/form-data: a `file` part and `template_id`.")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or len(declared) > 19):
        raise Invalid("Content-Length must be a whole number of bytes.")
    if declared is not None and int(declared) > cap:
        raise TooLarge(f"A file may hold at most {cap - FORM_OVERHEAD} bytes.")
    parser = MultiPartParser(
        request.headers,
        _bounded(request, cap, limiter.body_timeout),
        max_files=1,
        max_fields=len(FIELDS),
        max_part_size=FIELD_BYTES,
    )
    try:
        return await parser.parse()
    except (MultiPartException, MultipartParseError) as exc:
        raise Invalid(f"The multipart body cannot be read: {exc}") from None
    except ClientDisconnect:
        raise Invalid("The connection closed before the file arrived.") from None


async def _bounded(request: Request, cap: int, wait: float) -> AsyncGenerator[bytes, None]:
    """The body, stopped at `cap` bytes, and when no chunk arrives for `wait` seconds."""
    size = 0
    chunks = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(wait):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise TooSlow(f"The file stopped arriving for {wait:.0f} s; send it again.") from None
        size += len(chunk)
        if size > cap:
            raise TooLarge(f"A file may hold at most {cap - FORM_OVERHEAD} bytes.")
        yield chunk


def _parsed(form: FormData) -> tuple[UploadFile, headless.FileOptions]:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Invalid("The form needs a `file` part holding the file to import.")
    unknown = sorted({k for k in form if k not in (*FIELDS, "file")})
    if unknown:
        raise Invalid(f"Unknown form field(s): {', '.join(unknown)[:200]}.")
    text: dict[str, str | None] = {}
    for name in FIELDS:
        value = form.get(name)
        if isinstance(value, UploadFile):
            raise Invalid(f"`{name}` is a form field, not a file.")
        text[name] = value or None
    template_id = text["template_id"]
    if template_id is None:
        raise Invalid("The form needs `template_id`: the template to import into.")
    header_row = text["header_row"]
    if header_row is not None and not (
        header_row.isascii() and header_row.isdigit() and 1 <= int(header_row[:8]) <= 1_048_576
    ):
        raise Invalid("header_row is a row number from 1 to 1048576.")
    return upload, headless.FileOptions(
        template_id=template_id[:100],
        sheet=text["sheet"],
        header_row=None if header_row is None else int(header_row),
        encoding=text["encoding"],
        mapping=_mapping(text["mapping"]),
    )


def _mapping(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Invalid('mapping is a JSON object of field name -> header: {"email": "E-mail"}.')
    return value


def _spooled_copy(rt: Runtime, upload: UploadFile) -> Path:
    """The uploaded file as a file of its own (the readers take a path), 0600 in the data
    directory, copied a chunk at a time from the parser's spool."""
    folder = rt.settings.data_dir / "headless"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _forget_stale(folder)
    handle, name = tempfile.mkstemp(prefix="file-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, out, COPY_CHUNK)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _forget_stale(folder: Path) -> None:
    """Files a server that stopped mid-import left behind (a running import reads its file
    within seconds of arriving, and deletes it once read)."""
    cutoff = time.time() - STALE_AFTER_S
    for stale in folder.glob("file-*"):
        with contextlib.suppress(FileNotFoundError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()


class FileForm(BaseModel):
    """The form `POST /api/v1/files` takes (multipart/form-data)."""

    file: bytes = Field(description="The file: CSV/TSV, XLSX/XLSM/XLSB/XLS, ODS, JSON, NDJSON.")
    template_id: str = Field(max_length=100)
    sheet: str | None = Field(None, description="The sheet to read (spreadsheets).")
    header_row: int | None = Field(None, ge=1, le=1_048_576, description="Default: detected.")
    encoding: str | None = Field(None, description="Text encoding; default: detected.")
    mapping: str | None = Field(
        None, description="JSON {field: header}; default: headers matched as the importer does."
    )


class FileAccepted(BaseModel):
    id: str
    status: str
    status_url: str


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/api/v1/files",
        post_file,
        "Import a file without the browser (a headless import); 202 once accepted",
        FileAccepted,
        status=202,
        body=FileForm,
        errors=(401, 404, 413, 422, 429, 503),
        form=True,
    ),
    Endpoint(
        "GET",
        "/api/v1/files/{id}",
        get_file_import,
        "How a headless import (POST /api/v1/files) stands, and why it failed",
        FileImportOut,
    ),
)
