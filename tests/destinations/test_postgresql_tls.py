"""The postgresql destination's TLS against a PostgreSQL server of this module's own (initdb
as the postgres user, ssl=on with a certificate from the test CA, on 127.0.0.1): verify-full
checks the CA and the host name while libpq connects to the checked address."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import destinations
from destinations import DestinationContext
from destinations.errors import FatalDeliveryError
from destinations.testing import sample_batch
from tests.destinations.conftest import LOOPBACK, FakeDNS, Pki, closed_port

NAME = "db.example.test"
CONTEXT = DestinationContext(policy=LOOPBACK, timeout=5.0)


@dataclass(frozen=True)
class TlsServer:
    port: int
    ca_pem: str


def _as_postgres(*command: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[TlsServer]:
    initdb = shutil.which("initdb")
    if os.geteuid() != 0 or initdb is None or not shutil.which("runuser"):
        pytest.skip("needs root, runuser and PostgreSQL's initdb to run a server of its own")
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user to run a server as")
    home = Path(tempfile.mkdtemp(prefix="loadbay-pgtls-"))
    os.chown(home, account.pw_uid, account.pw_gid)
    data = home / "data"
    pki.issue(NAME)  # writes <name>.pem: certificate and key
    _as_postgres(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    pem = data / "server.pem"
    shutil.copy(pki.ca_file.parent / f"{NAME}.pem", pem)
    os.chown(pem, account.pw_uid, account.pw_gid)
    pem.chmod(0o600)
    port = closed_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c ssl=on -c ssl_cert_file=server.pem "
        f"-c ssl_key_file=server.pem -c unix_socket_directories={home} -c fsync=off"
    )
    pg_ctl = str(Path(initdb).resolve().parent / "pg_ctl")
    log = str(home / "server.log")
    _as_postgres(pg_ctl, "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        yield TlsServer(port, pki.ca_file.read_text())
    finally:
        _as_postgres(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


def _config(server: TlsServer, host: str = NAME, **extra: Any) -> dict[str, Any]:
    return {
        "dsn": f"postgresql://postgres@{host}:{server.port}/postgres",
        "table": f"tls_{secrets.token_hex(4)}",
        "create_table": True,
        **extra,
    }


def test_verify_full_with_the_ca_checks_the_name_on_the_checked_address(
    tls_server: TlsServer, fake_dns: FakeDNS
) -> None:
    resolver = fake_dns({NAME: [["127.0.0.1"]]})
    config = _config(tls_server, sslmode="verify-full", ca_pem=tls_server.ca_pem)
    result = destinations.create("postgresql", config, CONTEXT).write(sample_batch(0))
    assert result.detail == "2 rows copied (append)"
    assert resolver.names_asked == [NAME]  # libpq never looked the name up itself


def test_verify_full_refuses_a_certificate_of_another_name(
    tls_server: TlsServer, fake_dns: FakeDNS
) -> None:
    fake_dns({"other.example.test": [["127.0.0.1"]]})
    config = _config(
        tls_server, host="other.example.test", sslmode="verify-full", ca_pem=tls_server.ca_pem
    )
    with pytest.raises(FatalDeliveryError) as caught:
        destinations.create("postgresql", config, CONTEXT).write(sample_batch(0))
    assert "does not match host name" in str(caught.value)


def test_verify_full_without_the_ca_refuses_a_private_ca(
    tls_server: TlsServer, fake_dns: FakeDNS
) -> None:
    fake_dns({NAME: [["127.0.0.1"]]})
    config = _config(tls_server, sslmode="verify-full")  # the system trust store
    with pytest.raises(FatalDeliveryError, match="certificate"):
        destinations.create("postgresql", config, CONTEXT).write(sample_batch(0))


def test_require_encrypts_without_checking_the_certificate(
    tls_server: TlsServer, fake_dns: FakeDNS
) -> None:
    fake_dns({NAME: [["127.0.0.1"]]})
    config = _config(tls_server, sslmode="require")
    assert destinations.create("postgresql", config, CONTEXT).write(sample_batch(0)).detail
