"""`make bench`: 1M rows x 20 columns delivered to PostgreSQL, to S3 (moto's server) as
Parquet and to a local webhook receiver in 1,000-row requests.

    python -m bench.destinations [--rows 1000000] [--batch-rows 65536]

Each destination runs in a worker process of its own, as an RQ worker would: it builds one
batch at a time (the same seeded rows for every destination), times only write() (and
finish() for S3's manifest), and reports its peak RSS. A plain `COPY` of the same rows, as
CSV that was encoded beforehand, is timed in the same run for comparison. The stores are
the real PostgreSQL server (LOADBAY_BENCH_PG_URL, a throwaway database), moto's S3 server
and a ThreadingHTTPServer, all on 127.0.0.1. Writes bench/results/destinations-latest.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("LOADBAY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_PG_ROWS_S = 300_000
KINDS = ("text", "int", "float", "bool", "date", "timestamp")
EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def batch(seq: int, rows: int, start: int) -> pa.Table:
    """Rows start..start+rows of the benchmark: 20 columns, six types, 5% nulls."""
    rng = np.random.default_rng(seq)
    columns: dict[str, pa.Array] = {}
    for index in range(20):
        kind = (
            KINDS[index % len(KINDS)] if index >= 6 else ("text", "text", "int", "float")[index % 4]
        )
        nulls = rng.random(rows) < 0.05
        if kind == "text":
            numbers = pa.array(rng.integers(0, 1_000_000, rows)).cast(pa.string())
            values = pc.binary_join_element_wise(f"value-{index}-", numbers, "")
        elif kind == "int":
            values = pa.array(rng.integers(-(10**9), 10**9, rows), pa.int64())
        elif kind == "float":
            values = pa.array(np.round(rng.normal(100, 50, rows), 2), pa.float64())
        elif kind == "bool":
            values = pa.array(rng.random(rows) < 0.5)
        elif kind == "date":
            values = pa.array(rng.integers(18000, 20000, rows).astype("int32"), pa.date32())
        else:
            micros = rng.integers(0, 5 * 365 * 86400, rows) * 1_000_000
            values = pa.array(micros, pa.timestamp("us", tz="UTC"))
        columns[f"c{index:02d}_{kind}"] = pc.if_else(pa.array(nulls), None, values)
    return pa.table(columns)


def _batches(total: int, size: int) -> list[tuple[int, int, int]]:
    return [
        (seq, min(size, total - start), start) for seq, start in enumerate(range(0, total, size))
    ]


def _worker(kind: str, config: dict[str, Any], total: int, size: int, out: Any) -> None:
    """One destination in its own process: write every batch, time the writes, report."""
    import destinations
    from destinations import DeliveryBatch, DestinationContext
    from destinations.base import FinishedImport
    from destinations.network import NetworkPolicy

    context = DestinationContext(policy=NetworkPolicy.from_strings(["127.0.0.0/8"]), timeout=60)
    destination = destinations.create(kind, config, context)
    spent = 0.0
    counts = []
    import_id = f"imp_bench_{secrets.token_hex(4)}"
    for seq, rows, start in _batches(total, size):
        table = batch(seq, rows, start)
        delivery = DeliveryBatch(
            import_id,
            seq,
            -(-total // size),
            "bench",
            table,
            destination_id="dst_bench",
            org_id="org",
        )
        began = time.perf_counter()
        destination.write(delivery)
        spent += time.perf_counter() - began
        counts.append(rows)
        del table, delivery
    began = time.perf_counter()
    destination.finish(FinishedImport(import_id, "bench", "dst_bench", "org", tuple(counts)))
    spent += time.perf_counter() - began
    out.put({"seconds": spent, "peak_rss_mib": round(_peak_rss_kib() / 1024, 1)})


def _peak_rss_kib() -> int:
    """This process's own high-water RSS (VmHWM). Not getrusage's ru_maxrss: Linux keeps
    that across exec, so a spawned worker would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _run(kind: str, config: dict[str, Any], total: int, size: int) -> dict[str, Any]:
    spawn = mp.get_context("spawn")
    queue = spawn.Queue()
    process = spawn.Process(target=_worker, args=(kind, config, total, size, queue))
    process.start()
    result: dict[str, Any] = queue.get(timeout=1800)
    process.join(60)
    result["rows_per_s"] = round(total / result["seconds"])
    result["seconds"] = round(result["seconds"], 3)
    return result


