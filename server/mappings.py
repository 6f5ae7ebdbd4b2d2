"""Remembered column mappings: what users confirmed for a header layout, proposed next time.

Per template there is one memory per header signature (the normalised headers, in
order). A file whose headers differ a little gets the most-used memory that shares 80%
of the headers (one in five renamed, dropped or added). Header labels are metadata,
never cell values; only the labels of mapped columns are kept readable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.matching import header_signature, normalise
from pipeline.template import Template, parse_template
from server import db
from server.errors import Invalid, NotFound
from server.runtime import Runtime

MAX_HEADERS = 16_384  # Excel's column limit
MAX_LABEL = 1_000
MIN_OVERLAP = 0.8  # headers both layouts have, over the longer one's header count
MEMORIES_PER_TEMPLATE = 200  # beyond this the least recently confirmed are forgotten


@dataclass(frozen=True)
class Remembered:
    signature: str
    uses: int


def remember(
    rt: Runtime,
    template_id: str,
    headers: Sequence[str],
    mapping: Mapping[str, str],
    claim: Callable[[Session], None] | None = None,
) -> Remembered:
    """Keep the mapping {field name: header label} a user confirmed for these headers.

    `claim` runs in the same transaction (the import that vouches for this mapping).
    """
    labels = checked_headers(headers)
    signature = header_signature(labels)

    def once() -> Remembered:
        with rt.sessions.begin() as session:
            template = _template(session, template_id)
            stored = _checked_mapping(mapping, labels, template)
            if claim is not None:
                claim(session)
            return Remembered(signature, _upsert(session, template_id, signature, labels, stored))

    try:
        return once()
    except IntegrityError:  # a concurrent request inserted this layout first: count on it
        return once()


def recall(rt: Runtime, template_id: str, headers: Sequence[str]) -> dict[str, str] | None:
    """{header label: field name} for these headers: the memory of exactly this layout,
    else the most-used one whose headers overlap enough; only labels present here."""
    labels = checked_headers(headers)
    exact = recall_exact(rt, template_id, header_signature(labels))
    if exact is not None:
        return exact
    digests = set(_digests(labels))
    present = {normalise(label) for label in labels}
    with rt.sessions() as session:
        candidates = session.scalars(
            select(db.MappingMemory)
            .where(db.MappingMemory.template_id == template_id)
            .order_by(db.MappingMemory.uses.desc(), db.MappingMemory.updated_at.desc())
        )
        for memory in candidates:
            theirs = set(memory.header_digests)
            if len(digests & theirs) < MIN_OVERLAP * max(len(digests), len(theirs)):
                continue
            kept = {k: v for k, v in memory.mapping.items() if normalise(k) in present}
            if kept:
                return kept
    return None


def recall_exact(rt: Runtime, template_id: str, signature: str) -> dict[str, str] | None:
    with rt.sessions() as session:
        memory = session.scalar(
            select(db.MappingMemory).where(
                db.MappingMemory.template_id == template_id,
                db.MappingMemory.signature == signature,
            )
        )
        return dict(memory.mapping) if memory is not None else None


def _upsert(
    session: Session, template_id: str, signature: str, labels: list[str], stored: dict[str, str]
) -> int:
    """Count one more confirmation atomically (concurrent requests lose no use)."""
    now = db.utcnow()
    uses = session.scalar(
        update(db.MappingMemory)
        .where(db.MappingMemory.template_id == template_id, db.MappingMemory.signature == signature)
        .values(mapping=stored, uses=db.MappingMemory.uses + 1, updated_at=now)
        .returning(db.MappingMemory.uses)
    )
    if uses is not None:
        return int(uses)
    session.add(
        db.MappingMemory(
            template_id=template_id,
            signature=signature,
            header_digests=_digests(labels),
            mapping=stored,
            uses=1,
            updated_at=now,
        )
    )
    session.flush()
    recent = (
        select(db.MappingMemory.id)
        .where(db.MappingMemory.template_id == template_id)
        .order_by(db.MappingMemory.updated_at.desc(), db.MappingMemory.id.desc())
        .limit(MEMORIES_PER_TEMPLATE)
    )
    session.execute(
        delete(db.MappingMemory).where(
            db.MappingMemory.template_id == template_id, db.MappingMemory.id.not_in(recent)
        )
    )
    return 1


def _template(session: Session, template_id: str) -> Template:
    row = session.get(db.Template, template_id)
    if row is None:
        raise NotFound(f"Template {template_id} does not exist.")
    return parse_template(row.schema)


def _digests(labels: list[str]) -> list[str]:
    """Per-label digests of the normalised headers: enough to compare layouts, not text
    to read (though a dictionary of common labels would find those)."""
    return [hashlib.sha256(normalise(label).encode()).hexdigest()[:16] for label in labels]


def checked_headers(headers: Any) -> list[str]:
    if not isinstance(headers, list | tuple) or not all(isinstance(h, str) for h in headers):
        raise Invalid("headers must be a list of the file's column headers (strings).")
    if not 0 < len(headers) <= MAX_HEADERS:
        raise Invalid(f"headers must hold between 1 and {MAX_HEADERS} column headers.")
    if any(len(h) > MAX_LABEL for h in headers):
        raise Invalid(f"A column header may be at most {MAX_LABEL} characters long.")
    return list(headers)


def _checked_mapping(mapping: Any, labels: list[str], template: Template) -> dict[str, str]:
    """{field: header} as confirmed -> {header: field} as stored; every name checked."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise Invalid("mapping must be an object of field name -> column header, not empty.")
    stored: dict[str, str] = {}
    for field, header in mapping.items():
        if field not in template.field_names:
            raise Invalid(f'"{field}" is not a field of the template.')
        if not isinstance(header, str) or header not in labels:
            raise Invalid(f'Field "{field}" is mapped to a column the headers do not have.')
        if header in stored:
            raise Invalid(f'Column "{header}" is mapped to more than one field.')
        stored[header] = field
    return stored
