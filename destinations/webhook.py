"""Webhook destination: rows as JSON, signed per Standard Webhooks 1.0.

A batch is sent in requests of at most `rows_per_request` rows (parts, in order). Each
request's `webhook-id` is `<import>-<batch>-<part>` and its body is the same on every retry,
so receivers can deduplicate; only the `webhook-timestamp` header and the signature are
fresh per attempt. When one part fails the attempt fails, and its retry sends every part
again (the parts already accepted come again with the same id and body).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import json
import re
import secrets
from dataclasses import dataclass, field

import httpx
import pyarrow as pa
from standardwebhooks.webhooks import Webhook

from destinations.base import (
    DeliveryBatch,
    DestinationContext,
    DestinationSpec,
    FinishedImport,
    WriteResult,
    setting,
)
from destinations.errors import (
    ANSWER_READ,
    ConfigurationError,
    EndpointGoneError,
    FatalDeliveryError,
    RetryableDeliveryError,
)
from destinations.network import check_url, pinned_client
from destinations.rows import rows_json

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
EVENT_TYPE = "import.batch"
MAX_RETRY_AFTER = 24 * 3600.0  # a receiver's Retry-After is honoured up to a day, no longer
ROWS_PER_REQUEST = 1000
MAX_ROWS_PER_REQUEST = 10_000


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class WebhookConfig:
    url: str = setting(
        "The https:// address that receives the rows (http:// only on a network the "
        "operator opened)."
    )
    secret: str | None = setting(
        "The signing secret (whsec_<base64>, at least 24 random bytes).",
        secret=True,
        default=None,
    )
    secrets: tuple[str, ...] = setting(
        "Signing secrets while rotating: every one signs each request. Takes precedence "
        "over secret.",
        secret=True,
        default=(),
    )
    rows_per_request: int = setting(
        f"Rows in one request, 1 to {MAX_ROWS_PER_REQUEST:,}: a larger batch is sent as "
        "several requests (parts).",
        default=ROWS_PER_REQUEST,
    )

    def __post_init__(self) -> None:
        if not 1 <= self.rows_per_request <= MAX_ROWS_PER_REQUEST:
            raise ConfigurationError(
                'The "rows_per_request" setting of a webhook destination must be between 1 '
                f"and {MAX_ROWS_PER_REQUEST:,}."
            )
        if not self.url.startswith(("https://", "http://")):
            raise ConfigurationError('The "url" of a webhook destination must start with https://.')
        if not self.signing_keys:
            raise ConfigurationError(
                'A webhook destination needs a signing secret: "secret" (whsec_...).'
            )
        for index, key in enumerate(self.signing_keys, start=1):
            if len(_secret_bytes(key)) < MIN_SECRET_BYTES:
                raise ConfigurationError(
                    f"Webhook signing secret {index} is too short or not base64: a secret "
                    f"must hold at least {MIN_SECRET_BYTES} random bytes (whsec_<base64>)."
                )

    @property
    def signing_keys(self) -> tuple[str, ...]:
        if self.secrets:
            return self.secrets
        return () if self.secret is None else (self.secret,)


@dataclass(frozen=True)
class WebhookDestination:
    config: WebhookConfig
    context: DestinationContext = field(default_factory=DestinationContext)

    @property
    def kind(self) -> str:
        return SPEC.kind

    @property
    def spec(self) -> DestinationSpec[WebhookConfig]:
        return SPEC

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.config.signing_keys

    @property
    def timeout(self) -> float:
        return self.context.timeout

    def check(self) -> None:
        """The URL parses, its scheme is allowed, its host resolves and every address passes
        the SSRF policy. Nothing is sent: the receiver may not be running yet."""
        check_url(self.url, self.context.policy)

    def write(self, batch: DeliveryBatch) -> WriteResult:
        size = self.config.rows_per_request
        parts = max(1, -(-batch.table.num_rows // size))
        response: httpx.Response | None = None
        with self._client() as client:
            for part in range(parts):
                body = _body(batch, part, parts, batch.table.slice(part * size, size))
                response = self._post(client, f"{batch.key}-{part}", body)
                _judge(self.url, response)
        assert response is not None  # noqa: S101 - there is at least one part
        return WriteResult(
            status_code=response.status_code,
            answer=response.text[:ANSWER_READ] or None,
            detail=f"{parts} request{'s' if parts > 1 else ''}",
        )

    def finish(self, done: FinishedImport) -> None:
        return None

    def _post(self, client: httpx.Client, msg_id: str, body: str) -> httpx.Response:
        now = dt.datetime.now(dt.UTC)
        signatures = " ".join(
            Webhook(key).sign(msg_id=msg_id, timestamp=now, data=body) for key in self.secrets
        )
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
            "user-agent": "loadbay-webhooks/1",
        }
        try:
            return client.post(self.url, content=body.encode(), headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableDeliveryError(
                f"{self.url} did not answer within {self.timeout:g} s."
            ) from exc
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(f"Could not connect to {self.url}: {exc}.") from exc

    def _client(self) -> httpx.Client:
        verify: str | bool = self.context.ca_file or True
        return pinned_client(self.url, self.context.policy, timeout=self.timeout, verify=verify)


SPEC = DestinationSpec(
    kind="webhook",
    title="Webhook (Standard Webhooks)",
    config=WebhookConfig,
    build=WebhookDestination,
)


def _judge(url: str, response: httpx.Response) -> None:
    """Only a 2xx is success; a redirect is a failure and is never followed."""
    status = response.status_code
    if 200 <= status < 300:
        return
    answer = response.text[:ANSWER_READ]
    if status == 410:
        raise EndpointGoneError(
            f"{url} answered 410 Gone; the destination is disabled.",
            status_code=status,
            answer=answer,
        )
    if status in (429, 503):
        raise RetryableDeliveryError(
            f"{url} answered {status}.",
            retry_after=retry_after(response.headers),
            status_code=status,
            answer=answer,
        )
    if 300 <= status < 400:
        raise RetryableDeliveryError(
            f"{url} answered a redirect ({status}); it is not followed.",
            status_code=status,
            answer=answer,
        )
    if status >= 500 or status in (408, 409, 425):
        raise RetryableDeliveryError(f"{url} answered {status}.", status_code=status, answer=answer)
    raise FatalDeliveryError(
        f"{url} refused the delivery with {status}.", status_code=status, answer=answer
    )


_SECONDS = re.compile(r"[0-9]+")


def retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds (delay or HTTP-date), clamped to MAX_RETRY_AFTER.

    A huge value would overflow the scheduler or park the delivery for ever, so it is capped;
    a date in the past is 0; anything else (negative, garbage) is ignored.
    """
    value = headers.get("retry-after", "").strip()
    if _SECONDS.fullmatch(value):
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322's unknown zone; HTTP dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    delay = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return min(max(0.0, delay), MAX_RETRY_AFTER)


