"""Organisation offboarding: everything an organisation has, exported; then all of it shredded.

`export_organisation` writes one directory: every retained import's rows (through
server.exports, one file each), every template with all its versions, the destinations
with their secrets redacted (each kind's `redact`), the events, and a manifest listing
every file with its size and SHA-256. It is built beside the target and renamed into
place at the end, so the directory exists only complete.

`delete_organisation` shreds, in one transaction: every blob and wrapped data key, every
batch, unique-value digest, delivery and attempt, the events, mapping memories, template
versions, templates, destinations (their sealed secrets), secret and idempotency keys, and
the organisation row with its wrapped organisation key. What stays is a tombstone: the
id, a SHA-256 of the name, when, by whom, and counts. The blobs go first, inside the
transaction: should it then fail, the rows (and keys) are all still there, some of the
blobs are not, and running the deletion again completes it. Copies in backups of the metadata
database or the blob store are outside loadbay's reach: shredding counts only once those
age out too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server import db, events, exports, imports
from server import destinations as server_destinations
from server.errors import Gone, Invalid, NotFound
from server.models import accounts
from server.runtime import Runtime

log = logging.getLogger("loadbay.offboarding")

EXPORT_FORMAT = "loadbay-organisation-export/1"
ORGANISATION_EXPORTED = "organisation.exported"
# Every table delete_organisation empties of the organisation's rows, children first; the
# tests fail when a table exists that is neither here nor the tombstones'.
SHREDDED = (
    # accounts: the organisation's memberships, invitations, sessions and security rules;
    # a user who belonged to no other organisation goes too, with their codes and failures
    "user_sessions",
    "invitations",
    "org_security",
    "recovery_codes",
    "sign_in_failures",
    "memberships",
    "users",
    "delivery_attempts",
    "deliveries",
    "batches",
    "unique_values",
    "unique_sets",
    "events",
    "imports",
    "mapping_memories",
    "destinations",
    "template_versions",
    "templates",
    "secret_keys",
    "idempotency_keys",
    "organisations",
)


@dataclass(frozen=True)
class Exported:
    directory: Path
    imports: int  # imports whose rows were written
    rows: int
    files: int  # files listed in the manifest


def export_organisation(
    rt: Runtime, org_id: str, directory: Path, fmt: str = "csv", *, actor: str = "cli"
) -> Exported:
    """Write everything `org_id` has to `directory` (which must not exist yet). Errors:
    NotFound (no such organisation), Invalid (the directory exists, or the format is not
    one exports write), or what reading the rows raised (a KMS key refusing): then no
    directory is left behind."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in exports.WRITERS:
        raise Invalid(f"Choose an export format among {', '.join(exports.WRITERS)}, not {fmt!r}.")
    target = directory.resolve()
    if target.exists():
        raise Invalid(f"{directory} exists already: give a directory that does not, yet.")
    target.parent.mkdir(parents=True, exist_ok=True)
    org = _organisation(rt, org_id)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        writer = _Writer(work)
        imported = _export_imports(rt, org, writer, fmt)
        writer.json("templates.json", _templates(rt, org.id))
        writer.json("destinations.json", _destinations(rt, org))
        writer.ndjson("events.ndjson", _events(rt, org.id))
        manifest = {
            "format": EXPORT_FORMAT,
            "exported_at": db.utcnow().isoformat(),
            "organisation": _organisation_json(org),
            "imports": imported,
            "files": writer.files,
        }
        writer.json("manifest.json", manifest, listed=False)
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    with rt.sessions.begin() as session:
        rows = sum(i["rows"] for i in imported if i["file"] is not None)
        events.record(
            session,
            org_id=org.id,
            kind=ORGANISATION_EXPORTED,
            actor=actor,
            detail={"imports": len(imported), "rows": rows, "format": fmt},
        )
    exported = [i for i in imported if i["file"] is not None]
    log.info("organisation %s exported by %s: %d imports", org.id, actor, len(exported))
    return Exported(target, len(exported), rows, len(writer.files))


def delete_organisation(
    rt: Runtime, org_id: str, *, actor: str = "cli"
) -> db.OrganisationTombstone:
    """Shred everything `org_id` has and leave its tombstone. NotFound for an unknown id,
    Gone (naming when and by whom) for one deleted already."""
    with rt.sessions.begin() as session:
        org = session.get(db.Organisation, org_id, with_for_update=True)
        if org is None:
            raise _unknown(session, org_id)
        detail = _counts(session, org_id)
        tombstone = db.OrganisationTombstone(
            id=org.id,
            name_hash=hashlib.sha256(org.name.encode()).hexdigest(),
            created_at=org.created_at,
            deleted_at=db.utcnow(),
            actor=actor,
            detail=detail,
        )
        # Blob keys are <org id>/<import id>/...: one prefix holds all of them.
        rt.blobs.delete_prefix(f"{org.id}/")
        for statement in _shredding(org.id, _sole_members(session, org.id)):
            session.execute(statement.execution_options(synchronize_session=False))
        session.add(tombstone)
    log.info("organisation %s deleted by %s", org_id, actor)
    return tombstone


