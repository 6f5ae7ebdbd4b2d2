"""An organisation's access rules: two-factor for every member, the e-mail domains its
members may have, and the client addresses (CIDRs) its dashboard and its secret-key API
answer. Empty lists mean no restriction."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy.orm import Session

from server import audit
from server.errors import Forbidden, Invalid
from server.models.accounts import OrgSecurity
from server.runtime import Runtime

MAX_ENTRIES = 100


@dataclass(frozen=True)
class Rules:
    require_2fa: bool = False
    email_domains: tuple[str, ...] = ()
    ip_allowlist: tuple[str, ...] = ()

    def admits_email(self, email: str) -> bool:
        domain = email.rpartition("@")[2].lower()
        return not self.email_domains or domain in self.email_domains

    def admits_address(self, address: str) -> bool:
        if not self.ip_allowlist:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(cidr) for cidr in self.ip_allowlist)


def rules_in(session: Session, org_id: str) -> Rules:
    row = session.get(OrgSecurity, org_id)
    if row is None:
        return Rules()
    return Rules(row.require_2fa, tuple(row.email_domains), tuple(row.ip_allowlist))


def rules(rt: Runtime, org_id: str) -> Rules:
    with rt.sessions() as session:
        return rules_in(session, org_id)


def check_address(rt: Runtime, org_id: str, address: str) -> None:
    if not rules(rt, org_id).admits_address(address):
        raise Forbidden(
            f"Your address {address} is not on this organisation's IP allowlist; ask an "
            "administrator to add it."
        )


def parse_domains(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for raw in values[: MAX_ENTRIES + 1]:
        domain = raw.strip().lower().removeprefix("@")
        if not domain:
            continue
        labels = domain.split(".")
        if (
            len(domain) > 253
            or len(labels) < 2
            or not all(
                label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
                for label in labels
            )
        ):
            raise Invalid(f"{raw[:100]!r} is not an e-mail domain (for example example.com).")
        if domain not in found:
            found.append(domain)
    if len(found) > MAX_ENTRIES:
        raise Invalid(f"At most {MAX_ENTRIES} e-mail domains.")
    return tuple(found)


def parse_allowlist(values: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for raw in values[: MAX_ENTRIES + 1]:
        text = raw.strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise Invalid(
                f"{text[:100]!r} is not an address or CIDR range (for example 203.0.113.0/24)."
            ) from None
        if str(network) not in found:
            found.append(str(network))
    if len(found) > MAX_ENTRIES:
        raise Invalid(f"At most {MAX_ENTRIES} allowlist entries.")
    return tuple(found)


def update(
    rt: Runtime,
    org_id: str,
    new: Rules,
    *,
    actor: str,
    address: str,
) -> Rules:
    """Store the organisation's rules (checked by the parse_* functions first). An
    allowlist that would shut out the address making the change is refused."""
    if not new.admits_address(address):
        raise Invalid(
            f"This allowlist does not include your own address ({address}); add it, or you "
            "would lock yourself out."
        )
    with rt.sessions.begin() as session:
        row = session.get(OrgSecurity, org_id)
        old = rules_in(session, org_id)
        if row is None:
            row = OrgSecurity(org_id=org_id, require_2fa=False, email_domains=[], ip_allowlist=[])
            session.add(row)
        row.require_2fa = new.require_2fa
        row.email_domains = list(new.email_domains)
        row.ip_allowlist = list(new.ip_allowlist)
        changed = [
            name
            for name in ("require_2fa", "email_domains", "ip_allowlist")
            if getattr(old, name) != getattr(new, name)
        ]
        if changed:
            audit.record(
                session,
                action="security.updated",
                actor=actor,
                org_id=org_id,
                address=address,
                detail={
                    "changed": changed,
                    "require_2fa": new.require_2fa,
                    "email_domains": list(new.email_domains),
                    "ip_allowlist": list(new.ip_allowlist),
                },
            )
    return new
