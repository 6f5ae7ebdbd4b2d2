"""Templates: a Table Schema + `x-loadbay` document per template, versioned (every change
is a new version; an import records the one it used), deleted softly and restorable for
RESTORE_DAYS."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from pipeline.errors import PipelineError
from pipeline.template import parse_template
from server import audit, db
from server.errors import Conflict, Invalid, NotFound
from server.runtime import Runtime

RESTORE_DAYS = 30
MAX_PAGE = 100

T = TypeVar("T", db.Template, db.Destination, db.Import)


class RestoreWindowPassed(Conflict):
    code = "restore-window-passed"


class InvalidTemplate(Invalid):
    code = "invalid-template"


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    next_cursor: str | None


def paginate(
    session: Session,
    query: Select[Any],
    model: type[T],
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
) -> Page:
    """Keyset pagination in creation order (or newest first); the cursor is opaque (the
    last item's creation time and id) and stays right while items are added or deleted."""
    if cursor:
        created, last_id = decode_cursor(cursor)
        if newest_first:
            after = or_(
                model.created_at < created, and_(model.created_at == created, model.id < last_id)
            )
        else:
            after = or_(
                model.created_at > created, and_(model.created_at == created, model.id > last_id)
            )
        query = query.where(after)
    order = (
        (model.created_at.desc(), model.id.desc()) if newest_first else (model.created_at, model.id)
    )
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)


