"""The management API's request and answer shapes, typed once (pydantic): requests are
parsed by them, answers serialised by them, and the OpenAPI document is generated from
them (server.manage.openapi)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from destinations import DestinationSpec
from server import db, events, import_views, previews
from server.attempts import Attempt
from server.destinations import MAX_CONCURRENCY, DestinationView
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
    errors: list[FieldError] | dict[str, Any] | None = Field(
        default=None,
        description="422: the parts refused ({loc, msg}); 410: when and why the data went "
        "({import_id, reason, at, actor}).",
    )


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
    max_concurrency: int = Field(
        default=db.DEFAULT_CONCURRENCY,
        ge=1,
        le=MAX_CONCURRENCY,
        description="How many batches are sent to it at once.",
    )


class DestinationPatch(Request):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    config: dict[str, Any] | None = Field(
        default=None,
        description="Merged into the stored settings: a secret not sent is kept; a "
        "setting sent as null is removed.",
    )
    max_concurrency: int | None = Field(default=None, ge=1, le=MAX_CONCURRENCY)


class DestinationOut(Answer):
    id: str
    kind: str
    name: str
    template_id: str
    enabled: bool
    disabled_reason: str | None
    config: dict[str, Any] = Field(description='Settings; each secret is {"set": true|false}.')
    max_concurrency: int = Field(description="How many batches are sent to it at once.")
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
            max_concurrency=row.max_concurrency,
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
    previous_publishable_key: str | None = Field(
        default=None,
        description="The key before the last rotation, while it still opens the importer.",
    )
    previous_key_expires_at: dt.datetime | None = Field(
        default=None, description="When the previous publishable key stops opening the importer."
    )

    @classmethod
    def of(cls, found: OrganisationSettings) -> OrganisationOut:
        org = found.organisation
        previous = found.previous_key
        return cls(
            id=org.id,
            name=org.name,
            publishable_key=org.publishable_key,
            previous_publishable_key=previous[0] if previous else None,
            previous_key_expires_at=previous[1] if previous else None,
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


class PublishableKeyRotate(Request):
    grace: Literal["now", "1h", "24h", "7d"] = Field(
        default="24h",
        description="How long the key being replaced keeps opening the importer, so embed "
        "code can be updated meanwhile; rotating again ends an earlier grace period.",
    )


# --- imports -------------------------------------------------------------------------------

ImportStatusName = Literal[
    "uploading", "delivering", "delivered", "complete", "failed", "deleted", "expired"
]


class DeliveryCounts(Answer):
    pending: int = Field(description="Waiting or being sent.")
    delivered: int
    failed: int


class ImportOut(Answer):
    id: str
    status: ImportStatusName
    final: bool = Field(description="Nothing more will happen to the import.")
    template_id: str
    template_version: int | None = Field(description="The template version it was checked by.")
    file_name: str
    rows: int
    left_out: int = Field(
        description="Invalid rows left out under the valid-only invalid-row policy."
    )
    batches: int
    deliveries: DeliveryCounts = Field(description="(batch, destination) deliveries by state.")
    created_at: dt.datetime
    expires_at: dt.datetime = Field(description="When its stored rows are deleted.")

    @classmethod
    def of(cls, view: import_views.ImportView) -> ImportOut:
        row, state = view.row, view.state
        return cls(
            id=row.id,
            status=state.status.value,
            final=state.status.final,
            template_id=row.template_id,
            template_version=row.template_version,
            file_name=row.file_name,
            rows=state.rows,
            left_out=state.left_out,
            batches=state.batches,
            deliveries=DeliveryCounts(
                pending=state.deliveries.get("pending", 0),
                delivered=state.deliveries.get("delivered", 0),
                failed=state.deliveries.get("failed", 0),
            ),
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


class ImportList(Answer):
    items: list[ImportOut]
    next_cursor: str | None


class ErrorCount(Answer):
    code: str = Field(examples=["constraint-error", "type-error"])
    field: str | None = Field(description="None for an error of the whole row (primary-key).")
    constraint: str | None = Field(description="Which rule (required, enum, pattern, ...).")
    count: int


class DataGoneOut(Answer):
    reason: Literal["deleted", "expired", "passthrough-window"]
    at: dt.datetime | None
    actor: str | None = Field(description="Who deleted it: api-key:<key id>, cli, retention.")


class IdentityOut(Answer):
    user: str = Field(description="The client's own id for its user.")
    metadata: dict[str, Any] = Field(description="What the client's backend signed with it.")
    key_id: str = Field(description="The secret key that signed it.")


class ImportDetail(ImportOut):
    submitted_at: dt.datetime | None
    delivered_at: dt.datetime | None = Field(description="When its last delivery succeeded.")
    expired: bool = Field(description="Its retention has passed.")
    rejected_batches: int = Field(
        description="Batches the server's re-validation refused (the page sends them again)."
    )
    errors: list[ErrorCount] = Field(
        description="What the server's re-validation refused, by code and field."
    )
    data_gone: DataGoneOut | None = Field(description="Why its rows are no longer stored.")
    identity: IdentityOut | None = Field(
        default=None,
        description="The end user the client's backend vouched for (a signed token), if any.",
    )

    @classmethod
    def of_detail(cls, found: import_views.ImportDetail, now: dt.datetime) -> ImportDetail:
        base = ImportOut.of(import_views.ImportView(found.row, found.state))
        gone = found.gone
        return cls(
            **base.model_dump(),
            submitted_at=found.submitted_at,
            delivered_at=found.delivered_at,
            expired=found.row.expires_at <= now,
            rejected_batches=found.rejected_batches,
            errors=[
                ErrorCount(code=e.code, field=e.field, constraint=e.constraint, count=e.count)
                for e in found.errors
            ],
            data_gone=(
                DataGoneOut(reason=gone.reason, at=gone.at, actor=gone.actor)  # type: ignore[arg-type]
                if gone is not None
                else None
            ),
            identity=IdentityOut(**found.row.identity) if found.row.identity else None,
        )


class EventOut(Answer):
    id: int
    kind: str = Field(examples=["import.deleted"])
    actor: str
    at: dt.datetime
    import_id: str | None
    detail: dict[str, Any] = Field(description="Metadata only (counts), never a cell value.")

    @classmethod
    def of(cls, event: events.Event) -> EventOut:
        return cls(
            id=event.id,
            kind=event.kind,
            actor=event.actor,
            at=event.at,
            import_id=event.import_id,
            detail=event.detail,
        )


class AttemptOut(Answer):
    id: int
    delivery_id: int = Field(description="POST /api/v1/deliveries/{id}/retry sends it again.")
    batch: int = Field(description="The batch's number (from 0).")
    destination_id: str
    number: int = Field(description="1 for a delivery's first attempt.")
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_ms: int
    outcome: str = Field(examples=["delivered", "retry", "failed", "disabled"])
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    answer: str | None = Field(description="The receiver's answer, cut short.")
    error: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        took = attempt.finished_at - attempt.started_at
        return cls(
            id=attempt.id,
            delivery_id=attempt.delivery_id,
            batch=attempt.seq,
            destination_id=attempt.destination_id,
            number=attempt.number,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            duration_ms=max(0, round(took / dt.timedelta(milliseconds=1))),
            outcome=attempt.outcome,
            status_code=attempt.status_code,
            answer=attempt.answer,
            error=attempt.error,
        )


class AttemptList(Answer):
    items: list[AttemptOut]
    next_cursor: str | None


class RetryOut(Answer):
    delivery_id: int
    status: Literal["pending"]
    enqueued: bool = Field(description="False when the queue is down: the sweeper sends it.")


# --- previews ------------------------------------------------------------------------------


class PreviewOut(Answer):
    """Rows of an import as text; personal-data fields show as a mask unless revealed."""

    import_id: str
    columns: list[str]
    personal: list[str] = Field(description="The fields classified as personal data.")
    masked: list[str] = Field(description=f"Fields shown as {previews.MASK!r} here.")
    revealed: list[str] = Field(description="Personal-data fields shown in clear (a reveal).")
    first_row: int = Field(description="1-based; 0 when the range holds no row.")
    last_row: int
    total_rows: int
    rows: list[list[str]]
    next_first_row: int | None = Field(description="first_row of the next page, if any.")

    @classmethod
    def of(cls, found: previews.Preview) -> PreviewOut:
        more = found.rows and found.last_row < found.total_rows
        return cls(
            import_id=found.import_id,
            columns=list(found.columns),
            personal=sorted(found.personal),
            masked=sorted(found.masked),
            revealed=sorted(found.revealed),
            first_row=found.first_row,
            last_row=found.last_row,
            total_rows=found.total_rows,
            rows=[list(r) for r in found.rows],
            next_first_row=found.last_row + 1 if more else None,
        )


class RevealIn(Request):
    fields: list[str] = Field(
        min_length=1, max_length=200, description="Personal-data fields to show in clear."
    )
    first_row: int = Field(ge=1, le=2**31, description="1-based, as a spreadsheet numbers rows.")
    last_row: int = Field(ge=1, le=2**31, description=f"At most {previews.MAX_ROWS} rows on.")
