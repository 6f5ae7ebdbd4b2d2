"""`make bench`: loadbay's in-browser engine against PapaParse, same file, same rules, same tab.

    python -m bench.run [--rows 1000000] [--xlsx-rows 200000] [--runs 3]
    python -m bench.run --only xlsx [--xlsx-big-rows 1000000]   # spreadsheets only

Serves the built assets (build/assets, from `make assets`) and bench/static/ on 127.0.0.1,
drives Debian's Chromium with Playwright, feeds each file through a real
<input type=file>, and writes bench/results/<timestamp>.json, latest.json and latest.png.
Each run gets a fresh browser context (so a fresh renderer process, whose high-water RSS is
that run's peak tab memory).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from bench.chromium import CHROMIUM, CHROMIUM_FLAGS
from bench.generate import BenchData, ensure_data
from pipeline.bridge import ON_DEMAND

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "bench" / "static"
PAPAPARSE = ROOT / "browser" / "node_modules" / "papaparse"
SHEETJS = ROOT / "browser" / "node_modules" / "xlsx"
BENCH_FLAGS = [*CHROMIUM_FLAGS, "--enable-precise-memory-info"]  # unquantised memory figures
RUN_TIMEOUT_S = 600
SAMPLE_EVERY_S = 0.05
TARGET_CSV_MS = 4000
TARGET_SPEEDUP = 2.0
TARGET_MEM_RATIO = 3.0
TARGET_XLSX_MS = 20000  # the big xlsx (1M rows)
TARGET_XLSX_SMALL_MS = 4000  # the 200k-row xlsx
TARGET_XLSX_SPEEDUP = 1.8  # against SheetJS, same file, same rules
TARGET_XLSX_WASM_BYTES = 2 * 1024**3
TARGET_EDIT_MS = 50  # one-cell edit on the 1M-row file, with every engine count
EDIT_FIELD = "age"  # an integer field of the bench template: the edits' cells
FLOOR_SETTLE_S = 2.0


# --- serving -----------------------------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    routes: dict[str, Path] = {}
    generated: dict[str, bytes] = {}
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".py": "text/plain; charset=utf-8",
        ".whl": "application/octet-stream",
        ".zip": "application/zip",
        ".html": "text/html; charset=utf-8",
    }

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, base in self.routes.items():
            if clean.startswith(prefix):
                target = (base / clean[len(prefix) :]).resolve()
                if target == base or base in target.parents:
                    return str(target)
        return str(ROOT / ".no-such-path")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        clean = self.path.split("?", 1)[0]
        if clean in self.generated:
            body = self.generated[clean]
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("cache-control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextmanager
def serve(assets: Path) -> Iterator[str]:
    """Bench pages, PapaParse (bench only; the product never serves it) and the built assets."""
    manifest = json.loads((assets / "manifest.json").read_text(encoding="utf-8"))
    config = {
        "pyodideModule": "/assets/pyodide/pyodide.mjs",
        "pyodide": "/assets/pyodide/",
        "lock": "/assets/wheels/pyodide-lock.json",
        # as the importer page: spreadsheet and phone packages are loaded when a file needs them
        "packages": [p for p in manifest["packages"] if p not in ON_DEMAND],
        "phases": "/bench/phases.py",
    }
    handler = type(
        "BenchHandler",
        (_Handler,),
        {
            "routes": {
                "/bench/phases.py": ROOT / "bench" / "phases.py",
                "/bench/": STATIC.resolve(),
                "/vendor/papaparse.min.js": (PAPAPARSE / "papaparse.min.js").resolve(),
                "/vendor/xlsx.full.min.js": (SHEETJS / "dist" / "xlsx.full.min.js").resolve(),
                "/assets/": assets.resolve(),
            },
            "generated": {"/bench/config.json": json.dumps(config).encode()},
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(ROOT)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- memory ------------------------------------------------------------------------------


def _renderers() -> list[psutil.Process]:
    """Chromium renderer processes started (through Playwright's driver) by this process."""
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "--type=renderer" in " ".join(proc.cmdline()):
                out.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _vm_hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class RssSampler:
    """Polls renderer RSS in a thread; the tab is the renderer that grew the most."""

    known: set[int] = field(default_factory=set)
    peak: dict[int, int] = field(default_factory=dict)
    first: dict[int, int] = field(default_factory=dict)
    peak_sum: int = 0
    trace: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            total = 0
            for proc in _renderers():
                try:
                    rss = int(proc.memory_info().rss)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                self.first.setdefault(proc.pid, rss)
                self.trace.setdefault(proc.pid, []).append((time.monotonic() - started, rss))
                if rss > self.peak.get(proc.pid, 0):
                    self.peak[proc.pid] = rss
            self.peak_sum = max(self.peak_sum, total)
            self._stop.wait(SAMPLE_EVERY_S)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.peak:
            return {"peak_mem_bytes": None, "rss_peak_sampled_bytes": None}
        pid = max(self.peak, key=lambda p: self.peak[p])
        hwm = _vm_hwm(pid) if pid not in self.known else None
        peak = max(self.peak[pid], hwm or 0)
        return {
            "peak_mem_bytes": peak,
            "rss_at_start_bytes": self.first[pid],
            "peak_mem_over_start_bytes": peak - self.first[pid],
            "rss_peak_sampled_bytes": self.peak[pid],
            "rss_vmhwm_bytes": hwm,
            "rss_peak_all_renderers_bytes": self.peak_sum,
            # the tab's RSS over the run, every 0.25 s: [seconds since the File was handed
            # over, MB], to see which step holds the peak
            "rss_trace": [
                [round(t, 2), round(rss / 1e6)]
                for t, rss in self.trace[pid][:: int(0.25 / SAMPLE_EVERY_S)]
            ],
        }


class HeapSampler:
    """JS heap of the page (Performance.getMetrics) and its workers (Runtime.getHeapUsage).

    Playwright's sync API is single-threaded, so this is polled from the harness's own loop.
    """

    def __init__(self, page: Page, browser: Browser) -> None:
        self.page_cdp = page.context.new_cdp_session(page)
        self.page_cdp.send("Performance.enable")
        self.browser_cdp = browser.new_browser_cdp_session()
        self.sessions: dict[str, str] = {}  # worker targetId -> sessionId
        self.answers: dict[str, int] = {}  # sessionId -> last usedSize
        self.page_peak = 0
        self.worker_peak: dict[str, int] = {}
        self.errors: list[str] = []
        self._next = 0
        self.browser_cdp.on("Target.receivedMessageFromTarget", self._received)

    def _received(self, event: dict[str, Any]) -> None:
        try:
            message = json.loads(event["message"])
            used = message.get("result", {}).get("usedSize")
        except (ValueError, AttributeError):
            return
        if used is not None:
            sid = event["sessionId"]
            self.answers[sid] = int(used)
            self.worker_peak[sid] = max(self.worker_peak.get(sid, 0), int(used))

    def sample(self) -> None:
        try:
            metrics = self.page_cdp.send("Performance.getMetrics")["metrics"]
            used = next((m["value"] for m in metrics if m["name"] == "JSHeapUsedSize"), 0)
            self.page_peak = max(self.page_peak, int(used))
            targets = self.browser_cdp.send("Target.getTargets")["targetInfos"]
            for target in targets:
                tid = target["targetId"]
                if target["type"] == "worker" and tid not in self.sessions:
                    attached = self.browser_cdp.send(
                        "Target.attachToTarget", {"targetId": tid, "flatten": False}
                    )
                    self.sessions[tid] = attached["sessionId"]
            for sid in self.sessions.values():
                self._next += 1
                message = {"id": self._next, "method": "Runtime.getHeapUsage"}
                self.browser_cdp.send(
                    "Target.sendMessageToTarget", {"sessionId": sid, "message": json.dumps(message)}
                )
        except Exception as exc:  # noqa: BLE001 - memory probes are best effort
            if len(self.errors) < 3:
                self.errors.append(str(exc).splitlines()[0])

    def result(self) -> dict[str, Any]:
        worker = sum(self.worker_peak.values()) if self.worker_peak else None
        out: dict[str, Any] = {
            "js_heap_page_peak_bytes": self.page_peak or None,
            "js_heap_worker_peak_bytes": worker,
        }
        if self.errors:
            out["heap_probe_errors"] = self.errors
        for sid in self.sessions.values():
            try:
                self.browser_cdp.send("Target.detachFromTarget", {"sessionId": sid})
            except Exception:  # noqa: BLE001,S110 - the worker may be gone already
                pass
        self.browser_cdp.detach()
        self.page_cdp.detach()
        return out


# --- one run -----------------------------------------------------------------------------


def _one_run(
    browser: Browser,
    base: str,
    file: Path,
    template_json: str,
    engine: str,
    workers: int = 1,
    last: bool = False,
    edit: str = "",
) -> dict[str, Any]:
    """A fresh context (fresh renderer), the file picked through the page's input, one run.

    loadbay: `workers` engines (browser/src/parallel.js), booted before the file is picked
    (as the importer boots them while the user picks one); `last`: the grid's last row too;
    `edit`: one-cell edits of this field timed after the review is built (`edit_ms`)."""
    before = {p.pid for p in _renderers()}
    context = browser.new_context()
    console: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console.append(str(e)))
        page.goto(f"{base}/bench/bench.html")
        page.wait_for_function("window.benchReady === true", timeout=30_000)
        boot: dict[str, Any] = {}
        if engine == "loadbay":
            boot = page.evaluate("(n) => window.bench.bootEngines(n)", workers)
        page.set_input_files("#file", str(file))
        sampler = RssSampler(known=before)
        heap = HeapSampler(page, browser)
        sampler.start()
        call = {"loadbay": "runLoadbay", "papaparse": "runPapa", "sheetjs": "runSheetjs"}[engine]
        page.evaluate(
            """([call, template, last, edit]) => {
                window.benchJob = { done: false };
                window.bench[call](template, last, edit).then(
                    (value) => Object.assign(window.benchJob, { done: true, value }),
                    (error) => Object.assign(window.benchJob, { done: true, error: String(error) }),
                );
            }""",
            [call, template_json, last, edit],
        )
        deadline = time.monotonic() + RUN_TIMEOUT_S
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            heap.sample()
            job = page.evaluate("() => window.benchJob")
            if job.get("done"):
                break
            time.sleep(0.1)
        heap.sample()
        memory = sampler.stop()
        memory.update(heap.result())
        if not job.get("done"):
            raise RuntimeError(f"{engine} run on {file.name} did not finish in {RUN_TIMEOUT_S}s")
        if "error" in job:
            raise RuntimeError(f"{engine} run on {file.name} failed: {job['error']}\n{console}")
        value: dict[str, Any] = job["value"]
        if engine == "loadbay":
            value["boot_ms"] = boot.get("boot_ms")
        value.update(memory)
        return value
    finally:
        context.close()


