"""Which addresses a destination may reach, and how a typed host string is read.

The rules: an address is refused when it is in a range below (each with the reason a client
is told) or is not globally reachable by IANA's special-purpose registries (`is_global`),
unless the operator's allow-list opens it. Literals are parsed the way resolvers and browsers
read them, so no spelling of a refused address passes as a name.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass

from destinations.errors import ConfigurationError, FatalDeliveryError

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
    (_N("192.88.99.0/24"), "a deprecated 6to4 relay anycast address"),
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
    (_N("2001:2::/48"), "a benchmarking address"),
    (_N("2001:10::/28"), "a deprecated ORCHID address"),
    (_N("2001:20::/28"), "an ORCHIDv2 address"),
    (_N("2002::/16"), "a 6to4 address"),
    (_N("2001:db8::/32"), "a documentation address"),
    (_N("3fff::/20"), "a documentation address"),
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

    def allows(self, ip: IPAddress) -> bool:
        """Whether the operator opened ip on purpose (plain http is allowed only there)."""
        return any(ip in network for network in self.allow)

    def check_address(self, ip: IPAddress, *, host: str | None = None) -> None:
        """Raise UnsafeAddressError unless ip is public or allow-listed."""
        if self.allows(ip):
            return
        for network, reason in _REFUSED:
            if ip in network:
                raise UnsafeAddressError(ip, reason, host=host)
        if ip.version == 6 and ip not in _IPV6_GLOBAL_UNICAST:
            raise UnsafeAddressError(ip, "outside the global unicast range (2000::/3)", host=host)
        # The table above names the common cases; is_global covers the rest of IANA's
        # special-purpose registries (e.g. 2001::/23), as this Python knows them.
        if not ip.is_global:
            raise UnsafeAddressError(ip, "not a globally reachable address", host=host)


def ascii_host(host: str) -> str:
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
        name = ascii_host(host)
        if len(name) > 253 or not _HOSTNAME.fullmatch(name):
            raise ConfigurationError(f"{host!r} is not a valid hostname")
        return _parse_ipv4(name)
    try:
        return ipaddress.IPv6Address(inner)
    except ValueError as exc:
        raise ConfigurationError(f"{host!r} is not a valid IPv6 address") from exc
