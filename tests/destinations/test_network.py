"""The SSRF guard: address rules, literal parsing, single resolution and the pinned client.

Only loopback traffic: names are answered by a fake resolver, servers bind to 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from destinations.errors import (
    ConfigurationError,
    FatalDeliveryError,
    RetryableDeliveryError,
)
from destinations.network import (
    NetworkPolicy,
    Target,
    UnsafeAddressError,
    check_url,
    parse_ip_literal,
    pinned_client,
    resolve,
)
from tests.destinations.conftest import HOST, FakeDNS, Pki

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK_ALLOWED = NetworkPolicy.from_strings(["127.0.0.0/8"])


# --- address rules and literal parsing (no traffic) -------------------------------------------

REFUSED = [
    # (what a client typed, the address it denotes, why it is refused)
    ("0.1.2.3", V4("0.1.2.3"), "'this network'"),
    ("10.1.2.3", V4("10.1.2.3"), "a private address"),
    ("100.64.0.1", V4("100.64.0.1"), "carrier-grade NAT"),
    ("100.127.255.254", V4("100.127.255.254"), "carrier-grade NAT"),
    ("127.0.0.1", V4("127.0.0.1"), "a loopback address"),
    ("169.254.169.254", V4("169.254.169.254"), "link-local"),
    ("172.16.0.1", V4("172.16.0.1"), "a private address"),
    ("172.31.255.254", V4("172.31.255.254"), "a private address"),
    ("192.0.0.8", V4("192.0.0.8"), "IETF protocol assignment"),
    ("192.0.2.1", V4("192.0.2.1"), "documentation"),
    ("192.168.1.1", V4("192.168.1.1"), "a private address"),
    ("198.18.0.1", V4("198.18.0.1"), "benchmarking"),
    ("198.19.255.254", V4("198.19.255.254"), "benchmarking"),
    ("198.51.100.1", V4("198.51.100.1"), "documentation"),
    ("203.0.113.1", V4("203.0.113.1"), "documentation"),
    ("224.0.0.1", V4("224.0.0.1"), "multicast"),
    ("239.255.255.250", V4("239.255.255.250"), "multicast"),
    ("240.0.0.1", V4("240.0.0.1"), "a reserved address"),
    ("255.255.255.255", V4("255.255.255.255"), "the broadcast address"),
    # spellings inet_aton, curl and browsers all read as numbers
    ("2130706433", V4("127.0.0.1"), "a loopback address"),
    ("0177.0.0.1", V4("127.0.0.1"), "a loopback address"),
    ("0x7f.1", V4("127.0.0.1"), "a loopback address"),
    ("0X7F.0.0.1", V4("127.0.0.1"), "a loopback address"),
    ("127.1", V4("127.0.0.1"), "a loopback address"),
    ("127.0.1", V4("127.0.0.1"), "a loopback address"),
    ("0x7f000001", V4("127.0.0.1"), "a loopback address"),
    ("017700000001", V4("127.0.0.1"), "a loopback address"),
    ("127.0.0.1.", V4("127.0.0.1"), "a loopback address"),
    ("0", V4("0.0.0.0"), "'this network'"),  # noqa: S104 - a refused literal, not a bind
    ("0xa9.0xfe.0xa9.0xfe", V4("169.254.169.254"), "link-local"),
    ("0300.0250.1.1", V4("192.168.1.1"), "a private address"),
    ("10.65793", V4("10.1.1.1"), "a private address"),
    ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", V4("127.0.0.1"), "a loopback address"),
    # IPv6
    ("::", V6("::"), "the unspecified address"),
    ("::1", V6("::1"), "a loopback address"),
    ("[::1]", V6("::1"), "a loopback address"),
    ("fc00::1", V6("fc00::1"), "unique local"),
    ("fd12:3456::1", V6("fd12:3456::1"), "unique local"),
    ("fe80::1", V6("fe80::1"), "link-local"),
    ("fe80::1%eth0", V6("fe80::1%eth0"), "link-local"),
    ("ff02::1", V6("ff02::1"), "multicast"),
    ("2001:db8::1", V6("2001:db8::1"), "documentation"),
    # issue #15: ranges that were let through
    ("3fff::1", V6("3fff::1"), "documentation"),
    ("3fff:fff:ffff::1", V6("3fff:fff:ffff::1"), "documentation"),
    ("2001:2::1", V6("2001:2::1"), "benchmarking"),
    ("2001:10::1", V6("2001:10::1"), "ORCHID"),
    ("2001:20::1", V6("2001:20::1"), "ORCHIDv2"),
    ("2001:2f:ffff::1", V6("2001:2f:ffff::1"), "ORCHIDv2"),
    ("192.88.99.1", V4("192.88.99.1"), "6to4 relay anycast"),
    ("192.88.99.255", V4("192.88.99.255"), "6to4 relay anycast"),
    # not in the table, but not globally reachable (IANA registry, via is_global)
    ("2001:100::1", V6("2001:100::1"), "not a globally reachable address"),
    ("2001:1ff::1", V6("2001:1ff::1"), "not a globally reachable address"),
    ("100::1", V6("100::1"), "outside the global unicast range"),
    # forms embedding an IPv4 address are refused even when the IPv4 address is public
    ("::ffff:127.0.0.1", V6("::ffff:7f00:1"), "IPv4-mapped"),
    ("[::ffff:8.8.8.8]", V6("::ffff:808:808"), "IPv4-mapped"),
    ("::127.0.0.1", V6("::7f00:1"), "IPv4-compatible"),
    ("64:ff9b::7f00:1", V6("64:ff9b::7f00:1"), "NAT64"),
    ("64:ff9b::808:808", V6("64:ff9b::808:808"), "NAT64"),
    ("64:ff9b:1::a00:1", V6("64:ff9b:1::a00:1"), "local-use NAT64"),
    ("2002:7f00:1::", V6("2002:7f00:1::"), "6to4"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", V6("2001:0:4136:e378:8000:63bf:3fff:fdd2"), "Teredo"),
]

ACCEPTED = [
    ("8.8.8.8", V4("8.8.8.8")),
    ("1.1.1.1", V4("1.1.1.1")),
    ("134744072", V4("8.8.8.8")),
    ("2606:4700:4700::1111", V6("2606:4700:4700::1111")),
    ("[2606:4700:4700::1111]", V6("2606:4700:4700::1111")),
    # just outside the refused ranges
    ("11.0.0.1", V4("11.0.0.1")),
    ("100.128.0.1", V4("100.128.0.1")),
    ("172.32.0.1", V4("172.32.0.1")),
    ("198.20.0.1", V4("198.20.0.1")),
    ("223.255.255.254", V4("223.255.255.254")),
    ("2a00:1450:4001::1", V6("2a00:1450:4001::1")),
    ("192.88.98.1", V4("192.88.98.1")),
    ("192.88.100.1", V4("192.88.100.1")),
    ("3fff:1000::1", V6("3fff:1000::1")),
    ("2001:200::1", V6("2001:200::1")),
]


@pytest.mark.parametrize(("typed", "address", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_addresses(typed: str, address: Address, reason: str) -> None:
    parsed = parse_ip_literal(typed)
    assert parsed == address
    with pytest.raises(UnsafeAddressError) as caught:
        NetworkPolicy().check_address(parsed)
    assert caught.value.address == address
    assert reason in caught.value.reason


@pytest.mark.parametrize(("typed", "address"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_public_addresses_are_accepted(typed: str, address: Address) -> None:
    parsed = parse_ip_literal(typed)
    assert parsed == address
    NetworkPolicy().check_address(parsed)


@pytest.mark.parametrize(
    "host",
    [HOST, "example.com.", "xn--exmple-cua.com", "ex\u00e4mple.com", "1.2.3.example", "0x7f.com"],
)
def test_hostnames_are_not_literals(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "256.0.0.1",
        "127.0.0.256",
        "127.16777216",
        "4294967296",
        "1.2.3.4.5",
        "08.0.0.1",
        "0x7g.1",
        "1_0.0.0.1",
        "127..1",
        "[::1",
        "[hooks.example.test]",
        "::ffff:0177.0.0.1",
        "a%20b",
        "exa mple.com",
        "",
        "a" * 64 + ".com",
        ".".join(["a" * 63] * 4),
        "\u00e4" * 64 + ".com",
    ],
)
def test_strings_that_are_neither_literal_nor_hostname(host: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_ip_literal(host)


def test_message_names_address_reason_and_the_setting() -> None:
    with pytest.raises(UnsafeAddressError) as caught:
        NetworkPolicy().check_address(V4("127.0.0.1"))
    assert str(caught.value) == (
        "127.0.0.1 is a loopback address; loadbay only delivers to public addresses. "
        "An operator can allow private ranges with LOADBAY_ALLOW_PRIVATE_NETWORKS."
    )
    assert isinstance(caught.value, FatalDeliveryError)


def test_message_names_the_host_when_it_differs_from_the_address() -> None:
    with pytest.raises(UnsafeAddressError) as caught:
        NetworkPolicy().check_address(V4("10.0.0.5"), host=HOST)
    assert str(caught.value).startswith(
        "hooks.example.test points to 10.0.0.5, which is a private address; "
    )
    assert caught.value.host == HOST


# --- allow-list --------------------------------------------------------------------------------


def test_allow_list_opens_loopback_but_not_other_private_ranges() -> None:
    policy = NetworkPolicy.from_strings(["127.0.0.0/8"])
    assert policy.allow == (ipaddress.IPv4Network("127.0.0.0/8"),)
    policy.check_address(V4("127.0.0.1"))
    policy.check_address(V4("127.255.255.254"))
    for refused in (V4("10.0.0.1"), V6("::1"), V6("::ffff:7f00:1")):
        with pytest.raises(UnsafeAddressError):
            policy.check_address(refused)


def test_allow_list_accepts_several_networks_and_surrounding_space() -> None:
    policy = NetworkPolicy.from_strings([" 10.0.0.0/8 ", "fd00::/8", "192.168.1.5"])
    assert policy.allow == (
        ipaddress.IPv4Network("10.0.0.0/8"),
        ipaddress.IPv6Network("fd00::/8"),
        ipaddress.IPv4Network("192.168.1.5/32"),
    )
    policy.check_address(V6("fd00::1"))
    with pytest.raises(UnsafeAddressError):
        policy.check_address(V4("192.168.1.6"))


@pytest.mark.parametrize("bad", ["127.0.0.0/33", "not-a-network", "10.0.0.1/8", ""])
def test_bad_allow_list_entry_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="LOADBAY_ALLOW_PRIVATE_NETWORKS"):
        NetworkPolicy.from_strings(["127.0.0.0/8", bad])


# --- resolve() ---------------------------------------------------------------------------------


# The stub resolver answers loopback addresses only; "public" is played by 127.0.0.1 under a
# policy that opens just 127.0.0.1, so a bug could never send traffic off the machine.
ONLY_127_0_0_1 = NetworkPolicy.from_strings(["127.0.0.1/32"])


@pytest.mark.parametrize(
    "answer", [["127.0.0.1", "127.0.0.2"], ["127.0.0.2", "127.0.0.1"], ["127.0.0.1", "::1"]]
)
def test_resolve_refuses_if_any_answer_is_refused(fake_dns: FakeDNS, answer: list[str]) -> None:
    dns = fake_dns({HOST: [answer]})
    with pytest.raises(UnsafeAddressError) as caught:
        resolve(HOST, 443, ONLY_127_0_0_1)
    assert caught.value.address in (V4("127.0.0.2"), V6("::1"))
    assert caught.value.host == HOST
    assert dns.names_asked == [HOST]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (["127.0.0.1"], V4("127.0.0.1")),
        (["127.0.0.3", "127.0.0.1"], V4("127.0.0.3")),
        (["::1"], V6("::1")),
    ],
)
def test_resolve_returns_the_first_checked_address(
    fake_dns: FakeDNS, answer: list[str], expected: Address
) -> None:
    dns = fake_dns({HOST: [answer]})
    policy = NetworkPolicy.from_strings(["127.0.0.0/8", "::1/128"])
    assert resolve(HOST, 443, policy) == expected
    assert dns.names_asked == [HOST]


def test_resolve_checks_literals_without_a_lookup(fake_dns: FakeDNS) -> None:
    dns = fake_dns({})
    assert resolve("0x7f.1", 80, LOOPBACK_ALLOWED) == V4("127.0.0.1")
    with pytest.raises(UnsafeAddressError) as caught:
        resolve("0x7f.1", 80, NetworkPolicy())
    assert str(caught.value).startswith("0x7f.1 points to 127.0.0.1, which is a loopback")
    assert dns.names_asked == []


def test_resolve_without_addresses_is_retryable(fake_dns: FakeDNS) -> None:
    fake_dns({HOST: [[]]})
    with pytest.raises(
        RetryableDeliveryError, match=r"^could not resolve hooks\.example\.test: no"
    ):
        resolve(HOST, 443, NetworkPolicy())


def test_resolve_failure_is_retryable(fake_dns: FakeDNS) -> None:
    dns = fake_dns({})
    with pytest.raises(
        RetryableDeliveryError, match=r"^could not resolve nowhere\.example\.test: "
    ):
        resolve("nowhere.example.test", 443, NetworkPolicy())
    assert dns.names_asked == ["nowhere.example.test"]


# --- check_url(): parse, resolve once, check; nothing sent -------------------------------------


def test_check_url_returns_the_checked_target(fake_dns: FakeDNS) -> None:
    dns = fake_dns({HOST: [["127.0.0.1"]]})
    target = check_url(f"https://{HOST}:8443/x", LOOPBACK_ALLOWED)
    assert target == Target("https", HOST, 8443, V4("127.0.0.1"))
    assert check_url("https://8.8.8.8/x", NetworkPolicy()).address == V4("8.8.8.8")
    assert dns.names_asked == [HOST]


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/x", "http://[2606:4700:4700::1111]:8080/x", "http://134744072/x"]
)
def test_plain_http_is_refused_outside_the_allow_list(url: str) -> None:
    """Issue #15: public literals, refused before any connection could be made."""
    with pytest.raises(ConfigurationError) as caught:
        check_url(url, LOOPBACK_ALLOWED)
    assert str(caught.value) == (
        f"{url} uses plain http://; use an https:// URL. Plain http is only allowed to "
        "addresses an operator opened with LOADBAY_ALLOW_PRIVATE_NETWORKS."
    )
    with pytest.raises(ConfigurationError, match="uses plain http://"):
        pinned_client(url, LOOPBACK_ALLOWED, timeout=5)