# --- the floor ---------------------------------------------------------------------------


def _tab_rss(before: set[int]) -> int:
    """RSS of the tab: the largest renderer started since `before` was taken."""
    sizes = []
    for proc in _renderers():
        if proc.pid not in before:
            try:
                sizes.append(int(proc.memory_info().rss))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return max(sizes, default=0)


def _settled_rss(before: set[int]) -> int:
    time.sleep(FLOOR_SETTLE_S)
    return _tab_rss(before)


def measure_floor(browser: Browser, base: str, file: Path, most: int = 2) -> dict[str, Any]:
    """What a tab costs before loadbay keeps a single cell, each figure in a fresh tab:
    the bench page alone, with 1..`most` engines booted and idle (the importer boots one
    per core, browser/src/parallel.js), and the peak while one engine only reads the file
    through WORKERFS (the readers' own read path, nothing parsed or kept)."""
    out: dict[str, Any] = {}

    def bench_page(context: BrowserContext) -> Page:
        page = context.new_page()
        page.goto(f"{base}/bench/bench.html")
        page.wait_for_function("window.benchReady === true", timeout=30_000)
        return page

    for engines in range(most + 1):
        before = {p.pid for p in _renderers()}
        context = browser.new_context()
        try:
            page = bench_page(context)
            if engines:
                page.evaluate("(n) => window.bench.bootEngines(n)", engines)
            out[f"idle_{engines}_engines_bytes"] = _settled_rss(before)
        finally:
            context.close()
    before = {p.pid for p in _renderers()}
    context = browser.new_context()
    try:
        page = bench_page(context)
        page.evaluate("() => window.bench.bootReader()")
        page.set_input_files("#file", str(file))
        sampler = RssSampler(known=before)
        sampler.start()
        read = page.evaluate("() => window.bench.readLoadbay()")
        memory = sampler.stop()
        out["read_only_ms"] = read["read_ms"]
        out["read_only_peak_bytes"] = memory["peak_mem_bytes"]
    finally:
        context.close()
    size = file.stat().st_size
    idle = out["idle_1_engines_bytes"]
    out["ratios_to_file"] = {
        **{f"idle_{n}_engines": out[f"idle_{n}_engines_bytes"] / size for n in range(1, most + 1)},
        "read_only_peak": out["read_only_peak_bytes"] / size,
    }
    if most >= 2:
        out["second_engine_bytes"] = out["idle_2_engines_bytes"] - idle
    out["read_only_over_idle_bytes"] = out["read_only_peak_bytes"] - idle
    return out


