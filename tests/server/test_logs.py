"""Logs hold metadata only: every line `loadbay serve` (uvicorn's access and error logs
included), `loadbay worker` (RQ's worker, work horse and scheduler) and `loadbay cron`
write during an end-to-end import, a refused batch, a management API call and a retried
delivery is captured, and no cell value (nor a token, key or signing secret) is among
them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import select

from destinations.webhook import new_secret
from server import db, imports, keys, orgs
from server.http.digest import content_digest_header
from server.runtime import Runtime
from server.settings import Settings
from tests.conftest import CONTACTS_SCHEMA, REPO, free_port

if TYPE_CHECKING:
    from tests.conftest import BatchFactory, Receiver

HOST = "https://host.example"
# Distinctive cells: none of them may appear in any log line.
NAME = "Quokkafeather Zanzibarovna"
EMAIL = "xq7.lumberwick@quokka-logs.example"
PHONE = "+99 1234 987654321"
DATE = "1901-02-03"
AMOUNT = "98765.4321"
GOOD = (
    f"Full name,Email,Phone,Country,Signup date,Amount\n{NAME},{EMAIL},{PHONE},NL,{DATE},{AMOUNT}\n"
)
BAD_NAME = "Vexillographer Quasarine"
BAD_DATE = "31/31/1999-quasar"
BAD = f"Full name,Email,Signup date\n{BAD_NAME},zz-quasar@example.com,{BAD_DATE}\n"
CELLS = (NAME, EMAIL, PHONE, DATE, AMOUNT, BAD_NAME, BAD_DATE, "zz-quasar@example.com")
PARTS = ("Quokkafeather", "Zanzibarovna", "lumberwick", "987654321", "98765", "Quasarine")


@dataclass
class Installation:
    rt: Runtime
    base: str
    logs: dict[str, Path]
    children: list[subprocess.Popen[bytes]]

    def stop(self) -> None:
        """SIGTERM, as a supervisor stops them: each logs its shutdown and exits."""
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(10)


@pytest.fixture
def installation(tmp_path: Path, redis_url: str, receiver: Receiver) -> Iterator[Installation]:
    """`loadbay serve`, `worker` and `cron` as real processes on one data directory and
    the session's Redis; each process's stdout and stderr go to its own file."""
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LOADBAY_DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": redis_url,
        "LOADBAY_PUBLIC_URL": base,
        "LOADBAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
        "LOADBAY_SWEEP_INTERVAL": "1",  # so the sweeper runs (and logs) during the test
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    settings = Settings.from_env(env)
    db.migrate(settings.database_url)
    rt = Runtime.from_settings(settings)
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "worker", "cron")}
    argv = {"serve": ["serve", "--port", str(port)], "worker": ["worker"], "cron": ["cron"]}
    children: list[subprocess.Popen[bytes]] = []
    try:
        for name, path in logs.items():
            with path.open("wb") as out:
                children.append(
                    subprocess.Popen(  # noqa: S603 - our own CLI
                        [sys.executable, "-m", "server.cli", *argv[name]],
                        env=env,
                        cwd=REPO,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        installed = Installation(rt, base, logs, children)
        yield installed
    finally:
        Installation(rt, base, logs, children).stop()
        rt.sessions.kw["bind"].dispose()


def _wait(what: str, done: object, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(done) and done():
            return
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _delivered(rt: Runtime, import_id: str) -> bool:
    with rt.sessions() as session:
        states = session.scalars(
            select(db.Delivery.status).where(db.Delivery.import_id == import_id)
        ).all()
    return bool(states) and set(states) == {"delivered"}


def test_no_cell_value_reaches_a_log_line(
    installation: Installation, receiver: Receiver, batch_factory: BatchFactory
) -> None:
    rt = installation.rt
    org = orgs.create_organisation(rt, "Log Org", [HOST])
    template = orgs.create_template(rt, org, CONTACTS_SCHEMA)
    signing = new_secret()
    orgs.create_destination(
        rt, org, template, "webhook", "hook", {"url": receiver.url, "secret": signing}
    )
    secret_key = keys.create_key(rt, org.id, "logs").secret
    receiver.answer(503)  # the first attempt fails: the retry path logs too
    base = installation.base
    with httpx.Client(base_url=base, verify=False, timeout=30) as client:  # noqa: S501 - self-signed
        _wait("the server", lambda: _up(client))
        origin = {"origin": base}
        created = client.post(
            "/api/v1/imports",
            json={
                "publishableKey": org.publishable_key,
                "templateId": template.id,
                "fileName": "contacts.csv",
            },
            headers=origin,
        )
        assert created.status_code == 201, created.text
        import_id, token = created.json()["id"], created.json()["uploadToken"]
        auth = {**origin, "authorization": f"Bearer {token}"}
        bad, good = batch_factory(BAD), batch_factory(GOOD)
        refused = client.put(
            f"/api/v1/imports/{import_id}/batches/0",
            params={"first_row": 2},
            content=bad,
            headers=auth | {"content-digest": content_digest_header(bad)},
        )
        assert refused.status_code == 422, refused.text
        stored = client.put(
            f"/api/v1/imports/{import_id}/batches/0",
            params={"first_row": 2},
            content=good,
            headers=auth | {"content-digest": content_digest_header(good)},
        )
        assert stored.status_code == 200, stored.text
        submitted = client.post(
            f"/api/v1/imports/{import_id}/submit", json={"batches": 1, "rows": 1}, headers=auth
        )
        assert submitted.status_code == 202, submitted.text
        managed = client.get(
            "/api/v1/organisation", headers={"authorization": f"Bearer {secret_key}"}
        )
        assert managed.status_code == 200, managed.text
        _wait("the delivery", lambda: _delivered(rt, import_id))
        _wait("a sweep", lambda: "sweep" in installation.logs["cron"].read_text().lower())
    # The values did travel through these processes: the receiver got them (twice).
    assert [r.body.count(NAME.encode()) for r in receiver.requests] == [1, 1]

    installation.stop()  # so that everything each process logged, shutdown too, is in its file
    lines = [
        line
        for path in installation.logs.values()
        for line in path.read_text(errors="replace").splitlines()
    ]
    # What was captured is the processes' real logging: uvicorn's access log, loadbay's
    # own loggers, RQ's worker and cron.
    assert any(f"PUT /api/v1/imports/{import_id}/batches/0" in line for line in lines)
    assert any("GET /api/v1/organisation" in line for line in lines)
    assert any("422" in line and "/batches/0" in line for line in lines)
    assert any("delivered batch 0 of " + import_id in line for line in lines)
    assert any("failed" in line and "503" in line for line in lines)
    worker_log = installation.logs["worker"].read_text()
    assert "server.jobs.deliver" in worker_log  # RQ's own lines
    leaks = [
        (value, line)
        for line in lines
        for value in (*CELLS, *PARTS)
        if value.lower() in line.lower()
    ]
    assert leaks == []
    # Nor any credential: the upload token, the secret key, the signing secret.
    credentials = (token, secret_key, signing, signing.removeprefix("whsec_"))
    assert not [c for c in credentials for line in lines if c in line]


# --- an exception whose text quotes a cell ----------------------------------------------

# `loadbay serve`'s own wiring (server.cli._serve) in a process of its own, with an upload
# that fails unexpectedly with a cell in the exception's text (and in its cause's): the
# 500 is logged by loadbay and, since Starlette re-raises, by uvicorn.
FAILING_SERVER = """
import os, signal, sys, threading, time
import httpx, pyarrow as pa
from server import cli, uploads
from server.runtime import Runtime
from server.settings import Settings