# --- export, piece by piece ---------------------------------------------------------------


class _Writer:
    """Files under one directory, 0600, each listed with its size and SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[dict[str, Any]] = []

    def open(self, name: str) -> Any:
        path = self.root / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    def listed(self, name: str) -> None:
        digest = hashlib.sha256()
        path = self.root / name
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        self.files.append(
            {"path": name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}
        )

    def json(self, name: str, value: Any, *, listed: bool = True) -> None:
        with self.open(name) as fh:
            fh.write(json.dumps(value, indent=2, default=_jsonable).encode() + b"\n")
        if listed:
            self.listed(name)

    def ndjson(self, name: str, values: list[dict[str, Any]]) -> None:
        with self.open(name) as fh:
            for value in values:
                fh.write(json.dumps(value, default=_jsonable).encode() + b"\n")
        self.listed(name)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _organisation(rt: Runtime, org_id: str) -> db.Organisation:
    with rt.sessions() as session:
        org = session.get(db.Organisation, org_id)
        if org is None:
            raise _unknown(session, org_id)
        return org


def _unknown(session: Session, org_id: str) -> NotFound | Gone:
    tombstone = session.get(db.OrganisationTombstone, org_id)
    if tombstone is None:
        return NotFound(f"Organisation {org_id} does not exist.")
    return Gone(
        f"Organisation {org_id} was deleted on {tombstone.deleted_at:%Y-%m-%d at %H:%M} UTC "
        f"by {tombstone.actor}; nothing of it is stored any more."
    )


def _organisation_json(org: db.Organisation) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "created_at": org.created_at,
        "allowed_origins": list(org.allowed_origins),
        "retention_days": org.retention_days,
        "invalid_row_policy": org.invalid_row_policy,
        "kms_key_arn": org.kms_key_arn,
    }


def _export_imports(
    rt: Runtime, org: db.Organisation, writer: _Writer, fmt: str
) -> list[dict[str, Any]]:
    """Each import's metadata and delivery counts; the rows of those still retained, one
    file each."""
    listed: list[dict[str, Any]] = []
    with rt.sessions() as session:
        rows = session.scalars(
            select(db.Import)
            .where(db.Import.org_id == org.id)
            .order_by(db.Import.created_at, db.Import.id)
        )
        for imp in rows:
            state = imports.import_status(session, imp)
            listed.append(
                {
                    "id": imp.id,
                    "template_id": imp.template_id,
                    "template_version": imp.template_version,
                    "file_name": imp.file_name,
                    "status": state.status.value,
                    "rows": imp.row_count,
                    "batches": imp.batch_count,
                    "deliveries": state.deliveries,
                    "created_at": imp.created_at,
                    "expires_at": imp.expires_at,
                    "file": None,
                    "retained": imp.wrapped_data_key is not None,
                }
            )
    for entry in listed:
        if entry.pop("retained"):
            name = f"imports/{entry['id']}.{fmt}"
            with writer.open(name) as fh:
                entry["rows"] = exports.export_import(rt, entry["id"], fmt, fh, org_id=org.id)
            writer.listed(name)
            entry["file"] = name
    return listed


def _templates(rt: Runtime, org_id: str) -> list[dict[str, Any]]:
    with rt.sessions() as session:
        found = list(
            session.scalars(
                select(db.Template)
                .where(db.Template.org_id == org_id)
                .order_by(db.Template.created_at, db.Template.id)
            )
        )
        versions: dict[str, list[dict[str, Any]]] = {t.id: [] for t in found}
        for version in session.scalars(
            select(db.TemplateVersion)
            .where(db.TemplateVersion.template_id.in_(list(versions)))
            .order_by(db.TemplateVersion.template_id, db.TemplateVersion.version)
        ):
            versions[version.template_id].append(
                {
                    "version": version.version,
                    "schema": version.schema,
                    "created_at": version.created_at,
                }
            )
    return [
        {
            "id": t.id,
            "name": t.name,
            "version": t.version,
            "created_at": t.created_at,
            "deleted_at": t.deleted_at,
            "versions": versions[t.id] or [{"version": t.version, "schema": t.schema}],
        }
        for t in found
    ]


def _destinations(rt: Runtime, org: db.Organisation) -> list[dict[str, Any]]:
    with rt.sessions() as session:
        ids = list(
            session.scalars(
                select(db.Destination.id)
                .where(db.Destination.org_id == org.id)
                .order_by(db.Destination.created_at, db.Destination.id)
            )
        )
    listed: list[dict[str, Any]] = []
    for destination_id in ids:
        view = server_destinations.get_destination(rt, org, destination_id)
        row = view.row
        listed.append(
            {
                "id": row.id,
                "kind": row.kind,
                "name": row.name,
                "template_id": row.template_id,
                "enabled": row.enabled,
                "disabled_reason": row.disabled_reason,
                "config": view.config,  # secrets redacted by the kind: {"set": true}
                "created_at": row.created_at,
                "deleted_at": row.deleted_at,
            }
        )
    return listed


def _events(rt: Runtime, org_id: str) -> list[dict[str, Any]]:
    with rt.sessions() as session:
        return [
            {
                "id": e.id,
                "kind": e.kind,
                "import_id": e.import_id,
                "actor": e.actor,
                "at": e.at,
                "detail": dict(e.detail),
            }
            for e in session.scalars(
                select(db.Event).where(db.Event.org_id == org_id).order_by(db.Event.id)
            )
        ]


# --- deletion ----------------------------------------------------------------------------


def _counts(session: Session, org_id: str) -> dict[str, int]:
    def count(model: Any) -> int:
        return int(
            session.scalar(select(func.count()).select_from(model).where(model.org_id == org_id))
            or 0
        )

    return {
        "imports": count(db.Import),
        "templates": count(db.Template),
        "destinations": count(db.Destination),
        "secret_keys": count(db.SecretKey),
        "events": count(db.Event),
    }


def _sole_members(session: Session, org_id: str) -> list[str]:
    """Members of `org_id` who belong to no other organisation."""
    members = select(accounts.Membership.user_id).where(accounts.Membership.org_id == org_id)
    elsewhere = select(accounts.Membership.user_id).where(accounts.Membership.org_id != org_id)
    return list(
        session.scalars(
            select(accounts.User.id).where(
                accounts.User.id.in_(members), accounts.User.id.not_in(elsewhere)
            )
        )
    )


def _shredding(org_id: str, sole: list[str]) -> list[Any]:
    """The DELETE statements, children before parents (foreign keys hold throughout). The
    audit log (audit_entries, audit_head) is kept: it holds ids and actors, never a value,
    and deleting from a hash chain would break `loadbay audit verify` for everyone."""
    imports = select(db.Import.id).where(db.Import.org_id == org_id)
    deliveries = select(db.Delivery.id).where(db.Delivery.import_id.in_(imports))
    templates = select(db.Template.id).where(db.Template.org_id == org_id)
    a = accounts
    statements = {
        "user_sessions": delete(a.UserSession).where(
            (a.UserSession.org_id == org_id) | a.UserSession.user_id.in_(sole)
        ),
        "invitations": delete(a.Invitation).where(a.Invitation.org_id == org_id),
        "org_security": delete(a.OrgSecurity).where(a.OrgSecurity.org_id == org_id),
        "recovery_codes": delete(a.RecoveryCode).where(a.RecoveryCode.user_id.in_(sole)),
        "sign_in_failures": delete(a.SignInFailure).where(a.SignInFailure.user_id.in_(sole)),
        "memberships": delete(a.Membership).where(a.Membership.org_id == org_id),
        "users": delete(a.User).where(a.User.id.in_(sole)),
        "delivery_attempts": delete(db.DeliveryAttempt).where(
            db.DeliveryAttempt.delivery_id.in_(deliveries)
        ),
        "deliveries": delete(db.Delivery).where(db.Delivery.import_id.in_(imports)),
        "batches": delete(db.Batch).where(db.Batch.import_id.in_(imports)),
        "unique_values": delete(db.UniqueValue).where(db.UniqueValue.import_id.in_(imports)),
        "unique_sets": delete(db.UniqueSet).where(db.UniqueSet.import_id.in_(imports)),
        "events": delete(db.Event).where(db.Event.org_id == org_id),
        "imports": delete(db.Import).where(db.Import.org_id == org_id),
        "mapping_memories": delete(db.MappingMemory).where(
            db.MappingMemory.template_id.in_(templates)
        ),
        "destinations": delete(db.Destination).where(db.Destination.org_id == org_id),
        "template_versions": delete(db.TemplateVersion).where(
            db.TemplateVersion.template_id.in_(templates)
        ),
        "templates": delete(db.Template).where(db.Template.org_id == org_id),
        "secret_keys": delete(db.SecretKey).where(db.SecretKey.org_id == org_id),
        "idempotency_keys": delete(db.IdempotencyKey).where(db.IdempotencyKey.org_id == org_id),
        "organisations": delete(db.Organisation).where(db.Organisation.id == org_id),
    }
    return [statements[name] for name in SHREDDED]