# --- summary -----------------------------------------------------------------------------


def _stats(values: list[float | int | None]) -> dict[str, Any] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {
        "median": statistics.median(present),
        "min": min(present),
        "max": max(present),
        "values": present,
    }


def _summarise(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    """Medians at the top (the shape latest.json promises), min/max/values under `stats`."""
    out: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for key in keys:
        s = _stats([r.get(key) for r in runs])
        stats[key] = s
        out[key] = s["median"] if s else None
    for key in (
        "rows",
        "cols",
        "mapped",
        "errors",
        "invalid_cells",
        "errors_by_code",
        "reader",
        "workers",
        "parts",
    ):
        if key in runs[0]:
            out[key] = runs[0][key]
    counts = {(r.get("errors"), r.get("invalid_cells"), r.get("rows")) for r in runs}
    out["consistent_across_runs"] = len(counts) == 1
    out["stats"] = stats
    out["runs"] = runs
    return out


LOADBAY_KEYS = (
    "boot_ms",
    "open_ms",
    "copy_ms",
    "parse_ms",
    "match_ms",
    "validate_ms",
    "total_ms",
    "peak_mem_bytes",
    "rss_at_start_bytes",
    "peak_mem_over_start_bytes",
    "rss_peak_sampled_bytes",
    "rss_vmhwm_bytes",
    "wasm_bytes",
    "js_heap_page_peak_bytes",
    "js_heap_worker_peak_bytes",
    "edit_ms",
    "edit_shown_ms",
)
PAPA_KEYS = (
    "total_ms",
    "peak_mem_bytes",
    "rss_at_start_bytes",
    "peak_mem_over_start_bytes",
    "rss_peak_sampled_bytes",
    "rss_vmhwm_bytes",
    "js_heap_page_peak_bytes",
    "js_heap_worker_peak_bytes",
)


def _machine(browser_version: str, assets: Path) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    manifest = json.loads((assets / "manifest.json").read_text(encoding="utf-8"))
    papa = json.loads((PAPAPARSE / "package.json").read_text(encoding="utf-8"))
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "mem_total_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "chromium": browser_version,
        "chromium_flags": BENCH_FLAGS,
        "pyodide": manifest.get("pyodide_version"),
        "assets_build_id": manifest.get("build_id"),
        "browser_packages": manifest.get("packages"),
        "papaparse": papa.get("version"),
    }


