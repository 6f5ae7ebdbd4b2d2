"""Cold and warm start of the importer: from loadbay.open() to the engine being ready.

A real `loadbay demo` (HTTPS, its own port and data directory) and a real Chromium. Times
are read on the host page's own clock: `opened` when it calls loadbay.open(), then the
SDK's `engine-ready` step (the moment the importer shows "Ready."). Three ways in:

- cold: a fresh browser profile (empty HTTP cache) opens the demo host page;
- same page: on the same page, an importer (a modal) is opened, closed and opened again;
  embed.js kept the closed one hidden with its booted engine, and shows it again;
- reopen: the same profile opens it again in a new page load, once the first engine has
  kept its memory snapshot (browser/src/snapshot.js): everything immutable is in the HTTP
  cache and the engine restores the snapshot. The profile is a regular window's, which
  lets the embedded importer have its IndexedDB (bench.chromium.regular_window);
- reopen without snapshot: the same in a Playwright context, which blocks third-party
  storage: the engine cannot keep a snapshot and starts afresh (the figure before it);
- preboot: a fresh profile loads a page that calls loadbay.preload(options) (the importer
  boots hidden while the user looks at the page) and opens it with a click a moment later;
  also timed from the click until "Ready." is visible in the frame (wall clock, through
  Playwright's polling, so an upper bound).

Writes bench/results/warm-start-latest.json. Run: `.venv/bin/python -m bench.warm_start`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Frame, Page, Playwright, expect, sync_playwright

from bench.chromium import CHROMIUM, CHROMIUM_FLAGS, regular_window

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RUNS = 3
READY_TIMEOUT_MS = 90_000


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def demo() -> Iterator[str]:
    """`loadbay demo` on a free port; yields the host page's origin."""
    with tempfile.TemporaryDirectory(prefix="loadbay-warm-") as data_dir:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [
                sys.executable,
                "-m",
                "server.cli",
                "demo",
                "--port",
                str(port),
                "--data-dir",
                data_dir,
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        origin = f"https://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{origin}/healthz", verify=False).status_code == 200:  # noqa: S501
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("loadbay demo did not start")
                time.sleep(0.2)
            yield f"https://localhost:{port}"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def _ready_seconds(page: Page) -> float:
    page.wait_for_function(
        "() => window.loadbayTimes && window.loadbayTimes.opened !== undefined"
        " && window.loadbayTimes['engine-ready'] >= window.loadbayTimes.opened",
        timeout=READY_TIMEOUT_MS,
    )
    times: dict[str, float] = page.evaluate("() => window.loadbayTimes")
    return round((times["engine-ready"] - times["opened"]) / 1000, 3)


# The engine's snapshot record in the importer origin's IndexedDB (browser/src/snapshot.js):
# `store(mode, work)` and `sha256(bytes)` for the snippets below.
SNAPSHOT_STORE = """
const store = (mode, work) => new Promise((resolve, reject) => {
  const opening = indexedDB.open("loadbay-engine", 1);
  opening.onupgradeneeded = () => opening.result.createObjectStore("snapshots", {keyPath: "key"});
  opening.onsuccess = () => {
    const tx = opening.result.transaction("snapshots", mode);
    const request = work(tx.objectStore("snapshots"));
    tx.oncomplete = () => { opening.result.close(); resolve(request.result); };
    tx.onerror = () => reject(tx.error);
  };
  opening.onerror = () => reject(opening.error);
});
const sha256 = async (bytes) => Array.from(
  new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");
"""

# The kept snapshot's build id, length and whether its bytes match its SHA-256 (null: none).
KEPT_SNAPSHOT = f"""async () => {{ {SNAPSHOT_STORE}
  const kept = await store("readonly", (s) => s.get("engine"));
  if (!kept) return null;
  const bytes = await kept.bytes.arrayBuffer();
  const sound = (await sha256(bytes)) === kept.sha256;
  return {{build: kept.build, size: bytes.byteLength, sound}};
}}"""


def importer_frame(page: Page) -> Frame:
    (frame,) = [f for f in page.frames if "/importer" in f.url]
    return frame


def kept_snapshot(page: Page, build: str) -> dict[str, Any]:
    """The sound snapshot of `build` the page's engine kept, waiting for it to be written."""
    frame = importer_frame(page)
    for _ in range(600):
        kept: dict[str, Any] | None = frame.evaluate(KEPT_SNAPSHOT)
        if kept and kept["build"] == build and kept["sound"] and kept["size"] > 4096:
            return kept
        page.wait_for_timeout(200)
    raise AssertionError("the engine kept no snapshot")


def build_id(page: Page) -> str:
    """The asset build the page's importer runs."""
    config = importer_frame(page).evaluate(
        "() => JSON.parse(document.getElementById('loadbay-config').textContent)"
    )
    build: str = config["build"]
    return build


def _boot(page: Page) -> str:
    """How the page's engine started: "snapshot" or "fresh"."""
    how: str = importer_frame(page).evaluate("() => document.documentElement.dataset.engineBoot")
    return how


