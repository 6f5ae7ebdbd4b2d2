"""A loopback receiver, and the harnesses for the conformance suite (one fixture per kind).

The receiver is this package's own, so destination tests need nothing from server/.
"""

from __future__ import annotations

import datetime as dt
import socket
import socketserver
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from standardwebhooks.webhooks import Webhook

from destinations import DestinationContext
from destinations.network import NetworkPolicy
from destinations.testing import Failure, Setup
from destinations.webhook import new_secret

LOOPBACK = NetworkPolicy.from_strings(["127.0.0.0/8"])


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the receiver answered


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # answer only once the receiver is released (to provoke timeouts)


@dataclass
class Receiver:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)
    released: threading.Event = field(default_factory=threading.Event)

    def answer(self, *replies: Reply | int | tuple[int, dict[str, str]]) -> None:
        """Queue replies for the next requests, in order; once used up every answer is 200."""
        for reply in replies:
            if isinstance(reply, int):
                reply = Reply(reply)
            elif isinstance(reply, tuple):
                reply = Reply(*reply)
            self.replies.append(reply)

    def hold_next(self) -> None:
        """The next request gets no answer until the test ends (a receiver that hangs)."""
        self.replies.append(Reply(status=0, hold=True))

    @property
    def origin(self) -> str:
        return self.url.rsplit("/", 1)[0]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse lookup (getfqdn); skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]


def serve_receiver(
    tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> tuple[Receiver, _QuietServer]:
    """A receiver on 127.0.0.1 (ephemeral port) recording every request; stop it with
    stop_receiver. host is the name the URL uses (it must resolve to 127.0.0.1)."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = state.replies.popleft() if state.replies else Reply()
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append(Received(self.command, self.path, headers, body, reply.status))
            if reply.hold:
                state.released.wait(10)
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        do_POST = do_GET = do_PUT = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    state.url = f"{scheme}://{host}:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    return state, server


def stop_receiver(state: Receiver, server: _QuietServer) -> None:
    state.released.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state, server = serve_receiver()
    yield state
    stop_receiver(state, server)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class WebhookHarness:
    """The webhook against the shared loopback receiver (plain HTTP, loopback allow-listed).

    An effect is a delivery the receiver accepted (2xx), verified with the signing secret,
    identified by its (webhook-id, body): a retry with another body would be a second one.
    """

    kind = "webhook"

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.secret, self.rotated = new_secret(), new_secret()
        self.context = DestinationContext(policy=LOOPBACK, timeout=5.0)

    def working(self) -> Setup:
        config = {"url": self.receiver.url, "secret": self.secret, "secrets": [self.rotated]}
        return Setup(config, self.context)

    def failing(self, failure: Failure) -> Setup | None:
        if failure is Failure.CONNECTION_REFUSED:
            url = f"http://127.0.0.1:{closed_port()}/hook"
            return Setup({"url": url, "secret": self.secret}, self.context)
        if failure is Failure.TIMEOUT:
            self.receiver.hold_next()
            return Setup(self.working().config, DestinationContext(policy=LOOPBACK, timeout=0.3))
        reply: dict[Failure, tuple[int, dict[str, str]]] = {
            Failure.SERVER_ERROR: (500, {}),
            Failure.RATE_LIMITED: (429, {"retry-after": "30"}),
            Failure.REJECTED: (400, {}),
            Failure.GONE: (410, {}),
        }
        self.receiver.answer(reply[failure])
        return self.working()

    def refused(self) -> Setup:
        return Setup(self.working().config, DestinationContext())  # loopback not opened

    def effects(self) -> list[Any]:
        landed = set()
        for request in self.receiver.requests:
            if not 200 <= request.status < 300:
                continue
            Webhook(self.rotated).verify(request.body, request.headers)
            stamp = int(request.headers["webhook-timestamp"])
            assert abs(stamp - dt.datetime.now(dt.UTC).timestamp()) < 60
            landed.add((request.headers["webhook-id"], request.body))
        return sorted(landed)


@pytest.fixture
def webhook_harness(receiver: Receiver) -> WebhookHarness:
    return WebhookHarness(receiver)


@dataclass(frozen=True)
class HostPageHarness:
    """The host page has no receiver here: rows go to the page through the importer, and
    nothing a worker does has an effect (tests/destinations/test_host_page.py)."""

    kind: str = "host-page"

    def working(self) -> Setup:
        return Setup({"max_rows": 500}, DestinationContext())

    def failing(self, failure: Failure) -> Setup | None:
        return None

    def refused(self) -> Setup:
        return self.working()

    def effects(self) -> list[Any]:
        return []


@pytest.fixture(name="host-page_harness")
def host_page_harness() -> HostPageHarness:
    return HostPageHarness()


# --- a stub resolver (loopback answers only) and a private PKI -----------------------------------

HOST = "hooks.example.test"


@dataclass
class FakeResolver:
    """Stands in for socket.getaddrinfo: names get scripted answers, one per call (the last
    answer repeats); numeric loopback hosts go to the real resolver with AI_NUMERICHOST, which
    never touches DNS; anything else fails."""

    answers: dict[str, list[list[str]]]
    real: Callable[..., list[Any]]
    names_asked: list[str] = field(default_factory=list)

    def __call__(
        self, host: str, port: int, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        if host in self.answers:
            script = self.answers[host]
            answer = script[min(self.names_asked.count(host), len(script) - 1)]
            self.names_asked.append(host)
            return [self._info(address, port) for address in answer]
        if host in ("127.0.0.1", "::1"):
            return self.real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        self.names_asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    @staticmethod
    def _info(address: str, port: int) -> tuple[Any, ...]:
        if ":" in address:
            return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
        return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


FakeDNS = Callable[[dict[str, list[list[str]]]], FakeResolver]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    def install(answers: dict[str, list[list[str]]]) -> FakeResolver:
        resolver = FakeResolver(answers, socket.getaddrinfo)
        monkeypatch.setattr(socket, "getaddrinfo", resolver)
        return resolver

    return install


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    issue: Callable[[str], ssl.SSLContext]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("loadbay test CA"))
        .issuer_name(_name("loadbay test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(hostname: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hostname))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        chain = directory / f"{hostname}.pem"
        chain.write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return context

    return Pki(ca_file, issue)


# The s3 and postgresql harnesses live in stores.py (imported last: it uses the above).
from tests.destinations.stores import (  # noqa: E402
    pg_target,
    postgresql_harness,
    s3_harness,
)

__all__ = ["pg_target", "postgresql_harness", "s3_harness"]