def run_bench(
    *,
    rows: int,
    xlsx_rows: int,
    runs: int,
    data_dir: Path,
    results_dir: Path,
    assets: Path,
    chart: bool = True,
    progress: Callable[[str], None] = lambda _: None,
    workers: tuple[int, ...] = (1, 2),
    big_rows: int = 0,
) -> dict[str, Any]:
    """`workers`: the loadbay runs, each with that many engines, interleaved with PapaParse's;
    the largest is the headline. `big_rows`: a CSV that large once more (`--big`)."""
    if not (assets / "manifest.json").exists():
        raise SystemExit(f"{assets}/manifest.json is missing: run `make assets` first")
    if not (PAPAPARSE / "papaparse.min.js").exists():
        raise SystemExit("PapaParse is missing: run `make assets` (npm ci in browser/) first")
    progress(f"data: {rows} rows CSV, {xlsx_rows} rows xlsx in {data_dir} (cached)")
    wheel = _pipeline_wheel(assets)
    data: BenchData = ensure_data(data_dir, rows, xlsx_rows, engine=wheel)
    template_json = data.template.read_text(encoding="utf-8")
    notes: list[str] = []
    stale = _stale_sources(wheel)
    if stale:
        notes.append(
            "build/assets runs an older pipeline than the working tree (differs: "
            + ", ".join(stale)
            + "); `make bench` rebuilds the assets first"
        )
    with serve(assets) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BENCH_FLAGS)
        try:
            by_workers: dict[int, list[dict[str, Any]]] = {n: [] for n in workers}
            papa_runs: list[dict[str, Any]] = []
            for i in range(runs):  # interleaved, so drift hits every engine alike
                for n, name in [*((n, f"loadbay x{n}") for n in workers), (0, "papaparse")]:
                    engine = "loadbay" if n else "papaparse"
                    result = _one_run(
                        browser, base, data.csv, template_json, engine, n or 1, edit=EDIT_FIELD
                    )
                    (by_workers[n] if n else papa_runs).append(result)
                    progress(
                        f"csv run {i + 1}/{runs} {name}: {result['total_ms']:.0f} ms, "
                        f"peak {_mb(result.get('peak_mem_bytes'))}, "
                        f"{result['invalid_cells']} invalid cells, load {os.getloadavg()[0]:.1f}"
                    )
            xlsx: dict[str, Any] = {"skipped": True, "note": "no xlsx file (--xlsx-rows 0)"}
            if data.xlsx is not None:
                xlsx = xlsx_case(
                    browser, base, data.xlsx, data.meta["xlsx"], template_json, runs, progress
                )
            top = max(workers)
            progress(f"floor: idle tabs with 0 to {top} engines; the CSV only read")
            floor = measure_floor(browser, base, data.csv, max(top, 2))
            big: dict[str, Any] = {"skipped": True, "note": "run with --big"}
            if big_rows:
                big = big_case(browser, base, data_dir, big_rows, top, wheel, progress)
            machine = _machine(browser.version, assets)
        finally:
            browser.close()

    summaries = {n: _summarise(r, LOADBAY_KEYS) for n, r in by_workers.items()}
    loadbay = summaries[top]
    loadbay["workers"] = top
    loadbay["idle_engines_floor_bytes"] = floor[f"idle_{top}_engines_bytes"]
    papa = _summarise(papa_runs, PAPA_KEYS)
    csv_meta = {**data.meta["csv"], "path": str(data.csv)}
    files: dict[str, Any] = {"csv": csv_meta}
    if data.xlsx is not None:
        files["xlsx"] = {**data.meta["xlsx"], "path": str(data.xlsx)}
    expected = csv_meta["expected_invalid_cells"]
    found = {n: s["invalid_cells"] for n, s in summaries.items()}
    agree = set(found.values()) == {papa["invalid_cells"]} == {expected}
    if not agree:
        notes.append(
            f"invalid cells disagree: loadbay by workers {found}, "
            f"papaparse {papa['invalid_cells']}, generator {expected}"
        )
    ratio_speed = _ratio(papa["total_ms"], loadbay["total_ms"])
    ratio_mem = _ratio(loadbay["peak_mem_bytes"], csv_meta["bytes"])
    over_idle = (
        None
        if loadbay["peak_mem_bytes"] is None
        else (loadbay["peak_mem_bytes"] - loadbay["idle_engines_floor_bytes"]) / csv_meta["bytes"]
    )
    loadbay["ratio_mem_over_idle"] = over_idle
    result = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "runs": runs,
        "files": files,
        "template": {"path": str(data.template), "rules": data.meta["rules"]},
        "loadbay": loadbay,
        "loadbay_by_workers": {str(n): s for n, s in summaries.items()},
        "papaparse": papa,
        "ratio_speed": ratio_speed,
        "ratio_speed_by_workers": {
            str(n): _ratio(papa["total_ms"], s["total_ms"]) for n, s in summaries.items()
        },
        "load_average": os.getloadavg(),
        "big_csv": big,
        "ratio_mem": ratio_mem,
        "ratio_mem_papaparse": _ratio(papa["peak_mem_bytes"], csv_meta["bytes"]),
        "xlsx": xlsx,
        "floor": floor,
        "checks": {
            "expected_invalid_cells": expected,
            "invalid_cells_agree": agree,
            "edits_checked": all(
                r["edits"]["checked"] for done in by_workers.values() for r in done
            ),
            "xlsx_invalid_cells_as_expected": (
                xlsx.get("invalid_cells") == xlsx.get("expected_invalid_cells")
                if not xlsx.get("skipped")
                else None
            ),
        },
        "targets": {
            "csv_parse_validate_le_4s": loadbay["total_ms"] <= TARGET_CSV_MS,
            "faster_2x": ratio_speed is not None and ratio_speed >= TARGET_SPEEDUP,
            "mem_over_idle_le_2_5x": over_idle is not None and over_idle <= 2.5,
            "edit_lt_50ms": all(
                s["edit_ms"] is not None and s["edit_ms"] < TARGET_EDIT_MS
                for s in summaries.values()
            ),
            "mem_le_3x": ratio_mem is not None and ratio_mem <= TARGET_MEM_RATIO,
            "xlsx_le_20s": bool(not xlsx.get("skipped") and xlsx["total_ms"] <= TARGET_XLSX_MS),
        },
        "definitions": {
            "total_ms": "loadbay: the importer's 'open' (mount, packages, parse, match; in "
            "parts across `workers` engines for a large CSV) + 'set_mapping' (validate, the "
            "review built), through browser/src/parallel.js and browser/worker.mjs (boot "
            "excluded: it runs while the user picks a file); papaparse: parse start to "
            "complete, rules checked in the chunk callback",
            "ratio_mem_over_idle": "(loadbay.peak_mem_bytes - the tab with `workers` idle "
            "engines) / CSV bytes",
            "peak_mem_bytes": "peak RSS of the tab's renderer process (page + its worker, "
            "Pyodide boot included): max of 50 ms samples and /proc VmHWM",
            "rss_at_start_bytes": "the same process's RSS when the File was handed over "
            "(loadbay: Pyodide booted and idle)",
            "ratio_speed": "papaparse.total_ms / loadbay.total_ms (medians)",
            "ratio_mem": "loadbay.peak_mem_bytes / CSV bytes",
            "edit_ms": "loadbay: one cell of the loaded file edited through the grid's path "
            "(the 'edit' call answering with the re-checked summary), median of the edits "
            "of a run (spread over the file: every engine's part), then median over runs; "
            "edit_shown_ms: until the grid's window holding the cell is back too",
            "floor": "RSS of a fresh tab: the bench page alone (0 engines), with one or two "
            "Pyodide engines booted and idle, and the peak while one engine reads the CSV "
            "through WORKERFS without parsing it; ratios are to the CSV's bytes",
        },
        "notes": notes,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2) + "\n"
    (results_dir / f"{stamp}.json").write_text(text, encoding="utf-8")
    (results_dir / "latest.json").write_text(text, encoding="utf-8")
    if chart:
        from bench.chart import draw

        draw(result, results_dir / "latest.png")
        result["chart"] = str(results_dir / "latest.png")
    return result


