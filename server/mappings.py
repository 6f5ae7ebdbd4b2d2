"""Remembered column mappings: what users confirmed for a header layout, proposed next time.

A memory is one mapping confirmed for one header layout (the normalised headers, in
order) of a template. It is proposed once `PROPOSE_AFTER` distinct client addresses (an
IPv6 /64 counts as one) have confirmed exactly it: a few scripted imports from one
machine cannot teach the next user a wrong mapping. A confirmation that disagrees with a
memory of the same layout does not count towards it; it starts a competing memory with a
count of its own, and the memory with the most addresses is proposed (the latest
confirmed, on a tie). Competing rather than resetting: one user who maps differently (or
an attacker) cannot erase what many confirmed, and a mapping that is really wrong is
outvoted as soon as more addresses confirm the right one. A file whose headers differ a
little gets the most-confirmed memory that shares 80% of the headers (one in five
renamed, dropped or added).

Nothing readable is stored. The layout, every header, the mapping's keys and the
confirming addresses are HMAC-SHA256 digests under the template's mapping key (derived
from the organisation key, `Vault.mapping_key`): for a file without a header row the
"headers" are cell values, and an unkeyed digest of a likely value is found by trying
a dictionary. Recall digests the labels it is sent and answers {label: field} only for
labels the request itself holds.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.matching import normalise
from pipeline.template import Template, parse_template
from server import db
from server.errors import Invalid, NotFound
from server.runtime import Runtime

MAX_HEADERS = 16_384  # Excel's column limit
MAX_LABEL = 1_000
MIN_OVERLAP = 0.8  # headers both layouts have, over the longer one's header count
MEMORIES_PER_TEMPLATE = 200  # beyond this the least recently confirmed are forgotten
PROPOSE_AFTER = 3
"""Distinct client addresses that must confirm a memory before it is proposed."""
ADDRESSES_KEPT = 100  # a memory counts at most this many addresses (rows); more only refresh it

_MEMORY = (db.MappingMemory.signature, db.MappingMemory.variant)


@dataclass(frozen=True)
class Remembered:
    addresses: int  # distinct addresses that confirmed this mapping for this layout
    proposed: bool  # whether it has enough of them to be proposed


@dataclass(frozen=True)
class _Digests:
    """Keyed digests under one template's mapping key; hex, so they are JSON and text."""

    key: bytes

    def _hex(self, purpose: str, text: str) -> str:
        message = f"{purpose}\x00{text}".encode("utf-8", "surrogatepass")
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def label(self, label: str) -> str:
        return self._hex("label", normalise(label))[:32]

    def layout(self, labels: Sequence[str]) -> str:
        return self._hex("layout", "\x1f".join(normalise(label) for label in labels))

    def mapping(self, stored: Mapping[str, str]) -> str:
        return self._hex("mapping", json.dumps(sorted(stored.items())))

    def address(self, host: str) -> str:
        return self._hex("address", counted_address(host))


def counted_address(host: str) -> str:
    """What counts as one address: an IPv4 address, or an IPv6 /64 (one network's hosts,
    which a single machine can hop between at will); anything else as it is."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def remember(
    rt: Runtime,
    template_id: str,
    headers: Sequence[str],
    mapping: Mapping[str, str],
    address: str,
    claim: Callable[[Session], None] | None = None,
) -> Remembered:
    """Count `address`'s confirmation of the mapping {field name: header label} for these
    headers. `claim` runs in the same transaction (the import that vouches for it)."""
    labels = checked_headers(headers)

    def once() -> Remembered:
        with rt.sessions.begin() as session:
            template, digests = _template(rt, session, template_id)
            stored = _checked_mapping(mapping, labels, template, digests)
            if claim is not None:
                claim(session)
            return _confirm(session, template_id, digests, labels, stored, address)

    try:
        return once()
    except IntegrityError:  # the same address confirmed it at the same moment: counted once
        return once()


def _confirm(
    session: Session,
    template_id: str,
    digests: _Digests,
    labels: list[str],
    stored: dict[str, str],
    address: str,
) -> Remembered:
    signature, variant = digests.layout(labels), digests.mapping(stored)
    voter = digests.address(address)
    now = db.utcnow()
    this = (
        db.MappingMemory.template_id == template_id,
        db.MappingMemory.signature == signature,
        db.MappingMemory.variant == variant,
    )
    # Written first, so on SQLite the rest of the transaction holds the write lock.
    session.execute(update(db.MappingMemory).where(*this).values(confirmed_at=now))
    voters = set(session.scalars(select(db.MappingMemory.address).where(*this)))
    if voter not in voters and len(voters) < ADDRESSES_KEPT:
        session.add(
            db.MappingMemory(
                template_id=template_id,
                signature=signature,
                variant=variant,
                address=voter,
                header_digests=[digests.label(label) for label in labels],
                mapping=stored,
                confirmed_at=now,
            )
        )
        session.flush()
        if not voters:
            _forget_least_recent(session, template_id)
        voters.add(voter)
    return Remembered(len(voters), len(voters) >= PROPOSE_AFTER)


def _forget_least_recent(session: Session, template_id: str) -> None:
    """Keep the template's MEMORIES_PER_TEMPLATE most recently confirmed memories."""
    older = session.execute(
        select(*_MEMORY)
        .where(db.MappingMemory.template_id == template_id)
        .group_by(*_MEMORY)
        .order_by(
            func.max(db.MappingMemory.confirmed_at).desc(), func.max(db.MappingMemory.id).desc()
        )
        .offset(MEMORIES_PER_TEMPLATE)
    ).all()
    if older:
        session.execute(
            delete(db.MappingMemory).where(
                db.MappingMemory.template_id == template_id,
                tuple_(*_MEMORY).in_([tuple(row) for row in older]),
            )
        )


