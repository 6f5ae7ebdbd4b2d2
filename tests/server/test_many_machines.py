"""Many machines (#17): two `loadbay serve` receivers and three `loadbay worker`s share one
Redis, PostgreSQL metadata and S3 blobs (moto's server mode); 50 imports are uploaded
concurrently, their batches spread over both receivers; one receiver and one worker are
killed with SIGKILL mid-run; every import completes and every row is delivered once in
effect (the receiver sees every batch at least once; repeats share a `webhook-id`)."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx
import pytest
from sqlalchemy import func, select

from server import db, imports
from server.http.digest import content_digest_header
from server.settings import Timings
from tests.conftest import free_port
from tests.destinations.stores import KEY_ID, SECRET_KEY, s3_client
from tests.server.test_faults import FAST, Processes, RedisProcess, own_redis, wait_for

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, Receiver, RuntimeFactory

__all__ = ["own_redis"]
pytestmark = pytest.mark.parametrize("store", ["postgresql"])

IMPORTS, BATCHES, ROWS_PER_BATCH = 50, 4, 25


@pytest.fixture
def s3_blobs(
    moto_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The blob store's environment, for this process and the ones it starts."""
    bucket = f"loadbay-blobs-{secrets.token_hex(4)}"
    env = {
        "AWS_ENDPOINT_URL_S3": moto_url,
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3_client(moto_url).create_bucket(Bucket=bucket)
    return env | {"LOADBAY_BLOB_S3_BUCKET": bucket}


def _csv(n: int) -> str:
    rows = [f"Person {n}-{i},p{n}_{i}@example.com" for i in range(BATCHES * ROWS_PER_BATCH)]
    return "Full name,Email\n" + "\n".join(rows) + "\n"


def test_two_receivers_and_three_workers_survive_losing_one_of_each(
    own_redis: RedisProcess,
    s3_blobs: dict[str, str],
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    master_key = tmp_path / "secrets" / "master.key"
    rt = runtime_factory(
        redis_url=own_redis.url,
        queue_name="deliveries",
        allow_private_networks=("127.0.0.0/8",),
        timings=Timings.from_env(FAST),
        blob_s3_bucket=s3_blobs["LOADBAY_BLOB_S3_BUCKET"],
        master_key_file=master_key,
    )
    org = demo_org(rt, webhook_urls=[receiver.url])
    bodies = {
        (n, seq): batch_factory(
            _csv(n), offset=seq * ROWS_PER_BATCH, length=ROWS_PER_BATCH, compression=None
        )
        for n in range(IMPORTS)
        for seq in range(BATCHES)
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOADBAY_", "REDIS_"))}
    base |= FAST | s3_blobs
    base |= {
        "DATABASE_URL": rt.settings.database_url,
        "REDIS_URL": own_redis.url,
        "LOADBAY_MASTER_KEY_FILE": str(master_key),
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
    }
    machines = []
    for i in range(2):  # each receiver a machine of its own: its own data directory
        port = free_port()
        env = base | {
            "LOADBAY_DATA_DIR": str(tmp_path / f"machine-{i}"),
            "LOADBAY_PUBLIC_URL": f"https://127.0.0.1:{port}",
        }
        processes = Processes(env, tmp_path)
        machines.append((processes, f"https://127.0.0.1:{port}"))
    receivers = [p.start("serve", "--port", url.rsplit(":", 1)[1]) for p, url in machines]
    workers = [machines[i % 2][0].start("worker") for i in range(3)]
    machines[0][0].start("cron")
    clients = [
        httpx.Client(base_url=url, verify=False, timeout=30)  # noqa: S501 - self-signed, loopback
        for _, url in machines
    ]
    try:
        for client in clients:
            wait_for(lambda c=client: _up(c), 60, "a receiver starting")
        dead: set[int] = set()
        calls = itertools.count()
        lock = threading.Lock()

        def call(method: str, path: str, **kwargs: object) -> httpx.Response:
            """What a load balancer does: spread requests, skip a machine that is down."""
            for _ in range(20):
                with lock:
                    i = next(calls) % 2
                    if i in dead:
                        i = 1 - i
                try:
                    answer = clients[i].request(method, path, **kwargs)  # type: ignore[arg-type]
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                if answer.status_code in (502, 503):
                    time.sleep(0.2)
                    continue
                return answer
            pytest.fail(f"{method} {path}: no receiver answered")

        def upload(n: int) -> str:
            created = call(
                "POST",
                "/api/v1/imports",
                json={
                    "publishableKey": org.org.publishable_key,
                    "templateId": org.template.id,
                    "fileName": f"people-{n}.csv",
                },
            )
            assert created.status_code == 201, created.text
            import_id, token = created.json()["id"], created.json()["uploadToken"]
            auth = {"authorization": f"Bearer {token}"}
            for seq in range(BATCHES):
                put = call(
                    "PUT",
                    f"/api/v1/imports/{import_id}/batches/{seq}",
                    params={"first_row": 2 + seq * ROWS_PER_BATCH},
                    headers=auth | {"content-digest": content_digest_header(bodies[(n, seq)])},
                    content=bodies[(n, seq)],
                )
                assert put.status_code == 200, put.text
            total = BATCHES * ROWS_PER_BATCH
            submitted = call(
                "POST",
                f"/api/v1/imports/{import_id}/submit",
                headers=auth,
                json={"batches": BATCHES, "rows": total},
            )
            assert submitted.status_code == 202, submitted.text
            return str(import_id)

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(upload, n) for n in range(IMPORTS)]
            wait_for(lambda: sum(f.done() for f in futures) >= IMPORTS // 3, 120, "uploads")
            wait_for(lambda: len(receiver.requests) >= 10, 60, "first deliveries")
            os.kill(receivers[1].pid, signal.SIGKILL)  # a machine's receiver dies...
            with lock:
                dead.add(1)
            os.kill(workers[0].pid, signal.SIGKILL)  # ...and a worker elsewhere
            killed_at = len(receiver.requests)
            import_ids = [f.result(timeout=180) for f in futures]

        assert len(set(import_ids)) == IMPORTS

        def all_delivered() -> bool:
            with rt.sessions() as session:
                waiting = session.scalar(
                    select(func.count())
                    .select_from(db.Delivery)
                    .where(db.Delivery.status != db.Delivery.Status.DELIVERED)
                )
            return waiting == 0

        took = wait_for(all_delivered, 180, "every delivery delivered")
        print(f"{killed_at} requests before the kills; all delivered {took:.1f} s after uploads")
        with rt.sessions() as session:
            found = session.scalars(select(db.Import).where(db.Import.id.in_(import_ids))).all()
            statuses = [imports.import_status(session, imp).status for imp in found]
            deliveries_made = session.scalar(select(func.count()).select_from(db.Delivery))
        assert sorted(set(statuses)) == ["delivered"]
        assert deliveries_made == IMPORTS * BATCHES
        seen: dict[str, list[dict[str, object]]] = {}
        for request in receiver.requests:
            rows = json.loads(request.body)["data"]["rows"]
            earlier = seen.setdefault(request.headers["webhook-id"], rows)
            assert earlier == rows  # a repeat is the same batch, with the same id
        assert len(seen) == IMPORTS * BATCHES
        emails = sorted(str(row["email"]) for rows in seen.values() for row in rows)
        expected = sorted(
            f"p{n}_{i}@example.com" for n in range(IMPORTS) for i in range(BATCHES * ROWS_PER_BATCH)
        )
        assert emails == expected  # every row once in effect
        # The blobs went to S3, not to either machine's disk.
        for i in range(2):
            assert not list((tmp_path / f"machine-{i}").glob("**/*.sealed"))
        listed = boto3.client("s3").list_objects_v2(Bucket=s3_blobs["LOADBAY_BLOB_S3_BUCKET"])
        assert listed["KeyCount"] >= IMPORTS * BATCHES
    finally:
        for client in clients:
            client.close()
        for processes, _ in machines:
            processes.stop_all()


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