# --- the big CSV ---------------------------------------------------------------------------


def big_case(
    browser: Browser,
    base: str,
    data_dir: Path,
    rows: int,
    workers: int,
    wheel: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """One run on a CSV of `rows` rows (5M: about 1 GB; generated once, cached): its time,
    peak RSS, whether every error was found and the grid's last row can be fetched."""
    progress(f"big: {rows} rows CSV in {data_dir} (cached)")
    data = ensure_data(data_dir, rows, 0, engine=wheel)
    template_json = data.template.read_text(encoding="utf-8")
    result = _one_run(browser, base, data.csv, template_json, "loadbay", workers, last=True)
    expected = data.meta["csv"]["expected_invalid_cells"]
    progress(f"big: {result['total_ms']:.0f} ms, peak {_mb(result.get('peak_mem_bytes'))}")
    return {
        "file": {**data.meta["csv"], "path": str(data.csv)},
        "workers": workers,
        "total_ms": result["total_ms"],
        "open_ms": result["open_ms"],
        "validate_ms": result["validate_ms"],
        "peak_mem_bytes": result.get("peak_mem_bytes"),
        "wasm_bytes": result.get("wasm_bytes"),
        "rows": result["rows"],
        "every_error_found": result["invalid_cells"] == expected,
        "invalid_cells": result["invalid_cells"],
        "expected_invalid_cells": expected,
        "last_row_reachable": result.get("last_row") == result["first_data_row"] + rows - 1,
        "last_row": result.get("last_row"),
        "run": result,
    }


# --- spreadsheets ------------------------------------------------------------------------


def xlsx_case(
    browser: Browser,
    base: str,
    file: Path,
    meta: dict[str, Any],
    template_json: str,
    runs: int,
    progress: Callable[[str], None],
    baseline: bool = True,
) -> dict[str, Any]:
    """loadbay and SheetJS on one xlsx, interleaved; loadbay's summary at the top level.

    Records time, the wasm heap (the engine's memory never shrinks, so its size after the
    run is the run's peak) and whether every row of the sheet was read.
    """
    loadbay_runs: list[dict[str, Any]] = []
    sheetjs_runs: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    if not baseline:
        skipped["sheetjs"] = "not run on this case (--xlsx-big-sheetjs runs it)"
    for i in range(runs):
        for engine, sink in (("loadbay", loadbay_runs), ("sheetjs", sheetjs_runs)):
            if engine in skipped:
                continue
            try:
                result = _one_run(browser, base, file, template_json, engine)
            except RuntimeError as exc:
                skipped[engine] = f"{engine} run failed, skipped: {str(exc).splitlines()[0]}"
                progress(skipped[engine])
                continue
            sink.append(result)
            progress(
                f"xlsx {meta['rows']} rows, run {i + 1}/{runs} {engine}: "
                f"{result['total_ms']:.0f} ms, peak {_mb(result.get('peak_mem_bytes'))}, "
                f"wasm {_mb(result.get('wasm_bytes'))}, {result['rows']} rows, "
                f"{result['invalid_cells']} invalid cells"
            )
    if not loadbay_runs:
        return {"skipped": True, "note": skipped.get("loadbay", "no run")}
    out = _summarise(loadbay_runs, LOADBAY_KEYS)
    out["file"] = {**meta, "path": str(file)}
    out["ratio_mem"] = _ratio(out["peak_mem_bytes"], meta["bytes"])
    out["expected_invalid_cells"] = meta["expected_invalid_cells"]
    out["every_row_read"] = all(r["rows"] == meta["rows"] for r in loadbay_runs)
    out["wasm_peak_bytes"] = max((r.get("wasm_bytes") or 0) for r in loadbay_runs) or None
    out["notes"] = loadbay_runs[0].get("notes", [])
    if sheetjs_runs:
        sheetjs = _summarise(sheetjs_runs, ("parse_ms", *PAPA_KEYS))
        out["sheetjs"] = sheetjs
        out["ratio_speed_sheetjs"] = _ratio(sheetjs["total_ms"], out["total_ms"])
    else:
        out["sheetjs"] = {"skipped": True, "note": skipped.get("sheetjs", "no run")}
        out["ratio_speed_sheetjs"] = None
    return out


def run_xlsx_bench(
    *,
    xlsx_rows: int,
    big_rows: int,
    big_sheetjs: bool,
    runs: int,
    data_dir: Path,
    results_dir: Path,
    assets: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """`--only xlsx`: the spreadsheet cases alone (no CSV, no floor); xlsx-latest.json."""
    from bench.generate import ensure_xlsx, template_for, xlsx_meta

    if not (assets / "manifest.json").exists():
        raise SystemExit(f"{assets}/manifest.json is missing: run `make assets` first")
    wheel = _pipeline_wheel(assets)
    template = template_for(wheel)
    template_json = json.dumps(template)
    sizes = [n for n in (xlsx_rows, big_rows) if n]
    progress(f"data: xlsx of {sizes} rows in {data_dir} (cached)")
    files = {n: ensure_xlsx(data_dir, n) for n in sizes}
    notes: list[str] = []
    stale = _stale_sources(wheel)
    if stale:
        notes.append(
            "build/assets runs an older pipeline than the working tree: " + ", ".join(stale)
        )
    cases: dict[str, Any] = {}
    with serve(assets) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BENCH_FLAGS)
        try:
            for n, path in files.items():
                meta = xlsx_meta(data_dir, n, template)
                baseline = n != big_rows or big_sheetjs
                cases[str(n)] = xlsx_case(
                    browser, base, path, meta, template_json, runs, progress, baseline
                )
            machine = _machine(browser.version, assets)
        finally:
            browser.close()
    small = cases.get(str(xlsx_rows), {})
    big = cases.get(str(big_rows), {})
    targets: dict[str, bool] = {}
    if small and not small.get("skipped"):
        targets["xlsx_small_le_4s"] = small["total_ms"] <= TARGET_XLSX_SMALL_MS
        ratio = small.get("ratio_speed_sheetjs")
        targets["xlsx_small_1_8x_sheetjs"] = ratio is not None and ratio >= TARGET_XLSX_SPEEDUP
    if big and not big.get("skipped"):
        targets["xlsx_big_le_20s"] = big["total_ms"] <= TARGET_XLSX_MS
        targets["xlsx_big_wasm_le_2gb"] = (big["wasm_peak_bytes"] or 0) <= TARGET_XLSX_WASM_BYTES
        targets["xlsx_big_every_row"] = big["every_row_read"]
    result = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "runs": runs,
        "cases": cases,
        "targets": targets,
        "notes": notes,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2) + "\n"
    (results_dir / f"xlsx-{stamp}.json").write_text(text, encoding="utf-8")
    (results_dir / "xlsx-latest.json").write_text(text, encoding="utf-8")
    return result