def test_plain_http_is_allowed_inside_the_allow_list(fake_dns: FakeDNS) -> None:
    fake_dns({HOST: [["127.0.0.1"]]})
    assert check_url(f"http://{HOST}/x", LOOPBACK_ALLOWED).address == V4("127.0.0.1")
    assert check_url("http://127.0.0.1/x", LOOPBACK_ALLOWED).port == 80


# --- pinned_client() against real loopback servers ----------------------------------------------


@dataclass(frozen=True)
class Seen:
    path: str
    host_header: str | None
    client_port: int


@dataclass
class LocalServer:
    port: int
    seen: list[Seen]
    sni: list[str | None]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse lookup (getfqdn); skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]


@contextmanager
def _serve(tls: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    seen: list[Seen] = []
    sni: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(Seen(self.path, self.headers.get("Host"), self.client_address[1]))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://elsewhere.example.test/landing")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: sni.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield LocalServer(server.server_address[1], seen, sni)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    with _serve() as server:
        yield server


def test_pinned_client_connects_to_the_checked_address_only(
    fake_dns: FakeDNS, http_server: LocalServer
) -> None:
    # The second answer is a rebinding attempt; 127.0.0.2 has no server, so using it would fail.
    dns = fake_dns({HOST: [["127.0.0.1"], ["127.0.0.2"]]})
    url = f"http://{HOST}:{http_server.port}/x"
    with pinned_client(url, LOOPBACK_ALLOWED, timeout=5) as client:
        statuses = [client.get(url).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert [(s.path, s.host_header) for s in http_server.seen] == [
        ("/x", f"{HOST}:{http_server.port}")
    ] * 3
    # HTTP/1.0 server: each request was a new connection, and each went to the pinned address.
    assert len({s.client_port for s in http_server.seen}) == 3
    assert dns.names_asked == [HOST]


def test_pinned_client_returns_redirects_without_following(
    fake_dns: FakeDNS, http_server: LocalServer
) -> None:
    dns = fake_dns({HOST: [["127.0.0.1"]]})
    url = f"http://{HOST}:{http_server.port}/redirect"
    with pinned_client(url, LOOPBACK_ALLOWED, timeout=5) as client:
        response = client.get(url)
        assert response.status_code == 302
        assert response.headers["Location"] == "http://elsewhere.example.test/landing"
        # Even a caller asking to follow cannot leave the pinned origin.
        with pytest.raises(FatalDeliveryError, match="only for hooks.example.test"):
            client.get(url, follow_redirects=True)
    assert [s.path for s in http_server.seen] == ["/redirect", "/redirect"]
    assert dns.names_asked == [HOST]


def test_pinned_client_refuses_other_hosts_and_ports(
    fake_dns: FakeDNS, http_server: LocalServer
) -> None:
    dns = fake_dns({HOST: [["127.0.0.1"]], "other.example.test": [["127.0.0.1"]]})
    port = http_server.port
    with pinned_client(f"http://{HOST}:{port}/x", LOOPBACK_ALLOWED, timeout=5) as client:
        for other in (
            f"http://other.example.test:{port}/x",
            f"http://127.0.0.1:{port}/x",
            f"http://{HOST}:{port + 1}/x",
            f"http://{HOST}/x",
        ):
            with pytest.raises(FatalDeliveryError, match=r"^this connection is only for"):
                client.get(other)
    assert http_server.seen == []
    assert dns.names_asked == [HOST]


def test_pinned_client_refuses_unsafe_destinations_before_connecting(fake_dns: FakeDNS) -> None:
    dns = fake_dns({HOST: [["127.0.0.1"]]})
    with pytest.raises(UnsafeAddressError) as caught:
        pinned_client(f"http://{HOST}:8080/x", NetworkPolicy(), timeout=5)
    assert caught.value.address == V4("127.0.0.1")
    with pytest.raises(UnsafeAddressError) as caught:
        pinned_client("http://2130706433:8080/x", NetworkPolicy(), timeout=5)
    assert caught.value.address == V4("127.0.0.1")
    assert dns.names_asked == [HOST]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.test/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "http:///x",
        "http://[::1/x",
        "http://exa mple.com/",
        "http://hooks.example.test:99999/",
        "http://hooks.example.test:0/",
    ],
)
def test_pinned_client_refuses_bad_urls(fake_dns: FakeDNS, url: str) -> None:
    dns = fake_dns({})
    with pytest.raises(ConfigurationError):
        pinned_client(url, LOOPBACK_ALLOWED, timeout=5)
    assert dns.names_asked == []


