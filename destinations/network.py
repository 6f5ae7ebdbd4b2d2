"""SSRF guard for every URL and host a client types into a destination.

A client-supplied host is resolved once, every address it resolves to must be public (or in
the operator's allow-list), and the connection then goes to that checked address. Connecting
by name again would let a hostile DNS server answer differently the second time (DNS
rebinding), so nothing here hands a checked *name* back to a library that would resolve it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

from destinations.errors import (
    ConfigurationError,
    FatalDeliveryError,
    RetryableDeliveryError,
)

IPAddress: typing.TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: typing.TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "LOADBAY_ALLOW_PRIVATE_NETWORKS"

_N = ipaddress.ip_network

# Checked in order, so the specific reasons come before the broad ones they overlap with.
_REFUSED: tuple[tuple[IPNetwork, str], ...] = (
    (_N("0.0.0.0/8"), "a 'this network' address"),
    (_N("10.0.0.0/8"), "a private address"),
    (_N("100.64.0.0/10"), "a carrier-grade NAT address"),
    (_N("127.0.0.0/8"), "a loopback address"),
    (_N("169.254.0.0/16"), "a link-local address (where cloud metadata services live)"),
    (_N("172.16.0.0/12"), "a private address"),
    (_N("192.0.0.0/24"), "an IETF protocol assignment address"),
    (_N("192.0.2.0/24"), "a documentation address"),
    (_N("192.168.0.0/16"), "a private address"),
    (_N("198.18.0.0/15"), "a benchmarking address"),
    (_N("198.51.100.0/24"), "a documentation address"),
    (_N("203.0.113.0/24"), "a documentation address"),
    (_N("224.0.0.0/4"), "a multicast address"),
    (_N("255.255.255.255/32"), "the broadcast address"),
    (_N("240.0.0.0/4"), "a reserved address"),
    (_N("::/128"), "the unspecified address"),
    (_N("::1/128"), "a loopback address"),
    # Forms that embed an IPv4 address are refused outright: the embedded address may be private
    # and the host's stack or a gateway may translate to it.
    (_N("::ffff:0:0/96"), "an IPv4-mapped IPv6 address"),
    (_N("::/96"), "an IPv4-compatible IPv6 address"),
    (_N("64:ff9b::/96"), "a NAT64 address"),
    (_N("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_N("2001::/32"), "a Teredo address"),
    (_N("2002::/16"), "a 6to4 address"),
    (_N("2001:db8::/32"), "a documentation address"),
    (_N("fc00::/7"), "a unique local (private) address"),
    (_N("fe80::/10"), "a link-local address"),
    (_N("ff00::/8"), "a multicast address"),
)

# Every public IPv6 unicast address is allocated from here; anything else is not reachable
# on the internet, whatever it is.
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

_HOSTNAME = re.compile(r"[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DEC_DIGITS = frozenset("0123456789")
_OCT_DIGITS = frozenset("01234567")

_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeAddressError(FatalDeliveryError):
    """A destination points at an address loadbay must not reach (SSRF guard)."""

    def __init__(self, address: IPAddress, reason: str, *, host: str | None = None) -> None:
        subject = (
            f"{address} is"
            if host is None or host == str(address)
            else f"{host} points to {address}, which is"
        )
        super().__init__(
            f"{subject} {reason}; loadbay only delivers to public addresses. "
            f"An operator can allow private ranges with {ALLOW_SETTING}."
        )
        self.address = address
        self.reason = reason
        self.host = host


@dataclass(frozen=True)
class NetworkPolicy:
    """Which addresses destinations may reach: public ones, plus the operator's allow-list."""

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> NetworkPolicy:
        """Parse operator-typed CIDRs such as "127.0.0.0/8"; a typo is an error, not ignored."""
        allow: list[IPNetwork] = []
        for text in networks:
            try:
                allow.append(ipaddress.ip_network(text.strip()))
            except ValueError as exc:
                raise ConfigurationError(
                    f"{ALLOW_SETTING}: {text!r} is not a valid network ({exc})"
                ) from exc
        return cls(allow=tuple(allow))

    def check_address(self, ip: IPAddress, *, host: str | None = None) -> None:
        """Raise UnsafeAddressError unless ip is public or allow-listed."""
        if any(ip in network for network in self.allow):
            return
        for network, reason in _REFUSED:
            if ip in network:
                raise UnsafeAddressError(ip, reason, host=host)
        if ip.version == 6 and ip not in _IPV6_GLOBAL_UNICAST:
            raise UnsafeAddressError(ip, "outside the global unicast range (2000::/3)", host=host)


