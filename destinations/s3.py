"""S3 destination (boto3): one object per batch in the client's own bucket, then a manifest.

Objects are Parquet by default, or CSV (escaped against formula injection, as loadbay's
exports are) or NDJSON. Keys come from a template (`key_template`, under `prefix`) that must
name {import_id} and {batch}, so a redelivered batch overwrites its own object. Once every
batch is delivered, finish() writes the manifest (`manifest_template`) last: the parts, their
row counts and sizes, read back from the bucket. SSE-S3 (`"sse": "AES256"`) or SSE-KMS
(`"aws:kms"` with `sse_kms_key_id`) are asked for on every object.

Every request botocore makes is sent through loadbay's pinned HTTP client (a `before-send`
hook): the endpoint's host is resolved once, checked by the SSRF guard and connected to at
that address, for AWS and for an S3-compatible `endpoint_url` alike; no proxy is used.
botocore's own retries are off: the delivery's retry policy decides.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import string
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from destinations.base import (
    DeliveryBatch,
    DestinationContext,
    DestinationSpec,
    FinishedImport,
    WriteResult,
    setting,
)
from destinations.errors import (
    ConfigurationError,
    DeliveryError,
    EndpointGoneError,
    FatalDeliveryError,
    RetryableDeliveryError,
)
from destinations.network import check_url, pinned_client
from destinations.rows import escape_formulas

FORMATS = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}
FORMATS["ndjson"] = "application/x-ndjson"
SSE = ("AES256", "aws:kms")
KEY_TEMPLATE = "{org}/{template}/{date}/{import_id}/{batch:05d}.{ext}"
MANIFEST_TEMPLATE = "{org}/{template}/{date}/{import_id}/manifest.json"
KEY_FIELDS = frozenset({"org", "template", "date", "import_id", "destination_id", "batch", "ext"})
_BATCH_SPEC = re.compile(r"0?[1-9]?d")
MAX_TEMPLATE = 300
_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+){1,4}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_THROTTLED = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"})


@dataclass(frozen=True)
class S3Config:
    bucket: str = setting("The bucket the objects are written to.")
    region: str = setting("The bucket's region, such as eu-west-1.", default="us-east-1")
    prefix: str = setting('Put before every key, such as "imports/".', default="")
    format: str = setting("parquet (default), csv or ndjson.", default="parquet")
    key_template: str = setting(
        "The key of each batch's object, after the prefix; it must name {import_id} and "
        "{batch} (names: org, template, date, import_id, destination_id, batch, ext).",
        default=KEY_TEMPLATE,
    )
    manifest_template: str = setting(
        "The key of the manifest written once every batch is in; it must name {import_id}.",
        default=MANIFEST_TEMPLATE,
    )
    endpoint_url: str | None = setting(
        "An S3-compatible store's address (default: AWS).", default=None
    )
    sse: str | None = setting(
        "Server-side encryption: AES256 (SSE-S3) or aws:kms (SSE-KMS).", default=None
    )
    sse_kms_key_id: str | None = setting("The KMS key for aws:kms.", default=None)
    access_key_id: str | None = setting(
        "An access key id (default: the worker's AWS credentials from its environment).",
        default=None,
    )
    secret_access_key: str | None = setting(
        "The secret of access_key_id.", secret=True, default=None
    )

    def __post_init__(self) -> None:
        if not _BUCKET.fullmatch(self.bucket):
            raise ConfigurationError(
                'The "bucket" setting of an s3 destination is not a bucket name (3 to 63 '
                "lower-case letters, digits, dots and hyphens)."
            )
        if not _REGION.fullmatch(self.region):
            raise ConfigurationError(
                'The "region" setting of an s3 destination is not a region name (such as '
                "eu-west-1)."
            )
        if self.format not in FORMATS:
            raise ConfigurationError(
                f'The "format" setting of an s3 destination must be one of {", ".join(FORMATS)}.'
            )
        if self.sse is not None and self.sse not in SSE:
            raise ConfigurationError(
                f'The "sse" setting of an s3 destination must be one of {", ".join(SSE)}.'
            )
        if self.sse_kms_key_id is not None and self.sse != "aws:kms":
            raise ConfigurationError('"sse_kms_key_id" needs "sse": "aws:kms".')
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ConfigurationError(
                'Give both "access_key_id" and "secret_access_key", or neither (the worker\'s '
                "own AWS credentials are then used)."
            )
        if self.endpoint_url is not None and not self.endpoint_url.startswith(
            ("https://", "http://")
        ):
            raise ConfigurationError('The "endpoint_url" of an s3 destination must be https://.')
        _check_template("key_template", self.key_template, ("import_id", "batch"))
        _check_template("manifest_template", self.manifest_template, ("import_id",))
        if "{batch" in self.manifest_template:
            raise ConfigurationError('"manifest_template" must not name {batch}.')


def _check_template(name: str, template: str, required: tuple[str, ...]) -> None:
    """Only plain names from KEY_FIELDS, with simple format specs: no attribute or index
    access ({batch.__class__}), no nested fields, no conversions."""
    if len(template) > MAX_TEMPLATE:
        raise ConfigurationError(f'"{name}" is longer than {MAX_TEMPLATE} characters.')
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise ConfigurationError(f'"{name}" is not a valid key template.') from None
    seen = set()
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in KEY_FIELDS or conversion or (spec and "{" in spec):
            raise ConfigurationError(
                f'"{name}" may only use the names {", ".join(sorted(KEY_FIELDS))}.'
            )
        if spec and not (field_name == "batch" and _BATCH_SPEC.fullmatch(spec)):
            raise ConfigurationError(
                f'"{name}" has a format a key cannot take: only {{batch}} takes one, such '
                "as {batch:05d}."
            )
        seen.add(field_name)
    missing = [f"{{{n}}}" for n in required if n not in seen]
    if missing:
        raise ConfigurationError(f'"{name}" must name {" and ".join(missing)}.')
    try:
        _render(template, _SAMPLE)
    except (ValueError, TypeError):
        raise ConfigurationError(f'"{name}" has a format a key cannot take.') from None


_SAMPLE = {
    "org": "org",
    "template": "t",
    "date": "2026-01-01",
    "import_id": "imp",
    "destination_id": "dst",
    "batch": 0,
    "ext": "parquet",
}


def _render(template: str, values: dict[str, Any]) -> str:
    return template.format(**values)


class _Sender:
    """botocore's before-send hook: each request goes out through a pinned client."""

    def __init__(self, context: DestinationContext) -> None:
        self.context = context
        self.clients: dict[str, httpx.Client] = {}
        self.lock = threading.Lock()

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        url = httpx.URL(request.url)
        origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        with self.lock:
            client = self.clients.get(origin)
            if client is None:
                verify: str | bool = self.context.ca_file or True
                client = pinned_client(
                    origin, self.context.policy, timeout=self.context.timeout, verify=verify
                )
                self.clients[origin] = client
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        try:
            answer = client.request(
                request.method, request.url, headers=dict(request.headers.items()), content=body
            )
        except httpx.TimeoutException as exc:
            raise RetryableDeliveryError(
                f"{origin} did not answer within {self.context.timeout:g} s."
            ) from exc
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(f"Could not connect to {origin}: {exc}.") from exc
        return AWSResponse(request.url, answer.status_code, answer.headers, _Raw(answer.content))

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@dataclass(frozen=True)
class _Raw:
    content: bytes

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


