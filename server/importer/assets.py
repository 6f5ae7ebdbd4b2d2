"""Serving the browser assets: the manifest a build wrote, and each file's immutable URL.

Everything the importer runs in the browser comes from one content-addressed directory, so
pages can reference files by immutable URL with SRI and nothing is fetched from third parties.
Building that directory is a build-time tool (tools/build_assets.py), not server code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

MANIFEST_NAME = "manifest.json"


class AssetsMissingError(RuntimeError):
    """The server was started before `loadbay assets build` produced a manifest."""


@dataclass(frozen=True)
class AssetFile:
    """Integrity data for one served file."""

    sha256: str
    sri: str
    size: int


@dataclass(frozen=True)
class AssetManifest:
    """What a build produced; `build_id` versions every URL so assets can be cached forever."""

    build_id: str
    pyodide_version: str
    packages: tuple[str, ...]
    files: dict[str, AssetFile]

    def url(self, path: str) -> str:
        """Immutable URL of `path`; unknown paths raise KeyError rather than 404 at runtime."""
        if path not in self.files:
            raise KeyError(path)
        return f"/assets/{self.build_id}/{path}"

    def sri(self, path: str) -> str:
        """The `integrity` attribute value for `path` (KeyError when it was not built)."""
        return self.files[path].sri

    def under(self, prefix: str, suffix: str = "") -> list[str]:
        """Built paths starting with `prefix` (and ending with `suffix`), sorted."""
        return sorted(p for p in self.files if p.startswith(prefix) and p.endswith(suffix))

    @classmethod
    def load(cls, assets_dir: Path) -> AssetManifest:
        """Read the manifest a build wrote into `assets_dir`."""
        try:
            raw = json.loads((assets_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise AssetsMissingError(
                "Browser assets are not built: run `loadbay assets build`"
            ) from exc
        return cls(
            build_id=raw["build_id"],
            pyodide_version=raw["pyodide_version"],
            packages=tuple(raw["packages"]),
            files={path: AssetFile(**entry) for path, entry in raw["files"].items()},
        )


# --- serving: Pyodide, wheels and the importer's scripts, under their build id -----------

IMMUTABLE = "public, max-age=31536000, immutable"
# Explicit, not the platform's mimetypes table (which differs between machines and would
# need patching at import time).
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".css": "text/css",
    ".json": "application/json",
    ".html": "text/html",
    ".zip": "application/zip",
}
ASSET_CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'"


async def asset(request: Request) -> Response:
    manifest = request.app.state.manifest
    path = request.path_params["path"]
    if request.path_params["build_id"] != manifest.build_id or path not in manifest.files:
        return Response("Not found", status_code=404)
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path else ""
    return FileResponse(
        request.app.state.runtime.settings.assets_dir / path,
        media_type=MEDIA_TYPES.get(suffix.lower(), "application/octet-stream"),
        headers={
            "cache-control": IMMUTABLE,
            "cross-origin-resource-policy": "cross-origin",
            "access-control-allow-origin": "*",
            "content-security-policy": ASSET_CSP,
        },
    )


# A stable address for the SDK: what clients' pages and the quick start load. Cached
# briefly (a new build is picked up within minutes); everything it loads is immutable.
EMBED_PATH = "app/embed.js"
EMBED_CACHE = "public, max-age=300"


async def embed_script(request: Request) -> Response:
    manifest = request.app.state.manifest
    return FileResponse(
        request.app.state.runtime.settings.assets_dir / EMBED_PATH,
        media_type="text/javascript",
        headers={
            "cache-control": EMBED_CACHE,
            "cross-origin-resource-policy": "cross-origin",
            "access-control-allow-origin": "*",
            "content-security-policy": ASSET_CSP,
            "etag": f'"{manifest.files[EMBED_PATH].sha256[:32]}"',
        },
    )
