"""The demo's pages: the host page standing for the client's app, and a webhook receiver
that keeps what it is sent (signature verified; anything else refused) so you can see
exactly what a client would receive."""

from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from server import db
from server.demo.receipts import Receipts
from server.demo.state import DemoState, load_state
from server.runtime import Runtime

TEMPLATE_ID = re.compile(r"tpl_[0-9a-f]{24}")
RECEIVED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")
MAX_RECEIPT_BYTES = 64 * 1024 * 1024
RECEIPTS_SHOWN = 10  # the receiver page shows the newest; receipts.json has them all


def receipts_of(rt: Runtime) -> Receipts:
    return Receipts(rt.settings.data_dir / "demo-receiver.db")


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
    # ?open=click waits for a click: embed.js preloads the importer meanwhile (warm start).
    on_click = request.query_params.get("open") == "click"
    # ... and boots one ahead, hidden, which the click shows as a modal.
    start = (
        "delete options.container; loadbay.preload(options);"
        ' document.getElementById("open-importer").onclick = openImporter;'
        if on_click
        else "openImporter();"
    )
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
<p id="host-data"></p>
{'<button id="open-importer">Open the importer</button>' if on_click else ""}
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
// A template with a host-page destination hands its rows here (acknowledged on return).
options.onData = (data) => {{
  document.getElementById("host-data").textContent =
    "This page was handed " + data.total + " rows of " + data.importId + ".";
}};
// When each step came, on this page's clock (bench/warm_start.py reads it).
window.loadbayTimes = {{}};
options.onStep = (step) => {{ window.loadbayTimes[step] = performance.now(); }};
const openImporter = () => {{
  window.loadbayTimes.opened = performance.now();
  loadbay.open(options);
}};
{start}
</script>
</body></html>"""
    csp = (
        f"default-src 'none'; script-src 'unsafe-inline' {state.importer_origin}; "
        f"style-src 'unsafe-inline'; frame-src {state.importer_origin}; base-uri 'none'"
    )
    return HTMLResponse(page, headers={"content-security-policy": csp})


async def receive_webhook(request: Request) -> Response:
    """Keep a delivery whose signature verifies; a forged POST is refused, not stored."""
    state = _state(request)
    raw = await request.body()
    if len(raw) > MAX_RECEIPT_BYTES:
        return Response(status_code=413)
    body = raw.decode("utf-8", "replace")
    headers = {k: request.headers.get(k, "") for k in RECEIVED_HEADERS}
    try:
        payload = Webhook(state.webhook_secret).verify(body, headers)
    except WebhookVerificationError:
        return JSONResponse({"error": "signature does not verify"}, status_code=401)
    import_id = str((payload.get("data") or {}).get("import_id", ""))[:40]
    rt: Runtime = request.app.state.runtime
    await run_in_threadpool(receipts_of(rt).add, import_id, headers, body)
    return Response(status_code=204)


def _receipts(rt: Runtime) -> list[dict[str, Any]]:
    """What was received, less the receipts of imports whose data has been deleted."""
    return _receipts_of_live_imports(rt).all()


def _receipts_of_live_imports(rt: Runtime) -> Receipts:
    """The receipts, once those of imports whose data has been deleted are forgotten."""
    store = receipts_of(rt)
    seen = store.import_ids()
    with rt.sessions() as session:
        live = set(
            session.scalars(
                select(db.Import.id).where(
                    # by status: a passthrough import never had a stored key, and keeps
                    # its receipts (the receiver is the client's, not loadbay's, storage)
                    db.Import.id.in_(seen),
                    db.Import.status.not_in(["deleted", "expired"]),
                )
            )
        )
    store.forget(seen - live)
    return store


async def receipts_json(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_receipts, request.app.state.runtime))


async def receiver_page(request: Request) -> Response:
    state = _state(request)
    rt: Runtime = request.app.state.runtime
    count, newest = await run_in_threadpool(_newest, rt)
    path = str(rt.settings.data_dir / "demo-receiver.db")
    items = [
        await run_in_threadpool(_section, path, state.webhook_secret, receipt_id, at)
        for receipt_id, at in newest
    ]
    shown = f" The newest {len(items)} are shown." if count > len(items) else ""
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5"><title>Demo webhook receiver</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem}}td,th{{border:1px solid #ddd;
padding:2px 6px}}table{{border-collapse:collapse}}</style></head><body>
<h1>Demo webhook receiver</h1><p>{count} deliveries received.{shown}</p>
{"".join(items) or "<p>Nothing yet.</p>"}</body></html>"""
    csp = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    return HTMLResponse(page, headers={"content-security-policy": csp})


def _newest(rt: Runtime) -> tuple[int, list[tuple[int, str]]]:
    _receipts_of_live_imports(rt)
    return receipts_of(rt).newest(RECEIPTS_SHOWN)


@functools.lru_cache(maxsize=4 * RECEIPTS_SHOWN)
def _section(path: str, secret: str, receipt_id: int, received_at: str) -> str:
    """One receipt as the page shows it, rendered once: the page refreshes every 5 s, and
    verifying and parsing every body each time cost seconds of CPU and gigabytes of memory
    once an import had millions of rows (receipts never change; the key includes when it
    arrived, so a reused id is a new entry)."""
    receipt = Receipts(Path(path)).one(receipt_id)
    if receipt is None:
        return ""
    try:
        payload = Webhook(secret).verify(receipt["body"], receipt["headers"])
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
    return (
        f"<section><h2>{html.escape(receipt['headers'].get('webhook-id', ''))}</h2>"
        f"<p>{html.escape(received_at)} · {len(rows)} rows · "
        f"<strong>{html.escape(verdict)}</strong></p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
    )


routes = [
    Route("/demo/host", host_page, methods=["GET"]),
    Route("/demo/webhook", receive_webhook, methods=["POST"]),
    Route("/demo/receiver", receiver_page, methods=["GET"]),
    Route("/demo/receipts.json", receipts_json, methods=["GET"]),
]
