"""Organisations, templates and destinations: what a client configures."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

import destinations
from destinations.errors import DeliveryError
from pipeline.template import parse_template
from server import db
from server.errors import Invalid, NotFound
from server.runtime import Runtime


def create_organisation(rt: Runtime, name: str, allowed_origins: list[str]) -> db.Organisation:
    org_id = db.new_id("org")
    org = db.Organisation(
        id=org_id,
        name=name,
        publishable_key="pk_" + secrets.token_urlsafe(24),
        allowed_origins=[o.rstrip("/") for o in allowed_origins],
        wrapped_key=rt.vault.new_org_key(org_id),
    )
    with rt.sessions.begin() as session:
        session.add(org)
    return org


def create_template(rt: Runtime, org: db.Organisation, schema: dict[str, Any]) -> db.Template:
    parsed = parse_template(schema)  # refuses what the engine cannot enforce
    row = db.Template(id=db.new_id("tpl"), org_id=org.id, name=parsed.name, schema=schema)
    with rt.sessions.begin() as session:
        session.add(row)
    return row


def create_destination(
    rt: Runtime,
    org: db.Organisation,
    template: db.Template,
    kind: str,
    name: str,
    config: dict[str, Any],
) -> db.Destination:
    try:  # the settings parse and check() passes: the address is one loadbay may reach
        destinations.validate(kind, config, rt.destination_context)
    except DeliveryError as exc:
        raise Invalid(f"The destination cannot be used: {exc}") from exc
    destination_id = db.new_id("dst")
    row = db.Destination(
        id=destination_id,
        org_id=org.id,
        template_id=template.id,
        kind=kind,
        name=name,
        sealed_config=rt.vault.seal_config(org.id, org.wrapped_key, destination_id, config),
    )
    with rt.sessions.begin() as session:
        session.add(row)
    return row


def organisation_by_key(rt: Runtime, publishable_key: str) -> db.Organisation:
    with rt.sessions() as session:
        org = session.scalar(
            select(db.Organisation).where(db.Organisation.publishable_key == publishable_key)
        )
    if org is None:
        raise NotFound("Unknown publishable key. Check the key in your embed code.")
    return org


def template_for(rt: Runtime, org: db.Organisation, template_id: str) -> db.Template:
    with rt.sessions() as session:
        row = session.get(db.Template, template_id)
    if row is None or row.org_id != org.id:
        raise NotFound(f"Template {template_id} does not exist.")
    return row
