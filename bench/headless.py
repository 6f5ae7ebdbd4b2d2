"""The headless import's memory (issue #16): bounded by a part of the file, not the file.

    python -m bench.headless [--rows 100000 1000000] [--part-mb 16]

Generates valid CSVs of the `make bench` 20 columns (bench/data/headless-<rows>.csv, kept),
then imports each in a fresh process as `POST /api/v1/files` does (`server.headless.accept`
and `run`: read part by part, validated, uploaded through `receive_batch`, submitted), and
records that process's peak RSS and its RSS before the import. Bounded memory: the peak of
the largest file is about the peak of the smallest. Writes bench/results/headless-latest.json
(and a timestamped copy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.csv as pacsv

from bench.ingest import save
from bench.ingest_data import ingest_template, valid_batches
from pipeline.session import ROW_COLUMN

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
BOUNDED_RATIO = 1.25  # the largest file's peak over the smallest's: "about equal"


def csv_file(rows: int, into: Path = DATA) -> Path:
    """A CSV of `rows` valid rows (the ingest bench's), written batch by batch."""
    path = into / f"headless-{rows}.csv"
    if path.exists():
        return path
    into.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for batch in valid_batches(rows):
            table = (
                pa.ipc.open_stream(pa.py_buffer(batch.ipc)).read_all().drop_columns([ROW_COLUMN])
            )
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=batch.seq == 0))
    tmp.replace(path)
    return path


def _megabytes(value: float) -> float:
    return round(value / 2**20, 1)


def child(path: Path, part_bytes: int) -> dict[str, Any]:
    """One headless import in this process; its timings and memory."""
    from server import db, headless, orgs
    from server.runtime import Runtime
    from server.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="loadbay-headless-"))
    env = {"LOADBAY_DATA_DIR": str(data), "LOADBAY_HEADLESS_PART_BYTES": str(part_bytes)}
    settings = Settings.from_env(env)
    db.migrate(settings.database_url)
    rt = Runtime.from_settings(settings)
    org = orgs.create_organisation(rt, "Headless bench", ["https://host.example"])
    template = orgs.create_template(rt, org, ingest_template(False))
    upload = data / "upload.csv"
    os.link(path, upload)  # `run` deletes the file it imported
    options = headless.FileOptions(template_id=template.id)
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    created = headless.accept(rt, org, upload, path.name, options)
    headless.run(rt, created, upload, path.name, options)
    seconds = time.perf_counter() - start
    state = headless.file_import(rt, org, created.import_id)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {
        "file_bytes": path.stat().st_size,
        "status": state.state.status.value,
        "failure": state.failure.to_dict() if state.failure else None,
        "rows_stored": state.state.rows,
        "batches": state.state.batches,
        "seconds": round(seconds, 3),
        "rows_per_s": round(state.state.rows / seconds) if seconds else None,
        "rss_before_import_mb": _megabytes(before),
        "peak_rss_mb": _megabytes(peak),
        "peak_over_before_mb": _megabytes(peak - before),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--part-mb", type=float, default=16)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    part_bytes = int(args.part_mb * 2**20)
    if args.child:
        print(json.dumps(child(args.child, part_bytes)))
        return
    runs: dict[str, Any] = {}
    for rows in sorted(args.rows):
        path = csv_file(rows)
        print(f"bench.headless: {rows:,} rows ...", file=sys.stderr, flush=True)
        done = subprocess.run(  # noqa: S603 - this module, in a fresh process
            [sys.executable, "-m", "bench.headless", "--child", str(path),
             "--part-mb", str(args.part_mb)],
            cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
        runs[str(rows)] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(runs[str(rows)]), file=sys.stderr, flush=True)
    smallest, largest = runs[str(min(args.rows))], runs[str(max(args.rows))]
    ratio = largest["peak_rss_mb"] / smallest["peak_rss_mb"]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": os.getloadavg(),
        "part_bytes": part_bytes,
        "runs": runs,
        "peak_ratio_largest_to_smallest": round(ratio, 2),
        "bounded": ratio <= BOUNDED_RATIO,
        "bounded_if_ratio_at_most": BOUNDED_RATIO,
    }
    save("headless", report)


if __name__ == "__main__":
    main()