cell, import_id, token, port = sys.argv[1:5]

def broken(*args):
    try:
        raise ValueError(f"could not read {cell!r}")
    except ValueError as exc:
        raise pa.ArrowInvalid(f"Failed to parse string: '{cell}' as a double") from exc

uploads.receive_batch = broken
base = f"https://127.0.0.1:{port}"

def client():
    for _ in range(300):
        try:
            answer = httpx.put(
                f"{base}/api/v1/imports/{import_id}/batches/0",
                params={"first_row": 2},
                content=b"rows",
                headers={
                    "authorization": f"Bearer {token}",
                    "origin": base,
                    # sha-256 of b"rows", so the request reaches the (broken) decoder
                    "content-digest": "sha-256=:vFHp5l154ckLpUSrLq4QRMzfjBr3pVm6N1y6Qnb32Z4=:",
                },
                verify=False,
            )
            break
        except httpx.TransportError:
            time.sleep(0.1)
    print("answered", answer.status_code, flush=True)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=client, daemon=True).start()
cli._serve(Runtime.from_settings(Settings.from_env()), "127.0.0.1", int(port), None, None)
"""


def test_an_exception_is_logged_without_its_text(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LOADBAY_DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": redis_url,
        "LOADBAY_PUBLIC_URL": f"https://127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    settings = Settings.from_env(env)
    db.migrate(settings.database_url)
    rt = Runtime.from_settings(settings)
    org = orgs.create_organisation(rt, "Log Org", [HOST])
    template = orgs.create_template(rt, org, CONTACTS_SCHEMA)
    created = imports.create_import(rt, org, template.id, "contacts.csv")
    rt.sessions.kw["bind"].dispose()
    done = subprocess.run(  # noqa: S603 - our own code
        [
            sys.executable,
            "-c",
            FAILING_SERVER,
            NAME,
            created.import_id,
            created.upload_token,
            str(port),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "answered 500" in done.stdout, output
    assert f"unexpected error on PUT /api/v1/imports/{created.import_id}/batches/0" in output
    assert "Exception in ASGI application" in output  # uvicorn's own error log
    assert "pyarrow.lib.ArrowInvalid (message withheld: it may quote data)" in output
    assert "builtins.ValueError (message withheld: it may quote data)" in output
    assert ", in broken" in output  # the frames are kept
    assert not [part for part in (NAME, *NAME.split()) if part in output]