def _xlsx_headline(result: dict[str, Any]) -> dict[str, Any]:
    def rng(summary: dict[str, Any], key: str) -> str:
        s = summary.get("stats", {}).get(key)
        return "n/a" if not s else f"{s['median']:.0f} ({s['min']:.0f}-{s['max']:.0f})"

    out: dict[str, Any] = {}
    for rows, case in result["cases"].items():
        if case.get("skipped"):
            out[rows] = case
            continue
        out[rows] = {
            "loadbay_ms": {
                k: rng(case, k) for k in ("copy_ms", "parse_ms", "validate_ms", "total_ms")
            },
            "sheetjs_ms": rng(case["sheetjs"], "total_ms") if "stats" in case["sheetjs"] else "n/a",
            "ratio_speed_sheetjs": case["ratio_speed_sheetjs"],
            "wasm_peak_mb": _mb(case["wasm_peak_bytes"]),
            "peak_mem_mb": _mb(case["peak_mem_bytes"]),
            "rows": case["rows"],
            "every_row_read": case["every_row_read"],
            "invalid_cells": [case["invalid_cells"], case["expected_invalid_cells"]],
        }
    return {"cases": out, "targets": result["targets"], "notes": result["notes"]}


def _pipeline_wheel(assets: Path) -> Path:
    wheels = sorted((assets / "wheels").glob("loadbay_pipeline-*.whl"))
    if not wheels:
        raise SystemExit(f"no pipeline wheel in {assets}/wheels: run `make assets`")
    return wheels[-1]


