"""What passthrough (retention 0) costs against stored imports, in process.

    python -m bench.passthrough     # writes bench/results/passthrough-latest.json

One batch of ROWS rows of the demo's contacts template is received (re-validated, typed,
sealed) and loaded back for delivery, RUNS times each way: into the local blob store and
into the embedded Redis (a real redis-server with AOF on, in a temporary data directory).
Also reported: what one batch in transit takes in Redis's memory and on disk. The
machines here are shared: read the ratio, not the absolute times.
"""

from __future__ import annotations

import copy
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.batches import encode_ipc
from pipeline.session import ImportSession
from pipeline.template import parse_template
from server import batches, db, imports, orgs, uploads
from server.runtime import Runtime
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SCHEMA: dict[str, Any] = json.loads(
    (ROOT / "server" / "demo" / "contacts.schema.json").read_text(encoding="utf-8")
)
ROWS = 50_000
RUNS = 5


def _body(work: Path) -> bytes:
    path = work / "contacts.csv"
    lines = ["Full name,Email,Phone,Country,Signup date,Amount"]
    lines += [
        f"Person {i},person{i}@example.com,+44 7700 9{i % 100000:05d},GB,2024-01-{1 + i % 28:02d},"
        f"{i % 1000}.5"
        for i in range(ROWS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    session = ImportSession.open(str(path), path.name, parse_template(SCHEMA))
    return encode_ipc(session.mapped_table(), None)


def _run(rt: Runtime, org: db.Organisation, template: db.Template, body: bytes) -> dict[str, float]:
    created = imports.create_import(rt, org, template.id, "contacts.csv")
    started = time.perf_counter()
    uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
    received = time.perf_counter() - started
    with rt.sessions() as session:
        imp = session.get(db.Import, created.import_id)
        assert imp is not None
        started = time.perf_counter()
        table = batches.load_batch(rt, session, imp, 0)
        loaded = time.perf_counter() - started
    assert table.num_rows == ROWS
    return {"receive_s": received, "load_s": loaded}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = Settings.from_env({"LOADBAY_DATA_DIR": str(work / "data")})
        db.migrate(settings.database_url)
        rt = Runtime.from_settings(settings)
        org = orgs.create_organisation(rt, "Bench", ["https://host.example"])
        passing = copy.deepcopy(SCHEMA) | {"x-loadbay": {"retentionDays": 0}}
        stored_tpl = orgs.create_template(rt, org, SCHEMA)
        passing_tpl = orgs.create_template(rt, org, passing)
        body = _body(work)
        redis = rt.queue.connection
        results: dict[str, Any] = {"rows": ROWS, "runs": RUNS, "body_bytes": len(body)}
        for name, template in (("stored", stored_tpl), ("passthrough", passing_tpl)):
            _run(rt, org, template, body)  # warm-up
            before = int(redis.info("memory")["used_memory"])
            runs = [_run(rt, org, template, body) for _ in range(RUNS)]
            grown = int(redis.info("memory")["used_memory"]) - before
            results[name] = {
                "receive_s_median": statistics.median(r["receive_s"] for r in runs),
                "load_s_median": statistics.median(r["load_s"] for r in runs),
                "redis_bytes_per_import": grown // RUNS,
            }
        blobs = [p.stat().st_size for p in settings.blob_dir.rglob("*.sealed")]
        results["stored"]["blob_bytes"] = statistics.median(blobs)
        results["receive_ratio"] = (
            results["passthrough"]["receive_s_median"] / results["stored"]["receive_s_median"]
        )
        redis.connection_pool.disconnect()
    out = ROOT / "bench" / "results" / "passthrough-latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
