"""The demo: an organisation, the contacts template, and a webhook receiver to watch.

The receiver stands in for the client's own system: it is mounted only in demo mode
and keeps what it is sent so you can see exactly what a client would receive.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from destinations.webhook import new_secret
from server import db, orgs
from server.runtime import Runtime

TEMPLATE_FILE = Path(__file__).parent / "contacts.schema.json"
TEMPLATE_ID = re.compile(r"tpl_[0-9a-f]{24}")
RECEIVED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")


@dataclass(frozen=True)
class DemoState:
    org_id: str
    publishable_key: str
    template_id: str
    destination_id: str
    webhook_secret: str
    importer_origin: str
    host_origin: str

    @property
    def host_page(self) -> str:
        return f"{self.host_origin}/demo/host"

    @property
    def receiver_page(self) -> str:
        return f"{self.importer_origin}/demo/receiver"


def host_origin_for(public_url: str) -> str:
    """The demo host page lives on another origin (localhost vs 127.0.0.1), as a client's would."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://localhost:{parts.port}"


def state_file(rt: Runtime) -> Path:
    return rt.settings.data_dir / "demo.json"


def load_state(rt: Runtime) -> DemoState | None:
    path = state_file(rt)
    if not path.exists():
        return None
    return DemoState(**json.loads(path.read_text()))


def seed(rt: Runtime) -> DemoState:
    """Create the demo organisation once; later runs reuse it (and its secret)."""
    importer_origin = rt.settings.public_url
    existing = load_state(rt)
    if existing is not None and existing.importer_origin == importer_origin:
        with rt.sessions() as session:
            if session.get(db.Organisation, existing.org_id) is not None:
                return existing
    host_origin = host_origin_for(importer_origin)
    org = orgs.create_organisation(rt, "Demo Inc.", [host_origin])
    template = orgs.create_template(rt, org, json.loads(TEMPLATE_FILE.read_text()))
    secret = new_secret()
    destination = orgs.create_destination(
        rt,
        org,
        template,
        "webhook",
        "Demo receiver",
        {"url": f"{importer_origin}/demo/webhook", "secret": secret},
    )
    state = DemoState(
        org_id=org.id,
        publishable_key=org.publishable_key,
        template_id=template.id,
        destination_id=destination.id,
        webhook_secret=secret,
        importer_origin=importer_origin,
        host_origin=host_origin,
    )
    path = state_file(rt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(state), fh, indent=2)
    return state


def _state(request: Request) -> DemoState:
    rt: Runtime = request.app.state.runtime
    state = load_state(rt)
    if state is None:
        raise RuntimeError("demo not seeded: run `loadbay demo`")
    return state


async def host_page(request: Request) -> Response:
    state = _state(request)
    manifest = request.app.state.manifest
    embed = state.importer_origin + manifest.url("app/embed.js")
    # ?template=tpl_... embeds another of the demo organisation's templates.
    chosen = request.query_params.get("template", "")
    template_id = chosen if TEMPLATE_ID.fullmatch(chosen) else state.template_id
    options = json.dumps(
        {
            "server": state.importer_origin,
            "publishableKey": state.publishable_key,
            "template": template_id,
        }
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo host app</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}
#importer{{height:44rem;border:1px solid #ccc;border-radius:8px}}</style></head>
<body>
<h1>Acme CRM (demo host page)</h1>
<p>This page stands for your app. The importer below is served by loadbay from
<code>{html.escape(state.importer_origin)}</code>, another origin.
Delivered rows appear on the <a href="{html.escape(state.receiver_page)}">demo receiver</a>.</p>
<p id="host-status">Waiting for an import…</p>
<div id="importer"></div>
<script src="{html.escape(embed)}" integrity="{manifest.files["app/embed.js"].sri}"
 crossorigin="anonymous"></script>
<script>
const options = {options};
options.container = document.getElementById("importer");
options.onComplete = (result) => {{
  document.getElementById("host-status").textContent =
    "Import " + result.importId + ": " + result.status + " (" + result.rows + " rows)";
}};
Loadbay.open(options);
</script>
</body></html>"""
    return HTMLResponse(page)


async def receive_webhook(request: Request) -> Response:
    body = (await request.body()).decode("utf-8", "replace")
    headers = {k: request.headers.get(k, "") for k in RECEIVED_HEADERS}
    rt: Runtime = request.app.state.runtime

    def store() -> None:
        with rt.sessions.begin() as session:
            session.add(db.DemoReceipt(headers=headers, body=body))

    await run_in_threadpool(store)
    return Response(status_code=204)


def _receipts(rt: Runtime) -> list[dict[str, Any]]:
    with rt.sessions() as session:
        rows = session.scalars(select(db.DemoReceipt).order_by(db.DemoReceipt.id)).all()
        return [
            {"received_at": r.received_at.isoformat(), "headers": r.headers, "body": r.body}
            for r in rows
        ]


async def receipts_json(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_receipts, request.app.state.runtime))


async def receiver_page(request: Request) -> Response:
    state = _state(request)
    receipts = await run_in_threadpool(_receipts, request.app.state.runtime)
    items = []
    for receipt in reversed(receipts):
        try:
            payload = Webhook(state.webhook_secret).verify(receipt["body"], receipt["headers"])
            verdict = "signature verified"
        except WebhookVerificationError as exc:
            payload, verdict = json.loads(receipt["body"] or "null"), f"NOT verified: {exc}"
        data = (payload or {}).get("data", {})
        rows = data.get("rows", [])
        columns = list(rows[0]) if rows else []
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(r.get(c)))}</td>" for c in columns) + "</tr>"
            for r in rows[:50]
        )
        items.append(
            f"<section><h2>{html.escape(receipt['headers'].get('webhook-id', ''))}</h2>"
            f"<p>{html.escape(receipt['received_at'])} · {len(rows)} rows · "
            f"<strong>{html.escape(verdict)}</strong></p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
        )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5"><title>Demo webhook receiver</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}td,th{{border:1px solid #ddd;
padding:2px 6px}}table{{border-collapse:collapse}}</style></head><body>
<h1>Demo webhook receiver</h1><p>{len(receipts)} deliveries received.</p>
{"".join(items) or "<p>Nothing yet.</p>"}</body></html>"""
    return HTMLResponse(page)


routes = [
    Route("/demo/host", host_page, methods=["GET"]),
    Route("/demo/webhook", receive_webhook, methods=["POST"]),
    Route("/demo/receiver", receiver_page, methods=["GET"]),
    Route("/demo/receipts.json", receipts_json, methods=["GET"]),
]
