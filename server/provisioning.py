"""`loadbay apply`: declarative, idempotent provisioning from a YAML file a self-hoster keeps
in git: organisations (allowed origins, default retention, invalid-row policy), their
templates and destinations. Secrets never sit in the file: a setting written as
`{env: NAME}` is read from the environment variable NAME.

Things are matched by name: an organisation by its name, a template by its Table Schema
`name` within its organisation, a destination by its name within its template. `plan`
compares the file with what is stored and says what would change; `apply` makes those
changes through the same domain functions the management API calls (so every value is
checked as it would be there), in order, organisations first. Nothing is deleted: a thing
the file no longer names is left alone. A second run of the same file changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from server import db, orgs, templates
from server import destinations as dests
from server.errors import Invalid
from server.runtime import Runtime

MAX_FILE_BYTES = 4 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemplateIn(_Strict):
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    schema_file: str | None = Field(default=None, description="A Table Schema JSON file.")


class DestinationIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    template: str = Field(description="The template's name.")
    kind: str
    enabled: bool = True
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=dests.MAX_CONCURRENCY,
        description="Batches sent to it at once (absent: 4 for a new one, else unchanged).",
    )
    config: dict[str, Any] = Field(default_factory=dict)


class OrganisationIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    allowed_origins: list[str] = Field(default_factory=list)
    default_retention_days: int | None = Field(default=None, ge=1, le=365)
    invalid_row_policy: Literal["reject", "valid-only", "with-errors"] | None = None
    templates: list[TemplateIn] = Field(default_factory=list)
    destinations: list[DestinationIn] = Field(default_factory=list)


class ApplyFile(_Strict):
    organisations: list[OrganisationIn]


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "unchanged"]
    what: str  # "organisation Acme", "template Acme/contacts", ...
    detail: str = ""

    def line(self) -> str:
        return f"{self.action:9} {self.what}" + (f" ({self.detail})" if self.detail else "")


def load(path: Path, env: Mapping[str, str] | None = None) -> ApplyFile:
    """The file, checked, with every `{env: NAME}` replaced by its value; Invalid saying
    where (and which variable) when anything is wrong. Nothing is stored yet."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise Invalid(f"{path} cannot be read: {exc.strerror}.") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise Invalid(f"{path} is larger than {MAX_FILE_BYTES} bytes.")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise Invalid(f"{path} is not valid YAML: {exc}") from exc
    try:
        found = ApplyFile.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise Invalid(f"{path} does not describe organisations as expected: {where}.") from None
    env = os.environ if env is None else env
    for o, org in enumerate(found.organisations):
        for t, template in enumerate(org.templates):
            template.schema_ = _schema(path, template, f"organisations.{o}.templates.{t}")
        for d, destination in enumerate(org.destinations):
            destination.config = _resolved(
                destination.config, env, f"organisations.{o}.destinations.{d}.config"
            )
    return found


def _schema(path: Path, template: TemplateIn, where: str) -> dict[str, Any]:
    if (template.schema_ is None) == (template.schema_file is None):
        raise Invalid(f"{where}: give either schema or schema_file.")
    if template.schema_ is not None:
        return template.schema_
    file = (path.parent / str(template.schema_file)).resolve()
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Invalid(f"{where}: {file} is not a readable JSON file ({exc}).") from exc
    if not isinstance(schema, dict):
        raise Invalid(f"{where}: {file} holds no Table Schema object.")
    return schema


def _resolved(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"env"}:
            name = str(value["env"])
            if name not in env:
                raise Invalid(f"{where}: the environment variable {name} is not set.")
            return env[name]
        return {k: _resolved(v, env, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, env, f"{where}.{i}") for i, v in enumerate(value)]
    return value


def plan(rt: Runtime, wanted: ApplyFile) -> list[Change]:
    """What `apply` would do, without doing it."""
    return _walk(rt, wanted, write=False)


def apply(rt: Runtime, wanted: ApplyFile) -> list[Change]:
    """Make the stored configuration what the file says; what was done, in order."""
    return _walk(rt, wanted, write=True)


def _walk(rt: Runtime, wanted: ApplyFile, *, write: bool) -> list[Change]:
    changes: list[Change] = []
    for spec in wanted.organisations:
        org = _organisation(rt, spec.name)
        label = f"organisation {spec.name}"
        if org is None:
            changes.append(Change("create", label))
            if not write:
                changes += _new_children(spec)
                continue
            org = orgs.create_organisation(
                rt, spec.name, orgs.checked_origins(spec.allowed_origins)
            )
            differs = _settings_differ(org, spec)
        else:
            differs = _settings_differ(org, spec)
            changes.append(
                Change("update", label, ", ".join(differs))
                if differs
                else Change("unchanged", label)
            )
        if differs and write:
            orgs.update_settings(
                rt,
                org.id,
                allowed_origins=spec.allowed_origins,
                default_retention_days=spec.default_retention_days,
                invalid_row_policy=spec.invalid_row_policy,
                actor="apply",
            )
        by_name = _templates(rt, org.id)
        for template in spec.templates:
            changes.append(_template(rt, org, spec.name, template, by_name, write))
        for destination in spec.destinations:
            changes.append(_destination(rt, org, spec.name, destination, by_name, write))
    return changes