def _cold_and_reopen(p: Playwright, host: str) -> tuple[float, float]:
    """A fresh regular window; the page again once its engine kept the snapshot."""
    with tempfile.TemporaryDirectory(prefix="loadbay-profile-") as profile:
        context = regular_window(p, Path(profile))
        try:
            page = context.new_page()
            page.goto(f"{host}/demo/host")
            cold = _ready_seconds(page)
            kept_snapshot(page, build_id(page))
            page.goto(f"{host}/demo/host")
            again = _ready_seconds(page)
            if _boot(page) != "snapshot":
                raise RuntimeError("the reopened importer did not restore the engine's snapshot")
            return cold, again
        finally:
            context.close()


def _reopen_without_snapshot(browser: Browser, host: str) -> float:
    """A new page load where the importer may keep nothing (third-party storage blocked)."""
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{host}/demo/host")
        _ready_seconds(page)
        page.goto(f"{host}/demo/host")
        return _ready_seconds(page)
    finally:
        context.close()


# A modal importer on the demo host page (its `options`, without the inline container);
# resolves with the seconds from loadbay.open() to its engine-ready step.
_OPEN_MODAL = """() => new Promise((resolve) => {
  const o = {...options};
  delete o.container;
  const started = performance.now();
  o.onStep = (step) => {
    if (step === "engine-ready") resolve((performance.now() - started) / 1000);
  };
  window.benchModal = loadbay.open(o);
})"""


def _same_page(browser: Browser, host: str) -> float:
    """Open a modal importer, close it, open it again on the same page: the second open."""
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{host}/demo/host")
        _ready_seconds(page)  # the page's own inline importer
        page.evaluate(_OPEN_MODAL)
        page.evaluate("() => window.benchModal.close()")
        again: float = page.evaluate(_OPEN_MODAL)
        frame = page.frame_locator('[data-loadbay="modal"] iframe')
        expect(frame.locator("#engine-status")).to_have_text("Ready.")
        return round(again, 3)
    finally:
        context.close()


def _preboot(browser: Browser, host: str) -> tuple[float, float]:
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{host}/demo/host?open=click")
        page.wait_for_function(
            "() => window.loadbayTimes['engine-ready'] !== undefined", timeout=READY_TIMEOUT_MS
        )
        page.wait_for_timeout(500)  # the user reads the page, then clicks
        started = time.perf_counter()
        page.locator("#open-importer").click()
        frame = page.frame_locator('iframe[title="Data importer"]')
        expect(frame.locator("#engine-status")).to_have_text("Ready.", timeout=READY_TIMEOUT_MS)
        expect(page.locator('[data-loadbay="modal"]')).to_be_visible()
        visible = round(time.perf_counter() - started, 3)
        return _ready_seconds(page), visible
    finally:
        context.close()


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(values), 3),
        "min_s": min(values),
        "max_s": max(values),
        "runs": values,
    }


def run() -> dict[str, Any]:
    cold: list[float] = []
    reopen: list[float] = []
    unkept: list[float] = []
    same_page: list[float] = []
    preboot: list[float] = []
    visible: list[float] = []
    with demo() as host, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            _cold_and_reopen(p, host)  # the server's first answers (templates, caches)
            for _ in range(RUNS):
                first, again = _cold_and_reopen(p, host)
                cold.append(first)
                reopen.append(again)
                unkept.append(_reopen_without_snapshot(browser, host))
                same_page.append(_same_page(browser, host))
                ready, seen = _preboot(browser, host)
                preboot.append(ready)
                visible.append(seen)
            version = browser.version
        finally:
            browser.close()
    result = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "chromium": version,
        "what": "seconds from loadbay.open() to the importer's engine-ready step",
        "cold": _summary(cold),
        "second_open_same_page": _summary(same_page),
        "reopen_same_browser": _summary(reopen),
        "reopen_without_snapshot": _summary(unkept),
        "preboot_then_opened": _summary(preboot),
        "preboot_click_to_visible_ready": _summary(visible),
        "load_average": list(os.getloadavg()),
        "same_page_vs_cold": round(statistics.median(same_page) / statistics.median(cold), 5),
        "reopen_vs_cold": round(statistics.median(reopen) / statistics.median(cold), 3),
        "reopen_without_snapshot_vs_cold": round(
            statistics.median(unkept) / statistics.median(cold), 3
        ),
        "preboot_vs_cold": round(statistics.median(preboot) / statistics.median(cold), 5),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "warm-start-latest.json").write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8"
    )
    return result


def main() -> None:
    result = run()
    print(
        f"warm start: cold {result['cold']['median_s']} s, second open same page "
        f"{result['second_open_same_page']['median_s']} s ({result['same_page_vs_cold']}x), "
        f"new page same browser "
        f"{result['reopen_same_browser']['median_s']} s ({result['reopen_vs_cold']}x; "
        f"without the snapshot {result['reopen_without_snapshot']['median_s']} s, "
        f"{result['reopen_without_snapshot_vs_cold']}x), "
        f"preboot {result['preboot_then_opened']['median_s']} s ({result['preboot_vs_cold']}x), "
        f"click to visible Ready. {result['preboot_click_to_visible_ready']['median_s']} s; "
        "bench/results/warm-start-latest.json"
    )


if __name__ == "__main__":
    main()