def encode_cursor(created: dt.datetime, item_id: str) -> str:
    raw = json.dumps([created.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, item_id = json.loads(raw)
        when = dt.datetime.fromisoformat(created)
        if not isinstance(item_id, str) or when.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Invalid("The cursor is not one this API gave out.") from exc
    return when, item_id


def template_name(schema: Any) -> str:
    """A template's name (its Table Schema `name`), once the engine has parsed it."""
    if not isinstance(schema, dict):
        raise InvalidTemplate("A template is a Table Schema JSON object.")
    try:
        return parse_template(schema).name  # refuses what the engine cannot enforce
    except PipelineError as exc:
        raise InvalidTemplate(f"The template is not valid: {exc}") from exc


def retention_days(rt: Runtime, org: db.Organisation, schema: dict[str, Any]) -> int:
    """How long an import of this template keeps its rows, in days (0: passthrough): the
    template's `x-loadbay.retentionDays`, else the organisation's default, else the
    operator's (`LOADBAY_RETENTION_DAYS`)."""
    own = parse_template(schema).retention_days
    return default_retention_days(rt, org) if own is None else own


def default_retention_days(rt: Runtime, org: db.Organisation) -> int:
    """The organisation's default retention, else the operator's: what a template without
    its own `retentionDays` keeps (and what the organisation's settings show)."""
    return org.retention_days or rt.settings.retention_days


def create_template(
    rt: Runtime,
    org_id: str,
    schema: dict[str, Any],
    *,
    actor: str = "cli",
    address: str | None = None,
) -> db.Template:
    name = template_name(schema)
    now = db.utcnow()
    row = db.Template(
        id=db.new_id("tpl"),
        org_id=org_id,
        name=name,
        schema=schema,
        version=1,
        created_at=now,
        updated_at=now,
    )
    with rt.sessions.begin() as session:
        session.add(row)
        session.flush()
        session.add(db.TemplateVersion(template_id=row.id, version=1, schema=schema))
        _audit(session, "template.created", row, actor, address)
    return row


def _audit(
    session: Session, action: str, row: db.Template, actor: str, address: str | None
) -> None:
    """Ids and the version only: a schema's enum or pattern is the client's, not ours to copy."""
    audit.record(
        session,
        action=action,
        actor=actor,
        org_id=row.org_id,
        target=row.id,
        address=address,
        detail={"version": row.version},
    )


def _owned(session: Session, org_id: str, template_id: str) -> db.Template:
    row = session.get(db.Template, template_id)
    if row is None or row.org_id != org_id:
        raise NotFound(f"Template {template_id} does not exist.")
    return row


def get_template(rt: Runtime, org_id: str, template_id: str) -> db.Template:
    with rt.sessions() as session:
        return _owned(session, org_id, template_id)


def list_templates(
    rt: Runtime, org_id: str, limit: int, cursor: str | None, include_deleted: bool = False
) -> Page:
    query = select(db.Template).where(db.Template.org_id == org_id)
    if not include_deleted:
        query = query.where(db.Template.deleted_at.is_(None))
    with rt.sessions() as session:
        return paginate(session, query, db.Template, limit, cursor)


def replace_template(
    rt: Runtime,
    org_id: str,
    template_id: str,
    schema: dict[str, Any],
    *,
    actor: str = "cli",
    address: str | None = None,
) -> db.Template:
    """A new version: the schema the importer serves from now on; imports under way keep
    the version they started with."""
    name = template_name(schema)
    with rt.sessions.begin() as session:
        row = _live(session, org_id, template_id)
        _new_version(session, row, schema, name, actor, address)
        return row


def _live(session: Session, org_id: str, template_id: str) -> db.Template:
    row = _owned(session, org_id, template_id)
    if row.deleted_at is not None:
        raise Conflict(f"Template {template_id} is deleted; restore it first.")
    return row


def _new_version(
    session: Session,
    row: db.Template,
    schema: dict[str, Any],
    name: str,
    actor: str,
    address: str | None,
) -> None:
    row.version += 1
    row.schema, row.name, row.updated_at = schema, name, db.utcnow()
    session.add(db.TemplateVersion(template_id=row.id, version=row.version, schema=schema))
    _audit(session, "template.updated", row, actor, address)


# --- the editor's draft ---------------------------------------------------------------------


def save_draft(rt: Runtime, org_id: str, template_id: str, schema: dict[str, Any]) -> db.Template:
    """Keep `schema` as the template's draft, checked as a version would be; nothing
    serves it until `publish_draft`. A draft equal to the current schema is no draft. The
    draft remembers the version it was begun on."""
    template_name(schema)
    with rt.sessions.begin() as session:
        row = _live(session, org_id, template_id)
        if schema == row.schema:
            row.draft, row.draft_base = None, None
        else:
            if row.draft is None:
                row.draft_base = row.version
            row.draft = schema
        return row


def publish_draft(
    rt: Runtime, org_id: str, template_id: str, *, actor: str = "cli", address: str | None = None
) -> db.Template | None:
    """The draft as one new version (audited), or None, with no version and no audit
    entry, when there is no draft or it holds no change. A version made since the draft
    was begun (through the API, `loadbay apply` or another editor) refuses the Save: the
    draft would silently undo it."""
    with rt.sessions.begin() as session:
        row = _live(session, org_id, template_id)
        draft, base = row.draft, row.draft_base
        if draft is not None and base is not None and base != row.version:
            raise Conflict(
                f"The template changed since these changes were begun (version {base}, now "
                f"version {row.version}), so saving them would undo that change. Discard "
                "them and make them again on the current version."
            )
        row.draft, row.draft_base = None, None
        if draft is None or draft == row.schema:
            return None
        _new_version(session, row, draft, template_name(draft), actor, address)
        return row


def discard_draft(rt: Runtime, org_id: str, template_id: str) -> None:
    with rt.sessions.begin() as session:
        row = _owned(session, org_id, template_id)
        row.draft, row.draft_base = None, None


def versions(rt: Runtime, org_id: str, template_id: str) -> list[db.TemplateVersion]:
    """Every schema the template has had, newest first."""
    with rt.sessions() as session:
        _owned(session, org_id, template_id)
        return list(
            session.scalars(
                select(db.TemplateVersion)
                .where(db.TemplateVersion.template_id == template_id)
                .order_by(db.TemplateVersion.version.desc())
            )
        )


def version(rt: Runtime, org_id: str, template_id: str, number: int) -> db.TemplateVersion:
    with rt.sessions() as session:
        _owned(session, org_id, template_id)
        found = session.scalar(
            select(db.TemplateVersion).where(
                db.TemplateVersion.template_id == template_id,
                db.TemplateVersion.version == number,
            )
        )
    if found is None:
        raise NotFound(f"Template {template_id} has no version {number}.")
    return found


def delete_template(
    rt: Runtime, org_id: str, template_id: str, *, actor: str = "cli", address: str | None = None
) -> db.Template:
    with rt.sessions.begin() as session:
        row = _owned(session, org_id, template_id)
        if row.deleted_at is None:
            row.deleted_at = db.utcnow()
            _audit(session, "template.deleted", row, actor, address)
        return row


def restore_template(
    rt: Runtime, org_id: str, template_id: str, *, actor: str = "cli", address: str | None = None
) -> db.Template:
    with rt.sessions.begin() as session:
        row = _owned(session, org_id, template_id)
        restorable(row.deleted_at, f"Template {template_id}")
        if row.deleted_at is not None:
            row.deleted_at = None
            _audit(session, "template.restored", row, actor, address)
        return row


def restorable(deleted_at: dt.datetime | None, what: str) -> None:
    if deleted_at is None:
        return
    if db.utcnow() - deleted_at > dt.timedelta(days=RESTORE_DAYS):
        raise RestoreWindowPassed(
            f"{what} was deleted more than {RESTORE_DAYS} days ago and cannot be restored."
        )


def live_template(session: Session, org_id: str, template_id: str) -> db.Template:
    """A template the importer may serve: the organisation's and not deleted."""
    row = session.get(db.Template, template_id)
    if row is None or row.org_id != org_id or row.deleted_at is not None:
        raise NotFound(f"Template {template_id} does not exist.")
    return row
