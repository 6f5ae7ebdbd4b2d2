"""The host page's rows: what the importer page hands to the client's page, and the
acknowledgement that settles those deliveries (destinations/host_page.py).

The importer page asks with the import's upload token once the import is submitted; the
rows are the server's own (re-validated, sealed) batches as JSON, the same values a webhook
is sent. The page's acknowledgement marks every host-page delivery of the import delivered;
without one they stay undelivered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import destinations
from destinations.rows import rows_json
from server import attempts, db, imports, settle
from server.batches import load_batch
from server.errors import Invalid, NotFound
from server.runtime import Runtime


@dataclass(frozen=True)
class HandOff:
    """The rows of an import for its host page."""

    import_id: str
    rows: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"importId": self.import_id, "rows": self.rows, "total": len(self.rows)}


def relayed_kinds() -> tuple[str, ...]:
    return tuple(k for k in destinations.kinds() if destinations.spec(k).relayed)


def host_page_cap(rt: Runtime, session: Session, template_id: str) -> int | None:
    """The row cap of the template's host-page destination (the smallest, if several);
    None when the template has none."""
    caps = []
    for row in _relayed(session, template_id):
        org = session.get(db.Organisation, row.org_id)
        if org is None:
            continue
        config = rt.vault.open_config(org.id, org.wrapped_key, row.id, row.sealed_config)
        caps.append(int(destinations.spec(row.kind).parse(config).max_rows))
    return min(caps) if caps else None


def _relayed(session: Session, template_id: str) -> list[db.Destination]:
    return list(
        session.scalars(
            select(db.Destination).where(
                db.Destination.template_id == template_id,
                db.Destination.enabled.is_(True),
                db.Destination.deleted_at.is_(None),
                db.Destination.kind.in_(relayed_kinds()),
            )
        )
    )


def _deliveries(session: Session, imp: db.Import) -> list[db.Delivery]:
    return list(
        session.scalars(
            select(db.Delivery)
            .join(db.Destination, db.Destination.id == db.Delivery.destination_id)
            .where(db.Delivery.import_id == imp.id, db.Destination.kind.in_(relayed_kinds()))
            .order_by(db.Delivery.seq)
        )
    )


def rows_for_page(rt: Runtime, import_id: str, token: str) -> HandOff:
    with rt.sessions() as session:
        imp = imports.authorise(session, import_id, token)
        _submitted(imp)
        pending = _deliveries(session, imp)
        if not pending:
            raise NotFound("This import has no host-page destination to hand rows to.")
        cap = host_page_cap(rt, session, imp.template_id)
        if cap is not None and imp.row_count > cap:
            raise Invalid(
                f"This import has {imp.row_count:,} rows; the page can be handed at most "
                f"{cap:,}. Split the file, or ask the site's owner to raise the limit."
            )
        rows: list[dict[str, Any]] = []
        for seq in sorted({d.seq for d in pending}):
            table = load_batch(rt, session, imp, seq)
            text = rows_json(table)
            rows.extend(json.loads(text) if text is not None else table.to_pylist())
    return HandOff(import_id, rows)


def acknowledge(rt: Runtime, import_id: str, token: str) -> int:
    """The page has the rows: settle the import's host-page deliveries. Returns how many
    were settled now (0 on a repeated acknowledgement)."""
    started = db.utcnow()
    settled = 0
    with rt.sessions.begin() as session:
        imp = imports.authorise(session, import_id, token)
        _submitted(imp)
        pending = [d for d in _deliveries(session, imp) if d.status != db.Delivery.Status.DELIVERED]
        if not pending and not _deliveries(session, imp):
            raise NotFound("This import has no host-page destination to acknowledge.")
        for delivery in pending:
            settle.delivered(session, delivery.id, started, attempts.NOTHING_SAID)
            settled += 1
    return settled


def _submitted(imp: db.Import) -> None:
    if imp.status == imports.ImportStatus.UPLOADING:
        raise Invalid("Submit the import before handing its rows to the page.")
