"""The management API's request and answer shapes, typed once (pydantic): requests are
parsed by them, answers serialised by them, and the OpenAPI document is generated from
them (server.manage.openapi)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from destinations import DestinationSpec
from server import db
from server.destinations import DestinationView
from server.orgs import OrganisationSettings

InvalidRowPolicy = Literal["reject", "valid-only", "with-errors"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    pass


# --- problems ------------------------------------------------------------------------------


class FieldError(Answer):
    loc: list[str | int]
    msg: str


class Problem(Answer):
    """RFC 9457 problem details, with a stable `code` to branch on."""

    type: str = Field(examples=["urn:loadbay:problem:not-found"])
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


# --- templates -----------------------------------------------------------------------------


class TemplateIn(Request):
    schema_: dict[str, Any] = Field(
        alias="schema",
        description="A Frictionless Table Schema with loadbay's `x-loadbay` extensions.",
    )


class TemplateOut(Answer):
    id: str
    name: str
    version: int = Field(description="Each PUT makes a new version; imports record theirs.")
    schema_: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None

    @classmethod
    def of(cls, row: db.Template) -> TemplateOut:
        return cls(
            id=row.id,
            name=row.name,
            version=row.version,
            schema=row.schema,
            created_at=row.created_at,
            updated_at=row.updated_at,
            deleted_at=row.deleted_at,
        )


class TemplateList(Answer):
    items: list[TemplateOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


# --- destinations --------------------------------------------------------------------------


class DestinationIn(Request):
    kind: str = Field(description="One of GET /api/v1/destination-kinds.")
    name: str = Field(min_length=1, max_length=200)
    template_id: str = Field(max_length=40)
    config: dict[str, Any] = Field(description="The kind's settings (see its JSON schema).")


class DestinationPatch(Request):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    config: dict[str, Any] | None = Field(
        default=None,
        description="Merged into the stored settings: a secret not sent is kept; a "
        "setting sent as null is removed.",
    )


class DestinationOut(Answer):
    id: str
    kind: str
    name: str
    template_id: str
    enabled: bool
    disabled_reason: str | None
    config: dict[str, Any] = Field(description='Settings; each secret is {"set": true|false}.')
    created_at: dt.datetime
    deleted_at: dt.datetime | None

    @classmethod
    def of(cls, view: DestinationView) -> DestinationOut:
        row = view.row
        return cls(
            id=row.id,
            kind=row.kind,
            name=row.name,
            template_id=row.template_id,
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            config=view.config,
            created_at=row.created_at,
            deleted_at=row.deleted_at,
        )


class DestinationList(Answer):
    items: list[DestinationOut]
    next_cursor: str | None


class DestinationTest(Answer):
    ok: bool
    detail: str


class DestinationKind(Answer):
    kind: str
    title: str
    json_schema: dict[str, Any] = Field(description="The settings, as a JSON Schema object.")

    @classmethod
    def of(cls, spec: DestinationSpec[Any]) -> DestinationKind:
        return cls(kind=spec.kind, title=spec.title, json_schema=spec.json_schema())


class DestinationKindList(Answer):
    items: list[DestinationKind]


# --- organisation --------------------------------------------------------------------------


class OrganisationOut(Answer):
    id: str
    name: str
    publishable_key: str
    allowed_origins: list[str]
    default_retention_days: int
    invalid_row_policy: InvalidRowPolicy
    kms_key_arn: str | None = Field(
        default=None, description="The AWS KMS key new imports' data keys come from."
    )

    @classmethod
    def of(cls, found: OrganisationSettings) -> OrganisationOut:
        org = found.organisation
        return cls(
            id=org.id,
            name=org.name,
            publishable_key=org.publishable_key,
            allowed_origins=list(org.allowed_origins),
            default_retention_days=found.default_retention_days,
            invalid_row_policy=org.invalid_row_policy,  # type: ignore[arg-type]
            kms_key_arn=org.kms_key_arn,
        )


class OrganisationPatch(Request):
    allowed_origins: list[str] | None = Field(
        default=None, max_length=100, description="Origins (scheme://host[:port])."
    )
    default_retention_days: int | None = Field(default=None, ge=1, le=365)
    invalid_row_policy: InvalidRowPolicy | None = Field(
        default=None, description="Stored for now; the importer applies it later."
    )
    kms_key_arn: str | None = Field(
        default=None,
        max_length=2048,
        description="An AWS KMS key ARN: new imports' data keys are generated and unwrapped "
        "by it. Saved only once loadbay could generate and unwrap a data key with it.",
    )