def _ascii_host(host: str) -> str:
    """The host as the resolver will see it: getaddrinfo IDNA-encodes non-ASCII names, which
    turns fullwidth digits such as "１２７.０.０.１" into an ordinary IPv4 literal."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ConfigurationError(f"{host!r} is not a valid hostname") from exc


def _ipv4_number(part: str, host: str) -> int:
    """One dotted part, read the way inet_aton and browsers do (0x hex, leading-0 octal)."""
    if part[:2] in ("0x", "0X"):
        digits, base, allowed = part[2:], 16, _HEX_DIGITS
    elif len(part) > 1 and part.startswith("0"):
        digits, base, allowed = part[1:], 8, _OCT_DIGITS
    else:
        digits, base, allowed = part, 10, _DEC_DIGITS
    # int() alone would also take "_", "+", spaces and non-ASCII digits.
    if not set(digits) <= allowed or (base == 10 and not digits):
        raise ConfigurationError(f"{host!r} is not a valid IPv4 address")
    return int(digits, base) if digits else 0


def _ends_in_number(label: str) -> bool:
    """The WHATWG URL rule: a host whose last label is numeric can only be an IPv4 address."""
    if label[:2] in ("0x", "0X"):
        return set(label[2:]) <= _HEX_DIGITS
    return label != "" and set(label) <= _DEC_DIGITS


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # "127.0.0.1." is still 127.0.0.1
    if not _ends_in_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise ConfigurationError(f"{host!r} is not a valid IPv4 address")
    numbers = [_ipv4_number(part, host) for part in parts]
    *leading, last = numbers
    # The last part fills all remaining bytes: "127.1" is 127.0.0.1, "2130706433" is too.
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (5 - len(numbers))):
        raise ConfigurationError(f"{host!r} is not a valid IPv4 address")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes by itself, None for a real hostname.

    Every spelling the system resolver would accept as a number ("2130706433", "0177.0.0.1",
    "0x7f.1", "127.1", "[::1]") is recognised, so none can pass as a name that happens to
    resolve to loopback. A string that is neither a literal nor a valid hostname is a
    ConfigurationError.
    """
    if host.startswith("[") and host.endswith("]"):
        inner = host[1:-1]
    elif ":" in host:
        inner = host
    else:
        ascii_host = _ascii_host(host)
        if len(ascii_host) > 253 or not _HOSTNAME.fullmatch(ascii_host):
            raise ConfigurationError(f"{host!r} is not a valid hostname")
        return _parse_ipv4(ascii_host)
    try:
        return ipaddress.IPv6Address(inner)
    except ValueError as exc:
        raise ConfigurationError(f"{host!r} is not a valid IPv6 address") from exc


def resolve(host: str, port: int, policy: NetworkPolicy) -> IPAddress:
    """Resolve host once and return the address to connect to.

    Every address the name resolves to must pass the policy, not just the one used, so a
    name cannot mix a public answer with a private one. The caller must connect to the
    returned address rather than to host.
    """
    literal = parse_ip_literal(host)
    if literal is not None:
        policy.check_address(literal, host=host)
        return literal
    name = _ascii_host(host)
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RetryableDeliveryError(f"could not resolve {host}: {exc}") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise RetryableDeliveryError(f"could not resolve {host}: no addresses")
    for address in addresses:
        policy.check_address(address, host=host)
    return addresses[0]


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to the checked address for the one host:port it was made for, and refuses
    any other, so a pinned client cannot be pointed somewhere else later."""

    def __init__(self, host: str, port: int, address: IPAddress) -> None:
        self._host = host
        self._port = port
        self._address = address

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if (host, port) != (self._host, self._port):
            raise FatalDeliveryError(
                f"this connection is only for {self._host}:{self._port}, not {host}:{port}"
            )
        # TLS is started later on the returned stream with the original host name, so SNI
        # and certificate verification are unaffected by the substitution.
        return super().connect_tcp(
            str(self._address),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool swapped for one using the pinned backend.

    httpx 0.28 has no public parameter for an httpcore network backend, so the pool that
    HTTPTransport built is replaced; the rest (request mapping, exception mapping) is
    httpx's own.
    """

    def __init__(self, backend: _PinnedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            # Fail loudly if httpx changes its internals, rather than silently not pinning.
            raise RuntimeError("httpx.HTTPTransport no longer keeps its pool in ._pool")
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend)


def _ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    """httpx deprecates verify=<path>, so a CA file or directory is turned into a context."""
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify)


def pinned_client(
    url: str,
    policy: NetworkPolicy,
    *,
    timeout: float,
    verify: ssl.SSLContext | str | bool = True,
) -> httpx.Client:
    """An httpx.Client for url's origin that connects only to the address resolve() checked.

    The Host header, TLS SNI and certificate verification still use the URL's host name.
    Redirects are not followed (a 3xx comes back as a response), and requests to any other
    host or port fail with FatalDeliveryError before a connection is made.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"{url!r} is not a valid URL: {exc}") from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        raise ConfigurationError(f"{url!r}: only http and https URLs are supported")
    host = parsed.raw_host.decode("ascii")
    port = _DEFAULT_PORTS[parsed.scheme] if parsed.port is None else parsed.port
    if not 0 < port < 65536:
        raise ConfigurationError(f"{url!r}: port {port} is out of range")
    address = resolve(host, port, policy)
    transport = _PinnedTransport(_PinnedBackend(host, port, address), _ssl_context(verify))
    # With an explicit transport httpx also ignores HTTP(S)_PROXY, which would bypass the pin.
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
