"""Webhook destination: rows as JSON, signed per Standard Webhooks 1.0.

`webhook-id` is the batch's idempotency key, identical on every retry, so receivers
can deduplicate; the timestamp and signature are fresh per attempt.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from destinations.base import DeliveryBatch, DestinationContext
from destinations.errors import (
    ConfigurationError,
    EndpointGoneError,
    FatalDeliveryError,
    RetryableDeliveryError,
)
from destinations.network import NetworkPolicy, pinned_client

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SECRET_BYTES = 32
EVENT_TYPE = "import.batch"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class WebhookDestination:
    url: str
    secrets: tuple[str, ...]
    policy: NetworkPolicy
    timeout: float = 15.0
    ca_file: str | None = None
    kind: str = "webhook"

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], context: DestinationContext
    ) -> WebhookDestination:
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ConfigurationError('A webhook destination needs an http(s) "url".')
        raw = config.get("secrets") or [config.get("secret")]
        keys = tuple(s for s in raw if isinstance(s, str))
        if not keys:
            raise ConfigurationError("A webhook destination needs a signing secret (whsec_...).")
        for key in keys:
            if len(_secret_bytes(key)) < 24:
                raise ConfigurationError("A webhook secret must hold at least 24 random bytes.")
        return cls(url, keys, context.policy, context.timeout, context.ca_file)

    def check(self) -> None:
        with self._client() as client:
            client.build_request("POST", self.url)

    def write(self, batch: DeliveryBatch) -> None:
        body = json.dumps(_payload(batch), default=_json_value, separators=(",", ":"))
        now = dt.datetime.now(dt.UTC)
        signatures = " ".join(
            Webhook(key).sign(msg_id=batch.key, timestamp=now, data=body) for key in self.secrets
        )
        headers = {
            "content-type": "application/json",
            "webhook-id": batch.key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
            "user-agent": "loadbay-webhooks/1",
        }
        try:
            with self._client() as client:
                response = client.post(self.url, content=body.encode(), headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableDeliveryError(
                f"{self.url} did not answer within {self.timeout:g} s."
            ) from exc
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(f"Could not connect to {self.url}: {exc}.") from exc
        _judge(self.url, response)

    def _client(self) -> httpx.Client:
        verify: str | bool = self.ca_file if self.ca_file else True
        return pinned_client(self.url, self.policy, timeout=self.timeout, verify=verify)


def _judge(url: str, response: httpx.Response) -> None:
    """Only a 2xx is success; a redirect is a failure and is never followed."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 410:
        raise EndpointGoneError(f"{url} answered 410 Gone; the destination is disabled.")
    if status in (429, 503):
        raise RetryableDeliveryError(
            f"{url} answered {status}.", retry_after=_retry_after(response)
        )
    if 300 <= status < 400:
        raise RetryableDeliveryError(f"{url} answered a redirect ({status}); it is not followed.")
    if status >= 500 or status in (408, 409, 425):
        raise RetryableDeliveryError(f"{url} answered {status}.")
    raise FatalDeliveryError(f"{url} refused the delivery with {status}.")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    if value.isdigit():
        return float(value)
    try:
        when = dt.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _payload(batch: DeliveryBatch) -> dict[str, Any]:
    return {
        "type": EVENT_TYPE,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "data": {
            "import_id": batch.import_id,
            "template": batch.template,
            "batch": batch.seq,
            "batch_count": batch.batch_count,
            "row_count": batch.table.num_rows,
            "rows": batch.table.to_pylist(),
        },
    }


def _json_value(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _secret_bytes(key: str) -> bytes:
    raw = key.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw + "==")
    except ValueError:
        return b""