def _new_children(spec: OrganisationIn) -> list[Change]:
    names = [templates.template_name(t.schema_ or {}) for t in spec.templates]
    return [Change("create", f"template {spec.name}/{n}") for n in names] + [
        Change("create", f"destination {spec.name}/{d.template}/{d.name}")
        for d in spec.destinations
    ]


def _organisation(rt: Runtime, name: str) -> db.Organisation | None:
    with rt.sessions() as session:
        found = session.scalars(select(db.Organisation).where(db.Organisation.name == name)).all()
    if len(found) > 1:
        raise Invalid(f'{len(found)} organisations are named "{name}": apply matches by name.')
    return found[0] if found else None


def _settings_differ(org: db.Organisation, spec: OrganisationIn) -> list[str]:
    differs = []
    if orgs.checked_origins(spec.allowed_origins) != list(org.allowed_origins):
        differs.append("allowed_origins")
    if (
        spec.default_retention_days is not None
        and spec.default_retention_days != org.retention_days
    ):
        differs.append("default_retention_days")
    if spec.invalid_row_policy is not None and spec.invalid_row_policy != org.invalid_row_policy:
        differs.append("invalid_row_policy")
    return differs


def _templates(rt: Runtime, org_id: str) -> dict[str, db.Template]:
    with rt.sessions() as session:
        rows = session.scalars(
            select(db.Template).where(
                db.Template.org_id == org_id, db.Template.deleted_at.is_(None)
            )
        ).all()
    return {row.name: row for row in rows}


def _template(
    rt: Runtime,
    org: db.Organisation,
    org_name: str,
    spec: TemplateIn,
    by_name: dict[str, db.Template],
    write: bool,
) -> Change:
    schema = spec.schema_ or {}
    name = templates.template_name(schema)
    label = f"template {org_name}/{name}"
    existing = by_name.get(name)
    if existing is None:
        if write:
            by_name[name] = templates.create_template(rt, org.id, schema, actor="apply")
        return Change("create", label)
    if existing.schema == schema:
        return Change("unchanged", label, f"version {existing.version}")
    if write:
        by_name[name] = templates.replace_template(rt, org.id, existing.id, schema, actor="apply")
    return Change("update", label, f"version {existing.version + 1}")


def _destination(
    rt: Runtime,
    org: db.Organisation,
    org_name: str,
    spec: DestinationIn,
    by_name: dict[str, db.Template],
    write: bool,
) -> Change:
    label = f"destination {org_name}/{spec.template}/{spec.name}"
    template = by_name.get(spec.template)
    if template is None:
        if not write:  # created earlier in this plan
            return Change("create", label)
        raise Invalid(f'{label}: the file names no template "{spec.template}".')
    with rt.sessions() as session:
        row = session.scalars(
            select(db.Destination).where(
                db.Destination.template_id == template.id,
                db.Destination.name == spec.name,
                db.Destination.deleted_at.is_(None),
            )
        ).first()
    if row is None:
        if write:
            view = dests.create_destination(
                rt,
                org,
                template.id,
                spec.kind,
                spec.name,
                spec.config,
                max_concurrency=spec.max_concurrency or db.DEFAULT_CONCURRENCY,
                actor="apply",
            )
            if not spec.enabled:
                dests.update_destination(rt, org, view.row.id, enabled=False, actor="apply")
        return Change("create", label)
    if row.kind != spec.kind:
        raise Invalid(f"{label} is a {row.kind} destination; the file says {spec.kind}.")
    stored = rt.vault.open_config(org.id, org.wrapped_key, row.id, row.sealed_config)
    names = sorted(set(stored) | set(spec.config))
    differs = [k for k in names if stored.get(k) != spec.config.get(k)]
    if row.enabled != spec.enabled:
        differs.append("enabled")
    if spec.max_concurrency is not None and spec.max_concurrency != row.max_concurrency:
        differs.append("max_concurrency")
    if not differs:
        return Change("unchanged", label)
    if write:
        config = {k: spec.config.get(k) for k in names}  # None removes a setting
        dests.update_destination(
            rt,
            org,
            row.id,
            config=config,
            enabled=spec.enabled,
            max_concurrency=spec.max_concurrency,
            actor="apply",
        )
    # Setting names only: a value may be a secret.
    return Change("update", label, ", ".join(differs))