@dataclass(frozen=True)
class S3Destination:
    config: S3Config
    context: DestinationContext = field(default_factory=DestinationContext)

    @property
    def kind(self) -> str:
        return SPEC.kind

    @property
    def spec(self) -> DestinationSpec[S3Config]:
        return SPEC

    def check(self) -> None:
        """The endpoint (the custom one, or the bucket's AWS host) resolves and passes the
        SSRF policy; nothing is sent."""
        check_url(self._endpoint(), self.context.policy)

    def probe(self) -> str:
        """Write one small object as a delivery would (a writer may hold no right but
        PutObject, so nothing is listed): proof of the credentials, bucket and policy."""
        key = self.config.prefix + PROBE_KEY
        with self._s3() as call:
            call("put_object", Key=key, Body=PROBE_BODY, ContentType="text/plain", **self._sse())
        return f"Wrote s3://{self.config.bucket}/{key}."

    def key(self, batch: DeliveryBatch | FinishedImport, seq: int | None = None) -> str:
        """The object key of batch seq (None: the manifest's)."""
        values = {
            "org": _safe(batch.org_id),
            "template": _safe(batch.template),
            "date": (batch.imported_at or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).date(),
            "import_id": _safe(batch.import_id),
            "destination_id": _safe(batch.destination_id),
            "batch": 0 if seq is None else seq,
            "ext": self.config.format,
        }
        template = self.config.manifest_template if seq is None else self.config.key_template
        return self.config.prefix + _render(template, values)

    def write(self, batch: DeliveryBatch) -> WriteResult:
        key = self.key(batch, batch.seq)
        body = encode(batch.table, self.config.format)
        metadata = {"loadbay-rows": str(batch.table.num_rows), "loadbay-import": batch.import_id}
        with self._s3() as call:
            call(
                "put_object",
                Key=key,
                Body=body,
                ContentType=FORMATS[self.config.format],
                Metadata=metadata,
                **self._sse(),
            )
        return WriteResult(status_code=200, detail=f"s3://{self.config.bucket}/{key}")

    def finish(self, done: FinishedImport) -> WriteResult:
        parts = []
        with self._s3() as call:
            for seq, rows in enumerate(done.row_counts):
                key = self.key(done, seq)
                try:
                    head = call("head_object", Key=key)
                except FatalDeliveryError as exc:
                    if exc.status_code != 404:
                        raise
                    raise FatalDeliveryError(
                        f"Batch {seq} is not in the bucket (s3://{self.config.bucket}/{key}); "
                        "was it deleted? The manifest is not written."
                    ) from None
                size = int(head["ContentLength"])
                parts.append({"batch": seq, "key": key, "rows": rows, "size": size})
            manifest = {
                "import_id": done.import_id,
                "template": done.template,
                "format": self.config.format,
                "bucket": self.config.bucket,
                "batch_count": done.batch_count,
                "row_count": sum(done.row_counts),
                "parts": parts,
            }
            key = self.key(done)
            call(
                "put_object",
                Key=key,
                Body=json.dumps(manifest, indent=2).encode(),
                ContentType="application/json",
                **self._sse(),
            )
        return WriteResult(status_code=200, detail=f"s3://{self.config.bucket}/{key}")

    def _sse(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.config.sse is not None:
            out["ServerSideEncryption"] = self.config.sse
        if self.config.sse_kms_key_id is not None:
            out["SSEKMSKeyId"] = self.config.sse_kms_key_id
        return out

    def _endpoint(self) -> str:
        if self.config.endpoint_url is not None:
            return self.config.endpoint_url
        return f"https://s3.{self.config.region}.amazonaws.com"

    @contextmanager
    def _s3(self) -> Iterator[Callable[..., Any]]:
        """call(operation, **params) on one boto3 client whose requests go through the
        pinned sender; botocore's errors become DeliveryErrors."""
        check_url(self._endpoint(), self.context.policy)
        sender = _Sender(self.context)
        client = boto3.session.Session(
            aws_access_key_id=self.config.access_key_id,
            aws_secret_access_key=self.config.secret_access_key,
            region_name=self.config.region,
        ).client(
            "s3",
            endpoint_url=self.config.endpoint_url,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                s3={"addressing_style": "path" if self.config.endpoint_url else "virtual"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        client.meta.events.register_first("before-send.s3", sender)

        def call(operation: str, **params: Any) -> Any:
            try:
                return getattr(client, operation)(Bucket=self.config.bucket, **params)
            except ClientError as exc:
                raise _sorted(exc, self.config.bucket) from None
            except NoCredentialsError:
                raise ConfigurationError(
                    "The s3 destination has no access key, and the worker has no AWS "
                    'credentials in its environment; set "access_key_id" and '
                    '"secret_access_key".'
                ) from None
            except BotoCoreError as exc:
                raise RetryableDeliveryError(f"S3 request failed: {type(exc).__name__}.") from None

        try:
            yield call
        finally:
            sender.close()


SPEC = DestinationSpec(
    kind="s3", title="Amazon S3 (or S3-compatible)", config=S3Config, build=S3Destination
)


def encode(table: pa.Table, fmt: str) -> bytes:
    """One batch as an object: Parquet (pyarrow), CSV escaped against formulas, or NDJSON."""
    if fmt == "parquet":
        out = io.BytesIO()
        pq.write_table(table, out)
        return out.getvalue()
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a Table gives a DataFrame
    out = io.BytesIO()
    if fmt == "csv":
        escape_formulas(frame).write_csv(out)
    else:
        frame.write_ndjson(out)
    return out.getvalue()


PROBE_KEY = "loadbay-connection-test.txt"
PROBE_BODY = b"Written by loadbay's connection test; safe to delete.\n"


def _safe(part: str) -> str:
    return _SAFE.sub("_", part) or "_"


def _sorted(exc: ClientError, bucket: str) -> DeliveryError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    message = str(error.get("Message") or "")[:300]
    answer = f"{code}: {message}" if message else code
    named = "" if code in ("", str(status)) else f" {code}"
    said = f"S3 answered {status}{named} for bucket {bucket}"
    if code == "NoSuchBucket":
        return EndpointGoneError(
            f"{said}: the bucket does not exist; the destination is disabled.",
            status_code=status,
            answer=answer,
        )
    if status in (429, 503) or code in _THROTTLED:
        return RetryableDeliveryError(
            f"{said}; it will be retried.", retry_after=None, status_code=status, answer=answer
        )
    if status >= 500 or code in ("RequestTimeout", "InternalError"):
        return RetryableDeliveryError(
            f"{said}; it will be retried.", status_code=status, answer=answer
        )
    return FatalDeliveryError(
        f"{said}; retrying cannot help: check the credentials, the bucket and its policy.",
        status_code=status,
        answer=answer,
    )
