"""`loadbay import FILE --template ID --url URL --key KEY`: a headless import from a shell.

It sends the file to `POST /api/v1/files` (streamed from disk, never read whole) and,
unless `--no-wait`, follows `GET /api/v1/files/{id}` until the import is final. Exit 0
delivered (or complete, with no destination), 1 the import failed, 2 the server refused
the request (the problem's detail is printed).
"""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

POLL_EVERY_S = 1.0
TIMEOUT_S = 60.0


def import_file(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, XLSX, ODS, JSON or NDJSON file.")],
    template: Annotated[str, typer.Option("--template", help="The template's id.")],
    url: Annotated[
        str, typer.Option(envvar="LOADBAY_URL", help="The server, e.g. https://loadbay.example.")
    ],
    key: Annotated[str, typer.Option(envvar="LOADBAY_KEY", help="A secret key (lb_sk_...).")],
    sheet: Annotated[str | None, typer.Option(help="Sheet name (spreadsheets).")] = None,
    header_row: Annotated[int | None, typer.Option(help="Header row, 1-based.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (default: detect).")] = None,
    mapping: Annotated[
        str | None, typer.Option(help='Field -> header as JSON, e.g. {"email": "E-mail"}.')
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="CA certificate that signed the server's.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the import until it is final.")] = True,
) -> None:
    """Import FILE into a template through the server's management API."""
    if not file.is_file():
        _fail(f"{file}: no such file.")
    form = {
        name: value
        for name, value in {
            "template_id": template,
            "sheet": sheet,
            "header_row": None if header_row is None else str(header_row),
            "encoding": encoding,
            "mapping": mapping,
        }.items()
        if value is not None
    }
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
    )
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, verify=verify, timeout=TIMEOUT_S) as client:
        try:
            with file.open("rb") as fh:
                answer = client.post("/api/v1/files", data=form, files={"file": (file.name, fh)})
        except httpx.HTTPError as exc:
            _fail(f"Could not send {file.name} to {url}: {exc}")
        if answer.status_code != 202:
            _fail(_problem(answer))
        import_id = answer.json()["id"]
        typer.echo(f"accepted {file.name} as import {import_id}")
        if not wait:
            return
        state = _follow(client, import_id)
    failure = state.get("failure")
    if failure:
        typer.echo(f"{failure['title']}: {failure['detail']}", err=True)
        for e in failure.get("errors", []):
            where = f"row {e['row']}, column {e.get('column') or e['field']}"
            typer.echo(f"  {where}: {e['code']} ({e['key']})", err=True)
    typer.echo(f"import {import_id}: {state['status']}, {state['rows']} rows")
    raise typer.Exit(0 if state["status"] in ("delivered", "complete") else 1)


def _follow(client: httpx.Client, import_id: str) -> dict[str, Any]:
    while True:
        try:
            answer = client.get(f"/api/v1/files/{import_id}")
        except httpx.HTTPError as exc:
            _fail(f"Lost the server while following import {import_id}: {exc}")
        if answer.status_code != 200:
            _fail(_problem(answer))
        state: dict[str, Any] = answer.json()
        if state["final"]:
            return state
        time.sleep(POLL_EVERY_S)


def _problem(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except json.JSONDecodeError:
        return f"The server answered {answer.status_code}."
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"The server answered {answer.status_code}: {detail or body}"


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(2)