def _body(batch: DeliveryBatch, part: int, parts: int, rows: pa.Table) -> str:
    payload = {
        "type": EVENT_TYPE,
        "timestamp": (batch.occurred_at or dt.datetime.now(dt.UTC)).isoformat(),
        "data": {
            "import_id": batch.import_id,
            "template": batch.template,
            "batch": batch.seq,
            "batch_count": batch.batch_count,
            "part": part,
            "part_count": parts,
            "row_count": rows.num_rows,
            "left_out": batch.left_out,  # invalid rows the whole batch left out (valid-only)
        },
    }
    # with-errors: each row carries `_errors`
    written = rows_json(rows)
    if written is not None:  # the envelope by json, the rows by polars: "rows" goes last
        envelope = json.dumps(payload, separators=(",", ":"), allow_nan=False)
        return f'{envelope[:-2]},"rows":{written}}}}}'
    payload["data"]["rows"] = rows.to_pylist()  # type: ignore[index]
    try:
        return json.dumps(payload, default=_json_value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise FatalDeliveryError(
            f"Batch {batch.seq} of import {batch.import_id} cannot be sent as JSON: "
            f"{_unserialisable(rows)}. Retrying cannot help; fix the data and import again."
        ) from exc


def _unserialisable(rows: pa.Table) -> str:
    """Which column failed, named without its values (cell values stay out of messages)."""
    for name in rows.column_names:
        try:
            json.dumps(rows.column(name).to_pylist(), default=_json_value, allow_nan=False)
        except ValueError:
            return f'column "{name}" holds NaN or infinity, which JSON cannot represent'
        except TypeError:
            kind = rows.schema.field(name).type
            return f'column "{name}" is of type {kind}, which has no JSON form here'
    return "a value has no JSON form"


def _json_value(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _secret_bytes(key: str) -> bytes:
    raw = key.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return b""