def _stale_sources(wheel: Path) -> list[str]:
    """pipeline/*.py files whose text differs from (or is missing in) the built wheel."""
    with zipfile.ZipFile(wheel) as zf:
        built = {n: zf.read(n) for n in zf.namelist() if n.startswith("pipeline/")}
    differ = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if built.get(name) != path.read_bytes():
            differ.append(name)
    return differ


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _mb(value: float | None) -> str:
    return "?" if value is None else f"{value / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--assets", type=Path, default=ROOT / "build" / "assets")
    parser.add_argument(
        "--only",
        choices=("all", "csv", "xlsx"),
        default="all",
        help="csv: the CSV cases only; xlsx: the spreadsheet cases only",
    )
    parser.add_argument(
        "--workers",
        default="1,2",
        help="engines for loadbay's CSV runs, comma-separated, each run in turn (default 1,2)",
    )
    parser.add_argument(
        "--big", action="store_true", help="a 5M-row CSV case too (generated once, cached)"
    )
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument(
        "--xlsx-big-rows", type=int, default=0, help="with --only xlsx: a big case too (1000000)"
    )
    parser.add_argument(
        "--xlsx-big-sheetjs", action="store_true", help="run SheetJS on the big case too"
    )
    args = parser.parse_args()
    if args.only == "xlsx":
        xresult = run_xlsx_bench(
            xlsx_rows=args.xlsx_rows,
            big_rows=args.xlsx_big_rows,
            big_sheetjs=args.xlsx_big_sheetjs,
            runs=args.runs,
            data_dir=args.data,
            results_dir=args.results,
            assets=args.assets,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
        )
        print(json.dumps(_xlsx_headline(xresult), indent=2))
        return
    result = run_bench(
        rows=args.rows,
        xlsx_rows=0 if args.only == "csv" else args.xlsx_rows,
        workers=tuple(sorted({int(n) for n in args.workers.split(",")})),
        big_rows=args.big_rows if args.big else 0,
        runs=args.runs,
        data_dir=args.data,
        results_dir=args.results,
        assets=args.assets,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(json.dumps(_headline(result), indent=2))


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    lb, pp, xl = result["loadbay"], result["papaparse"], result["xlsx"]

    def rng(summary: dict[str, Any], key: str) -> str:
        s = summary.get("stats", {}).get(key)
        return "n/a" if not s else f"{s['median']:.0f} ({s['min']:.0f}-{s['max']:.0f})"

    return {
        "csv": {k: result["files"]["csv"][k] for k in ("bytes", "rows", "cols")},
        "loadbay_ms": {k: rng(lb, k) for k in ("open_ms", "validate_ms", "total_ms")},
        "papaparse_ms": rng(pp, "total_ms"),
        "loadbay_peak_mb": _mb(lb["peak_mem_bytes"]),
        "papaparse_peak_mb": _mb(pp["peak_mem_bytes"]),
        "invalid_cells": [lb["invalid_cells"], pp["invalid_cells"]],
        "ratio_speed": result["ratio_speed"],
        "ratio_speed_by_workers": result["ratio_speed_by_workers"],
        "loadbay_ms_by_workers": {
            n: rng(s, "total_ms") for n, s in result["loadbay_by_workers"].items()
        },
        "workers": lb["workers"],
        "edit_ms_by_workers": {
            n: rng(s, "edit_ms") for n, s in result["loadbay_by_workers"].items()
        },
        "idle_engines_floor_mb": _mb(lb["idle_engines_floor_bytes"]),
        "ratio_mem": result["ratio_mem"],
        "ratio_mem_over_idle": lb["ratio_mem_over_idle"],
        "load_average": result["load_average"],
        "big_csv": {k: v for k, v in result["big_csv"].items() if k not in ("run", "file")},
        "xlsx_ms": "skipped" if xl.get("skipped") else rng(xl, "total_ms"),
        "floor_ratios": result["floor"]["ratios_to_file"],
        "targets": result["targets"],
        "notes": result["notes"],
        "chart": result.get("chart"),
    }


if __name__ == "__main__":
    main()
