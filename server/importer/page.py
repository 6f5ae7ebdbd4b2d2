"""HTML the server renders: the importer page (inside the client's iframe)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.bridge import ON_DEMAND
from server.importer.assets import AssetManifest

WORKER_PATH = "app/worker.mjs"
ENTRY_PATH = "app/importer.js"
STYLE_PATH = "app/importer.css"
MODULES_PREFIX = "app/src/"


def content_security_policy(frame_ancestors: list[str]) -> str:
    """Nothing but loadbay's own origin; only the client's registered origins may frame it."""
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "worker-src 'self'",
            "connect-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {ancestors}",
        ]
    )


def json_for_html(data: Any) -> str:
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@dataclass(frozen=True)
class ImporterConfig:
    """What the importer page is told by the server; the page decides none of it itself."""

    publishable_key: str
    template_id: str
    template: Mapping[str, Any]
    fields: tuple[Mapping[str, Any], ...]  # pipeline.protocol.FieldInfo.to_dict(), in order
    parent_origin: str
    max_file_bytes: int
    retention_days: int  # what the user is told: 0 is passthrough (nothing stored)
    organisation: str  # who the rows go to, named in the passthrough line
    # The row cap of the template's host-page destination (None: it has none).
    host_page_rows: int | None = None
    identity_required: bool = False  # the template refuses imports without a signed identity

    def to_dict(self) -> dict[str, Any]:
        return {
            "publishableKey": self.publishable_key,
            "templateId": self.template_id,
            "template": dict(self.template),
            "fields": [dict(f) for f in self.fields],
            "parentOrigin": self.parent_origin,
            "maxFileBytes": self.max_file_bytes,
            "retention": {
                "days": self.retention_days,
                "passthrough": self.retention_days == 0,
                "organisation": self.organisation,
            },
            "hostPage": None if self.host_page_rows is None else {"maxRows": self.host_page_rows},
            "identityRequired": self.identity_required,
        }


def importer_page(manifest: AssetManifest, config: ImporterConfig) -> str:
    full = {
        **config.to_dict(),
        "worker": manifest.url(WORKER_PATH),
        "pyodide": manifest.url("pyodide/pyodide.mjs").rsplit("/", 1)[0] + "/",
        "lock": manifest.url("wheels/pyodide-lock.json"),
        # Loaded at boot; the worker loads pipeline.bridge.ON_DEMAND ones when a file needs them.
        "packages": [p for p in manifest.packages if p not in ON_DEMAND],
        # The engine's memory snapshot is kept per build (browser/src/snapshot.js).
        "build": manifest.build_id,
    }
    # Every module the entry imports is preloaded with its SRI hash: the browser takes an
    # import from the preloaded module map, so a module that fails its hash fails the page.
    preloads = "".join(
        f'<link rel="modulepreload" href="{manifest.url(path)}" integrity="{manifest.sri(path)}">\n'
        for path in manifest.under(MODULES_PREFIX, ".js")
    )
    entry = (
        f'<script type="module" src="{manifest.url(ENTRY_PATH)}"'
        f' integrity="{manifest.sri(ENTRY_PATH)}"></script>'
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Import data</title>
<link rel="stylesheet" href="{manifest.url(STYLE_PATH)}" integrity="{manifest.sri(STYLE_PATH)}">
<script type="application/json" id="loadbay-config">{json_for_html(full)}</script>
{preloads}{entry}
</head>
<body>
<main id="app" aria-live="polite"><p class="muted">Loading the importer…</p></main>
</body>
</html>
"""


# Preloaded for the warm start: what every importer page fetches before it is ready.
PRELOAD_PREFIXES = ("pyodide/", "app/")
PRELOAD_CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *"


def preload_page(manifest: AssetManifest) -> str:
    """A page with nothing in it but prefetches of the importer's immutable assets.

    embed.js frames it, hidden, as soon as it loads, so the runtime is in the browser's
    cache (a year, immutable) before the user opens the importer. It holds no data and
    names no organisation, so any page may frame it."""
    paths = [p for p in sorted(manifest.files) if p.startswith(PRELOAD_PREFIXES)]
    boot = tuple(
        name.replace("-", "_") + "-" for name in manifest.packages if name not in ON_DEMAND
    )
    paths += [
        p for p in manifest.under("wheels/", ".whl") if p[len("wheels/") :].lower().startswith(boot)
    ]
    paths.append("wheels/pyodide-lock.json")
    links = "".join(f'<link rel="prefetch" href="{manifest.url(path)}">\n' for path in paths)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loadbay preload</title>
{links}</head><body></body></html>
"""


def message_page(title: str, message: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>
"""
