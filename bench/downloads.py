"""What downloading an import's rows costs a real `loadbay serve`, over HTTPS on loopback.

    python -m bench.downloads [ROWS]     # writes bench/results/downloads-latest.json

Stores an import of ROWS rows (default 200,000; the demo's contacts template, batches of
50,000 rows received and re-validated as an upload would be), then downloads it once in
each format through `GET /api/v1/imports/{id}/rows` with a secret key, and reports for
each the seconds to the last byte, the bytes, rows a second and the server's peak RSS
growth above its level before the download (the stream is bounded by one batch, so this
should not grow with ROWS).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from bench.processes import PeakRss, free_port, running, tree_rss, wait_up

ROOT = Path(__file__).resolve().parent.parent
BATCH = 50_000
COUNTRIES = ["DE", "FR", "GB", "IT", "NL", "US"]


def _batch(first: int, n: int) -> bytes:
    rows = range(first, first + n)
    table = pa.table(
        {
            "full_name": pa.array([f"Person {i}" for i in rows], pa.string()),
            "email": pa.array([f"p{i}@example.com" for i in rows], pa.string()),
            "phone": pa.array([f"+49 30 {i:07d}" for i in rows], pa.string()),
            "country": pa.array([COUNTRIES[i % 6] for i in rows], pa.string()),
            "signup_date": pa.array([f"2024-{i % 12 + 1:02d}-15" for i in rows], pa.string()),
            "amount": pa.array([f"{i % 1000}.5" for i in rows], pa.string()),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    data = Path(tempfile.mkdtemp(prefix="loadbay-downloads-"))
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    env = {**os.environ, "LOADBAY_DATA_DIR": str(data), "LOADBAY_PUBLIC_URL": base}
    env.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    from server import db, imports, keys, orgs, uploads
    from server.runtime import Runtime
    from server.settings import Settings
    from server.tls import ensure_certificate

    settings = Settings.from_env(env)
    db.migrate(settings.database_url)
    rt = Runtime.from_settings(settings)
    org = orgs.create_organisation(rt, "Downloads", ["https://host.example"])
    schema = json.loads((ROOT / "server" / "demo" / "contacts.schema.json").read_text())
    template = orgs.create_template(rt, org, schema)
    created = imports.create_import(rt, org, template.id, "contacts.csv")
    start = time.perf_counter()
    seqs = 0
    for seq, first in enumerate(range(0, total, BATCH)):
        n = min(BATCH, total - first)
        uploads.receive_batch(
            rt, created.import_id, created.upload_token, seq, first + 2, _batch(first, n)
        )
        seqs += 1
    imports.submit(rt, created.import_id, created.upload_token, seqs, total)
    stored_s = time.perf_counter() - start
    secret = keys.create_key(rt, org.id, "bench").secret
    cert, _ = ensure_certificate(settings.data_dir / "tls")  # what `serve` uses: verified
    results: dict[str, Any] = {"rows": total, "batches": seqs, "stored_s": round(stored_s, 2)}
    with running({"serve": ["serve", "--port", str(port)]}, env) as procs:
        server = procs["serve"]
        client = httpx.Client(
            base_url=base,
            verify=str(cert),
            timeout=300,
            headers={"authorization": f"Bearer {secret}"},
        )
        wait_up(client)
        path = f"/api/v1/imports/{created.import_id}/rows"
        client.get(path, params={"format": "csv"}).raise_for_status()  # warm up
        for fmt in ("csv", "ndjson", "parquet", "xlsx"):
            before = tree_rss(server.pid)
            with PeakRss({"serve": server.pid}) as watch:
                start = time.perf_counter()
                size = 0
                with client.stream("GET", path, params={"format": fmt}) as answer:
                    answer.raise_for_status()
                    for chunk in answer.iter_bytes():
                        size += len(chunk)
                took = time.perf_counter() - start
            results[fmt] = {
                "seconds": round(took, 2),
                "mb": round(size / 1e6, 1),
                "rows_per_s": round(total / took),
                "rss_growth_mb": round(max(0, watch.peaks["serve"] - before) / 1e6, 1),
            }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    (out / "downloads-latest.json").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