def _plain_copy(dsn: str, total: int, size: int) -> dict[str, Any]:
    """COPY of the same rows, encoded as CSV beforehand (untimed): the server's own speed."""
    encoded = []
    for seq, rows, start in _batches(total, size):
        sink = pa.BufferOutputStream()
        table = batch(seq, rows, start)
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
        encoded.append(sink.getvalue().to_pybytes())
    columns = ", ".join(f"{f.name} {_pg(f.type)}" for f in table.schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE plain_copy ({columns})")
        began = time.perf_counter()
        with conn.transaction(), conn.cursor().copy("COPY plain_copy FROM STDIN (FORMAT csv)") as c:
            for chunk in encoded:
                c.write(chunk)
        seconds = time.perf_counter() - began
    return {"seconds": round(seconds, 3), "rows_per_s": round(total / seconds)}


def _pg(arrow: pa.DataType) -> str:
    from destinations.pgcopy import pg_type

    return pg_type(arrow)


class _Sink(BaseHTTPRequestHandler):
    requests = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with _Sink.lock:
            _Sink.requests += 1
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--only", choices=("postgresql", "s3", "webhook"), action="append")
    args = parser.parse_args(argv)
    total, size = args.rows, args.batch_rows
    only = set(args.only or ("postgresql", "s3", "webhook"))
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rows": total,
        "columns": 20,
        "batch_rows": size,
    }
    if "postgresql" in only:
        name = f"loadbay_bench_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        dsn = psycopg.conninfo.make_conninfo(PG_ADMIN, dbname=name)
        try:
            config = {"dsn": dsn, "table": "bench", "create_table": True, "sslmode": "disable"}
            results["postgresql"] = _run("postgresql", config, total, size)
            results["postgresql"]["target_rows_per_s"] = TARGET_PG_ROWS_S
            results["postgresql_plain_copy"] = _plain_copy(dsn, total, size)
            with psycopg.connect(dsn) as conn:
                landed = conn.execute("SELECT count(*) FROM bench").fetchone()
            assert landed == (total,), landed
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(
            f"postgresql: {results['postgresql']}  plain COPY: {results['postgresql_plain_copy']}"
        )
    if "s3" in only:
        import boto3
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
            client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **keys)
            client.create_bucket(Bucket="bench")
            config = {
                "bucket": "bench",
                "endpoint_url": url,
                "access_key_id": "bench",
                "secret_access_key": "bench-secret",
            }
            results["s3_parquet"] = _run("s3", config, total, size)
            listed = client.list_objects_v2(Bucket="bench")["KeyCount"]
            assert listed == len(_batches(total, size)) + 1, listed  # the parts and the manifest
        finally:
            server.stop()
        print(f"s3 (parquet, moto): {results['s3_parquet']}")
    if "webhook" in only:
        from destinations.webhook import new_secret

        receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            config = {"url": url, "secret": new_secret(), "rows_per_request": 1000}
            results["webhook"] = _run("webhook", config, total, size)
            results["webhook"]["requests"] = _Sink.requests
        finally:
            receiver.shutdown()
        print(f"webhook (1,000-row requests): {results['webhook']}")
    pg = results.get("postgresql")
    if pg is not None:
        # A missed target is a result written with the others, not a failure: `make bench`
        # goes on to its next part.
        pg["target_met"] = pg["rows_per_s"] >= TARGET_PG_ROWS_S
        if not pg["target_met"]:
            print(f"postgresql: {pg['rows_per_s']} rows/s is below {TARGET_PG_ROWS_S}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "destinations-latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS / 'destinations-latest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