def recall(rt: Runtime, template_id: str, headers: Sequence[str]) -> dict[str, str] | None:
    """{header label: field name} for these headers from a memory confirmed by enough
    addresses: one of exactly this layout, else one whose headers overlap enough; the
    most-confirmed first. Only labels these headers hold are answered."""
    labels = checked_headers(headers)
    with rt.sessions() as session:
        _, digests = _template(rt, session, template_id)
        signature = digests.layout(labels)
        asked: dict[str, str] = {}
        for label in labels:
            asked.setdefault(digests.label(label), label)
        addresses = func.count(db.MappingMemory.id)
        candidates = session.execute(
            select(db.MappingMemory.signature, func.min(db.MappingMemory.id))
            .where(db.MappingMemory.template_id == template_id)
            .group_by(*_MEMORY)
            .having(addresses >= PROPOSE_AFTER)
            .order_by(
                case((db.MappingMemory.signature == signature, 0), else_=1),
                addresses.desc(),
                func.max(db.MappingMemory.confirmed_at).desc(),
            )
        ).all()
        for theirs, first in candidates:
            memory = session.get_one(db.MappingMemory, first)
            if theirs != signature:
                shared = set(memory.header_digests)
                if len(shared & asked.keys()) < MIN_OVERLAP * max(len(asked), len(shared)):
                    continue
            kept = {asked[d]: str(field) for d, field in memory.mapping.items() if d in asked}
            if kept:
                return kept
    return None


def _template(rt: Runtime, session: Session, template_id: str) -> tuple[Template, _Digests]:
    row = session.get(db.Template, template_id)
    if row is None:
        raise NotFound(f"Template {template_id} does not exist.")
    org = session.get_one(db.Organisation, row.org_id)
    key = rt.vault.mapping_key(org.id, org.wrapped_key, row.id)
    return parse_template(row.schema), _Digests(key)


def checked_headers(headers: Any) -> list[str]:
    if not isinstance(headers, list | tuple) or not all(isinstance(h, str) for h in headers):
        raise Invalid("headers must be a list of the file's column headers (strings).")
    if not 0 < len(headers) <= MAX_HEADERS:
        raise Invalid(f"headers must hold between 1 and {MAX_HEADERS} column headers.")
    if any(len(h) > MAX_LABEL for h in headers):
        raise Invalid(f"A column header may be at most {MAX_LABEL} characters long.")
    return list(headers)


def _checked_mapping(
    mapping: Any, labels: list[str], template: Template, digests: _Digests
) -> dict[str, str]:
    """{field: header} as confirmed -> {header digest: field} as stored; every name checked."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise Invalid("mapping must be an object of field name -> column header, not empty.")
    stored: dict[str, str] = {}
    for field, header in mapping.items():
        if field not in template.field_names:
            raise Invalid(f'"{field}" is not a field of the template.')
        if not isinstance(header, str) or header not in labels:
            raise Invalid(f'Field "{field}" is mapped to a column the headers do not have.')
        digest = digests.label(header)
        if digest in stored:
            raise Invalid(f'Column "{header}" is mapped to more than one field.')
        stored[digest] = field
    return stored
