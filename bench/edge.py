"""What hostile requests cost a real `loadbay serve` (issue #15), over HTTPS on loopback.

    python -m bench.edge            # writes bench/results/edge-latest.json

Starts `loadbay serve` in a temporary data directory with its own embedded Redis, creates
an organisation and an import, then sends what the security review sent: a large body with
no token, a Content-Length of 10^14 with 3 bytes, a zstd Arrow bomb, gzip bodies while
/healthz is timed, and a submit claiming ten million batches. It reports the time to each
answer and the server's RSS growth; /healthz latency is given against its idle baseline
measured in the same run (these machines are shared: ratios, not absolute limits).
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from bench.processes import free_port, running, tree_rss, wait_up

ROOT = Path(__file__).resolve().parent.parent


def _healthz_ms(client: httpx.Client, n: int = 20) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        client.get("/healthz")
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _zero_chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    chunk = b"\0" * size
    for _ in range(total // size):
        yield chunk


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="loadbay-edge-"))
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    env = {**os.environ, "LOADBAY_DATA_DIR": str(data), "LOADBAY_PUBLIC_URL": base}
    env.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    from server import db, imports, orgs
    from server.http.digest import content_digest_header
    from server.runtime import Runtime
    from server.settings import Settings

    settings = Settings.from_env(env)
    db.migrate(settings.database_url)
    rt = Runtime.from_settings(settings)
    org = orgs.create_organisation(rt, "Edge", ["https://host.example"])
    schema = json.loads((ROOT / "server" / "demo" / "contacts.schema.json").read_text())
    template = orgs.create_template(rt, org, schema)
    created = imports.create_import(rt, org, template.id, "c.csv")
    results: dict[str, Any] = {}
    with running({"serve": ["serve", "--port", str(port)]}, env) as procs:
        server = procs["serve"]
        client = httpx.Client(base_url=base, verify=False, timeout=60)  # noqa: S501 - self-signed
        wait_up(client)
        path = f"/api/v1/imports/{created.import_id}/batches/0"
        auth = {"authorization": f"Bearer {created.upload_token}", "origin": base}
        results["healthz_idle_ms"] = _healthz_ms(client)

        rss = tree_rss(server.pid)
        start = time.perf_counter()
        try:
            answer = client.put(
                path, content=_zero_chunks(1 << 30), headers={"origin": base}
            ).status_code
        except httpx.TransportError:  # the server answered and closed before we finished
            answer = "closed"
        results["no_token_1gib"] = {
            "answer": answer,
            "seconds": round(time.perf_counter() - start, 3),
            "rss_growth_mb": round((tree_rss(server.pid) - rss) / 1e6, 1),
        }

        with socket.create_connection(("127.0.0.1", port)) as raw:
            import ssl

            tls = ssl.create_default_context()
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
            with tls.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                start = time.perf_counter()
                s.sendall(
                    (
                        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                        f"Authorization: Bearer {created.upload_token}\r\nOrigin: {base}\r\n"
                        f"Content-Length: {10**14}\r\n\r\nabc"
                    ).encode()
                )
                s.settimeout(60)
                first = s.recv(64).split(b"\r\n", 1)[0].decode()
                results["content_length_1e14"] = {
                    "answer": first,
                    "seconds": round(time.perf_counter() - start, 3),
                }

        cells = pa.array(["a" * 1_000_000] * 1000)
        sink = pa.BufferOutputStream()
        table = pa.table({"full_name": cells, "email": cells})
        options = pa.ipc.IpcWriteOptions(compression="zstd")
        with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
            writer.write_table(table)
        bomb = sink.getvalue().to_pybytes()
        del cells, table
        rss = tree_rss(server.pid)
        start = time.perf_counter()
        # a correct Content-Digest, so the bomb reaches the decoder it is aimed at
        answer = client.put(
            path, content=bomb, headers={**auth, "content-digest": content_digest_header(bomb)}
        )
        results["zstd_bomb"] = {
            "request_bytes": len(bomb),
            "declared_mb": 2000,
            "answer": answer.status_code,
            "seconds": round(time.perf_counter() - start, 3),
            "rss_growth_mb": round((tree_rss(server.pid) - rss) / 1e6, 1),
        }

        gz = gzip.compress(b"\0" * (60 << 20), 9)
        gz_headers = {
            **auth,
            "content-encoding": "gzip",
            "content-digest": content_digest_header(gz),
        }
        done = threading.Event()

        def flood() -> None:
            with httpx.Client(base_url=base, verify=False, timeout=60) as c:  # noqa: S501
                while not done.is_set():
                    c.put(path, content=gz, headers=gz_headers)

        threads = [threading.Thread(target=flood) for _ in range(10)]
        for t in threads:
            t.start()
        time.sleep(1)
        busy = _healthz_ms(client)
        done.set()
        for t in threads:
            t.join()
        results["healthz_during_10_gzip_uploads_ms"] = round(busy, 1)
        results["healthz_ratio_busy_to_idle"] = round(busy / results["healthz_idle_ms"], 1)

        start = time.perf_counter()
        answer = client.post(
            f"/api/v1/imports/{created.import_id}/submit",
            json={"batches": 10_000_000, "rows": 0},
            headers=auth,
        )
        results["submit_1e7_batches"] = {
            "answer": answer.status_code,
            "bytes": len(answer.content),
            "seconds": round(time.perf_counter() - start, 3),
        }
    results["healthz_idle_ms"] = round(results["healthz_idle_ms"], 1)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    (out / "edge-latest.json").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