def test_pinned_client_accepts_an_allowed_literal(http_server: LocalServer) -> None:
    url = f"http://0x7f.1:{http_server.port}/x"
    with pinned_client(url, LOOPBACK_ALLOWED, timeout=5) as client:
        assert client.get(url).status_code == 200
    assert http_server.seen[0].host_header == f"0x7f.1:{http_server.port}"


# --- TLS: verification uses the host name, not the pinned address -------------------------------


def _ca_setting(pki: Pki, verify_as: str) -> str | ssl.SSLContext:
    if verify_as == "path":
        return str(pki.ca_file)
    return ssl.create_default_context(cafile=str(pki.ca_file))


@pytest.mark.parametrize("verify_as", ["path", "context"])
def test_https_verifies_the_certificate_against_the_host_name(
    fake_dns: FakeDNS, pki: Pki, verify_as: str
) -> None:
    dns = fake_dns({HOST: [["127.0.0.1"]]})
    with _serve(pki.issue(HOST)) as server:
        url = f"https://{HOST}:{server.port}/x"
        verify = _ca_setting(pki, verify_as)
        with pinned_client(url, LOOPBACK_ALLOWED, timeout=5, verify=verify) as client:
            response = client.get(url)
        assert response.status_code == 200
        assert server.sni == [HOST]
        assert [(s.path, s.host_header) for s in server.seen] == [("/x", f"{HOST}:{server.port}")]
    assert dns.names_asked == [HOST]


@pytest.mark.parametrize("verify_as", ["path", "context"])
def test_https_rejects_a_certificate_for_another_name(
    fake_dns: FakeDNS, pki: Pki, verify_as: str
) -> None:
    fake_dns({HOST: [["127.0.0.1"]]})
    with _serve(pki.issue("other.example.test")) as server:
        url = f"https://{HOST}:{server.port}/x"
        verify = _ca_setting(pki, verify_as)
        with pinned_client(url, LOOPBACK_ALLOWED, timeout=5, verify=verify) as client:
            with pytest.raises(httpx.ConnectError, match="Hostname mismatch") as caught:
                client.get(url)
        assert f"'{HOST}'" in str(caught.value)
        assert server.sni == [HOST]
        assert server.seen == []


def test_https_verifies_by_default(fake_dns: FakeDNS, pki: Pki) -> None:
    fake_dns({HOST: [["127.0.0.1"]]})
    with _serve(pki.issue(HOST)) as server:
        url = f"https://{HOST}:{server.port}/x"
        with pinned_client(url, LOOPBACK_ALLOWED, timeout=5) as client:
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                client.get(url)
        assert server.seen == []
