"""SSRF guard for every URL and host a client types into a destination.

A client-supplied host is resolved once, every address it resolves to must be public (or in
the operator's allow-list), and the connection then goes to that checked address. Connecting
by name again would let a hostile DNS server answer differently the second time (DNS
rebinding), so nothing here hands a checked *name* back to a library that would resolve it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import typing
from dataclasses import dataclass

import httpcore
import httpx

from destinations.addresses import (
    ALLOW_SETTING,
    IPAddress,
    IPNetwork,
    NetworkPolicy,
    UnsafeAddressError,
    ascii_host,
    parse_ip_literal,
)
from destinations.errors import (
    ConfigurationError,
    FatalDeliveryError,
    RetryableDeliveryError,
)

__all__ = [
    "ALLOW_SETTING",
    "IPAddress",
    "IPNetwork",
    "NetworkPolicy",
    "Target",
    "UnsafeAddressError",
    "check_url",
    "parse_ip_literal",
    "pinned_client",
    "resolve",
    "ssl_context",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    name = ascii_host(host)
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


def ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The default trust store (httpx's, the Mozilla bundle), plus an operator's CA file or
    directory if given: a private CA is added for self-hosted receivers, and public receivers
    stay trusted (a CA file replacing the store would break every public HTTPS endpoint)."""
    context = httpx.create_ssl_context()
    if ca_file is not None:
        try:
            if os.path.isdir(ca_file):
                context.load_verify_locations(capath=ca_file)
            else:
                context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"The CA file {ca_file} could not be loaded ({exc}); check LOADBAY_WEBHOOK_CA_FILE."
            ) from exc
    return context


@dataclass(frozen=True)
class Target:
    """Where a checked URL will be reached: its origin and the one address to connect to."""

    scheme: str
    host: str
    port: int
    address: IPAddress


def check_url(url: str, policy: NetworkPolicy) -> Target:
    """Parse url, resolve its host once and check every address; nothing is sent.

    Plain http is refused unless the address is in a range the operator opened: on the
    internet the rows and their signature would travel readable by anyone on the path.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"{url!r} is not a valid URL: {exc}") from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        raise ConfigurationError(f"{url!r}: only http and https URLs are supported")
    if not parsed.raw_host:
        raise ConfigurationError(f"{url!r} has no host")
    host = parsed.raw_host.decode("ascii")
    port = _DEFAULT_PORTS[parsed.scheme] if parsed.port is None else parsed.port
    if not 0 < port < 65536:
        raise ConfigurationError(f"{url!r}: port {port} is out of range")
    address = resolve(host, port, policy)
    if parsed.scheme == "http" and not policy.allows(address):
        raise ConfigurationError(
            f"{url} uses plain http://; use an https:// URL. Plain http is only allowed to "
            f"addresses an operator opened with {ALLOW_SETTING}."
        )
    return Target(parsed.scheme, host, port, address)


def pinned_client(
    url: str,
    policy: NetworkPolicy,
    *,
    timeout: float,
    verify: ssl.SSLContext | str | bool = True,
) -> httpx.Client:
    """An httpx.Client for url's origin that connects only to the address check_url() checked.

    The Host header, TLS SNI and certificate verification still use the URL's host name.
    Redirects are not followed (a 3xx comes back as a response), and requests to any other
    host or port fail with FatalDeliveryError before a connection is made. A CA path given
    as verify is added to the default trust store (see ssl_context).
    """
    target = check_url(url, policy)
    if isinstance(verify, str):
        context = ssl_context(verify)
    elif isinstance(verify, ssl.SSLContext):
        context = verify
    else:
        context = httpx.create_ssl_context(verify=verify)
    backend = _PinnedBackend(target.host, target.port, target.address)
    # With an explicit transport httpx also ignores HTTP(S)_PROXY, which would bypass the pin.
    return httpx.Client(
        transport=_PinnedTransport(backend, context), timeout=timeout, follow_redirects=False
    )
