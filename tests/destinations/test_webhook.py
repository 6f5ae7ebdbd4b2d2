"""The webhook destination against a real receiver on 127.0.0.1: payload, Standard Webhooks
signatures (with key rotation), how each answer is judged, Retry-After, JSON it cannot send,
its trust store, and which settings are refused. (The shared contract is in
test_conformance.py.)"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import math
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

import destinations
from destinations import DeliveryBatch, DestinationContext
from destinations import webhook as webhook_module
from destinations.errors import (
    ConfigurationError,
    DeliveryError,
    EndpointGoneError,
    FatalDeliveryError,
    RetryableDeliveryError,
)
from destinations.network import NetworkPolicy, UnsafeAddressError, ssl_context
from destinations.webhook import MAX_RETRY_AFTER, WebhookDestination, new_secret
from tests.destinations.conftest import (
    HOST,
    FakeDNS,
    Pki,
    Receiver,
    closed_port,
    serve_receiver,
    stop_receiver,
)

LOOPBACK = NetworkPolicy.from_strings(["127.0.0.0/8"])
CONTEXT = DestinationContext(policy=LOOPBACK, timeout=5.0)
SECRET = new_secret()
ROWS = [
    {
        "name": "Zyxwab Quorth",
        "count": 42,
        "amount": 19.75,
        "day": dt.date(2024, 2, 29),
        "at": dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC),
        "ok": True,
    },
    {"name": "Brunhild", "count": None, "amount": -0.5, "day": None, "at": None, "ok": False},
]
JSON_ROWS = [
    {
        "name": "Zyxwab Quorth",
        "count": 42,
        "amount": 19.75,
        "day": "2024-02-29",
        "at": "2024-03-01T10:00:00+00:00",
        "ok": True,
    },
    {"name": "Brunhild", "count": None, "amount": -0.5, "day": None, "at": None, "ok": False},
]


def _batch(seq: int = 1) -> DeliveryBatch:
    schema = pa.schema(
        [
            ("name", pa.string()),
            ("count", pa.int64()),
            ("amount", pa.float64()),
            ("day", pa.date32()),
            ("at", pa.timestamp("us", tz="UTC")),
            ("ok", pa.bool_()),
        ]
    )
    return DeliveryBatch(
        import_id="imp_abc",
        seq=seq,
        batch_count=3,
        template="orders",
        table=pa.Table.from_pylist(ROWS, schema=schema),
    )


def _make(config: Mapping[str, Any], context: DestinationContext = CONTEXT) -> WebhookDestination:
    hook = destinations.create("webhook", config, context)
    assert isinstance(hook, WebhookDestination)
    return hook


def _hook(
    receiver: Receiver, context: DestinationContext = CONTEXT, **config: Any
) -> WebhookDestination:
    return _make({"url": receiver.url, "secret": SECRET, **config}, context)


class _Clock:
    """Shifts destinations.webhook's notion of now (only its module sees the shift)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = dt.timedelta(0)
        clock = self

        class Shifted(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
                return dt.datetime.now(tz) + clock.offset

        monkeypatch.setattr(
            webhook_module,
            "dt",
            types.SimpleNamespace(
                datetime=Shifted, date=dt.date, time=dt.time, UTC=dt.UTC, timedelta=dt.timedelta
            ),
        )


def test_payload_shape(receiver: Receiver) -> None:
    before = time.time()
    _hook(receiver).write(_batch())
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hook")
    payload = json.loads(request.body)
    assert list(payload) == ["type", "timestamp", "data"]
    assert payload["type"] == "import.batch"
    sent = dt.datetime.fromisoformat(payload["timestamp"])
    assert sent.utcoffset() == dt.timedelta(0)
    assert before - 1 <= sent.timestamp() <= time.time() + 1
    assert payload["data"] == {
        "import_id": "imp_abc",
        "template": "orders",
        "batch": 1,
        "batch_count": 3,
        "part": 0,
        "part_count": 1,
        "row_count": 2,
        "left_out": 0,
        "rows": JSON_ROWS,
    }
    assert request.body == json.dumps(payload, separators=(",", ":")).encode()


def test_headers_follow_standard_webhooks(receiver: Receiver) -> None:
    before = int(time.time())
    _hook(receiver).write(_batch())
    [request] = receiver.requests
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "loadbay-webhooks/1"
    assert headers["webhook-id"] == "imp_abc-1-0"
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    assert headers["webhook-signature"].startswith("v1,")
    assert " " not in headers["webhook-signature"]
    assert Webhook(SECRET).verify(request.body, headers) == json.loads(request.body)


def test_signature_does_not_verify_with_another_secret_or_a_changed_body(
    receiver: Receiver,
) -> None:
    _hook(receiver).write(_batch())
    [request] = receiver.requests
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body.replace(b"Zyxwab", b"Zyxwac"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body, {**request.headers, "webhook-id": "imp_abc-2"})


def test_every_attempt_has_the_same_id_and_a_current_timestamp(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock(monkeypatch)
    receiver.answer(503, 500)
    hook = _hook(receiver)
    for offset in (0, 600, 7200):  # a first attempt, then retries 10 min and 2 h later
        clock.offset = dt.timedelta(seconds=offset)
        try:
            hook.write(_batch())
        except RetryableDeliveryError:
            pass
    assert len(receiver.requests) == 3
    now = time.time()
    for request, offset in zip(receiver.requests, (0, 600, 7200), strict=True):
        headers = request.headers
        assert headers["webhook-id"] == "imp_abc-1-0"
        stamp = int(headers["webhook-timestamp"])
        assert abs(stamp - (now + offset)) <= 5
        assert json.loads(request.body)["data"]["rows"] == JSON_ROWS
        expected = Webhook(SECRET).sign(
            "imp_abc-1-0", dt.datetime.fromtimestamp(stamp, dt.UTC), request.body.decode()
        )
        assert headers["webhook-signature"] == expected
    assert len({r.headers["webhook-signature"] for r in receiver.requests}) == 3


def test_rotation_signs_with_every_secret(receiver: Receiver) -> None:
    old, new = new_secret(), new_secret()
    hook = _make({"url": receiver.url, "secrets": [old, new]})
    hook.write(_batch())
    [request] = receiver.requests
    entries = request.headers["webhook-signature"].split(" ")
    assert len(entries) == 2 and all(e.startswith("v1,") for e in entries)
    when = dt.datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), dt.UTC)
    for entry, secret in zip(entries, (old, new), strict=True):
        assert entry == Webhook(secret).sign("imp_abc-1-0", when, request.body.decode())
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "import.batch"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.body, request.headers)


def test_secrets_take_precedence_over_secret(receiver: Receiver) -> None:
    rotated = new_secret()
    hook = _make({"url": receiver.url, "secret": SECRET, "secrets": [rotated]})
    assert hook.secrets == (rotated,)


STATUSES: list[tuple[int, dict[str, str], type[DeliveryError] | None, float | None]] = [
    (200, {}, None, None),
    (201, {}, None, None),
    (202, {}, None, None),
    (204, {}, None, None),
    (301, {"location": "/elsewhere"}, RetryableDeliveryError, None),
    (302, {"location": "/elsewhere"}, RetryableDeliveryError, None),
    (307, {"location": "/elsewhere"}, RetryableDeliveryError, None),
    (308, {"location": "/elsewhere"}, RetryableDeliveryError, None),
    (410, {}, EndpointGoneError, None),
    (429, {"retry-after": "120"}, RetryableDeliveryError, 120.0),
    (429, {}, RetryableDeliveryError, None),
    (429, {"retry-after": "soon"}, RetryableDeliveryError, None),
    (503, {"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}, RetryableDeliveryError, 0.0),
    (503, {}, RetryableDeliveryError, None),
    (500, {}, RetryableDeliveryError, None),
    (502, {}, RetryableDeliveryError, None),
    (504, {}, RetryableDeliveryError, None),
    (408, {}, RetryableDeliveryError, None),
    (409, {}, RetryableDeliveryError, None),
    (425, {}, RetryableDeliveryError, None),
    (400, {}, FatalDeliveryError, None),
    (401, {}, FatalDeliveryError, None),
    (403, {}, FatalDeliveryError, None),
    (404, {}, FatalDeliveryError, None),
    (422, {}, FatalDeliveryError, None),
]


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    STATUSES,
    ids=[f"{s[0]}-{'-'.join(s[1].values()) or 'plain'}" for s in STATUSES],
)
def test_how_each_answer_is_judged(
    receiver: Receiver,
    status: int,
    headers: dict[str, str],
    error: type[DeliveryError] | None,
    retry_after: float | None,
) -> None:
    receiver.answer((status, headers))
    if error is None:
        _hook(receiver).write(_batch())
    else:
        with pytest.raises(error) as caught:
            _hook(receiver).write(_batch())
        assert type(caught.value) is error  # e.g. a 404 is not a 410
        assert str(caught.value).startswith(receiver.url)
        if isinstance(caught.value, RetryableDeliveryError):
            assert caught.value.retry_after == retry_after
    # Exactly one request: a redirect target is never requested.
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_retry_after_as_a_future_http_date(receiver: Receiver) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    receiver.answer((503, {"retry-after": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}))
    with pytest.raises(RetryableDeliveryError) as caught:
        _hook(receiver).write(_batch())
    assert caught.value.retry_after is not None
    assert 3590 <= caught.value.retry_after <= 3600


def test_redirect_message_says_it_is_not_followed(receiver: Receiver) -> None:
    receiver.answer((302, {"location": receiver.origin + "/elsewhere"}))
    with pytest.raises(
        RetryableDeliveryError, match=r"answered a redirect \(302\); it is not followed"
    ):
        _hook(receiver).write(_batch())
    assert len(receiver.requests) == 1


def test_a_receiver_that_hangs_is_a_retryable_timeout(receiver: Receiver) -> None:
    receiver.hold_next()
    quick = DestinationContext(policy=LOOPBACK, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(RetryableDeliveryError, match=r"did not answer within 0\.3 s\."):
        _hook(receiver, quick).write(_batch())
    assert time.monotonic() - started < 3
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_retryable() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    hook = _make({"url": url, "secret": SECRET})
    with pytest.raises(RetryableDeliveryError, match=f"Could not connect to {url}"):
        hook.write(_batch())


def test_loopback_without_the_allow_list_is_refused_before_connecting(receiver: Receiver) -> None:
    hook = _hook(receiver, DestinationContext())
    with pytest.raises(UnsafeAddressError, match="loadbay only delivers to public addresses"):
        hook.write(_batch())
    with pytest.raises(UnsafeAddressError):
        hook.check()
    assert receiver.requests == []


RETRY_AFTERS: list[tuple[str, str, float | None]] = [
    # (case, Retry-After, the delay the retry policy is told)
    ("seconds", "120", 120.0),
    ("padded", " 120 ", 120.0),
    ("a-day", "86400", MAX_RETRY_AFTER),
    ("huge", "99999999999999", MAX_RETRY_AFTER),
    ("absurd", "9" * 400, MAX_RETRY_AFTER),
    ("far-date", "Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
    ("rfc850-date", "Friday, 31-Dec-99 23:59:59 GMT", 0.0),
    ("past-date", "Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
    ("negative", "-120", None),
    ("fraction", "1.5", None),
    ("exponent", "1e9", None),
    ("garbage", "soon", None),
    ("empty", "", None),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(value, expected) for _, value, expected in RETRY_AFTERS],
    ids=[case for case, _, _ in RETRY_AFTERS],
)
def test_retry_after_is_clamped_to_a_day(
    receiver: Receiver, value: str, expected: float | None
) -> None:
    """Issue #15: a huge Retry-After overflowed the scheduler and parked the delivery."""
    receiver.answer((429, {"retry-after": value}))
    with pytest.raises(RetryableDeliveryError) as caught:
        _hook(receiver).write(_batch())
    assert caught.value.retry_after == expected
    assert MAX_RETRY_AFTER == 24 * 3600


def test_retry_after_a_week_away_waits_a_day(receiver: Receiver) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
    receiver.answer((503, {"retry-after": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}))
    with pytest.raises(RetryableDeliveryError) as caught:
        _hook(receiver).write(_batch())
    assert caught.value.retry_after == MAX_RETRY_AFTER


def test_a_retry_sends_the_same_body(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The body's timestamp is when the batch was sealed, so a retry is byte-identical and
    only the webhook-timestamp header (and signature) moves."""
    clock = _Clock(monkeypatch)
    sealed = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    batch = dataclasses.replace(_batch(), occurred_at=sealed)
    receiver.answer(503)
    hook = _hook(receiver)
    with pytest.raises(RetryableDeliveryError):
        hook.write(batch)
    clock.offset = dt.timedelta(minutes=5)
    hook.write(batch)
    first, second = receiver.requests
    assert first.body == second.body
    assert json.loads(first.body)["timestamp"] == "2026-03-04T05:06:07+00:00"
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "imp_abc-1-0"
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) in (
        299,
        300,
        301,
    )
    for request in (first, second):
        assert Webhook(SECRET).verify(request.body, request.headers)["data"]["batch"] == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_or_infinity_is_a_fatal_error_naming_the_column(receiver: Receiver, bad: float) -> None:
    """Issue #15: JSON has no NaN; sending it anyway breaks strict receivers."""
    table = pa.table({"name": ["a", "b"], "amount": pa.array([1.5, bad], pa.float64())})
    batch = DeliveryBatch("imp_abc", 2, 3, "orders", table)
    with pytest.raises(FatalDeliveryError) as caught:
        _hook(receiver).write(batch)
    assert type(caught.value) is FatalDeliveryError
    assert str(caught.value) == (
        'Batch 2 of import imp_abc cannot be sent as JSON: column "amount" holds NaN or '
        "infinity, which JSON cannot represent. Retrying cannot help; fix the data and "
        "import again."
    )
    assert receiver.requests == []


def test_a_value_with_no_json_form_is_a_fatal_error(receiver: Receiver) -> None:
    table = pa.table({"blob": pa.array([b"\x00\x01"], pa.binary())})
    with pytest.raises(FatalDeliveryError, match='column "blob" is of type binary') as caught:
        _hook(receiver).write(DeliveryBatch("imp_abc", 0, 1, "orders", table))
    assert "\\x00" not in str(caught.value)
    assert receiver.requests == []


def test_plain_http_to_an_address_not_opened_is_refused_by_check() -> None:
    """Issue #15: http:// only where the operator opened the range; literal, so no lookup
    and no connection."""
    hook = _make({"url": "http://8.8.8.8/hook", "secret": SECRET}, DestinationContext())
    with pytest.raises(ConfigurationError, match=r"^http://8\.8\.8\.8/hook uses plain http://"):
        hook.check()


def test_plain_http_to_the_allow_list_is_delivered(receiver: Receiver) -> None:
    assert receiver.url.startswith("http://127.0.0.1:")
    _hook(receiver).write(_batch())
    assert len(receiver.requests) == 1


def test_https_with_an_extra_ca_file_still_trusts_the_default_store(
    fake_dns: FakeDNS, pki: Pki
) -> None:
    """Issue #15: LOADBAY_WEBHOOK_CA_FILE adds a CA; it used to replace every other one."""
    fake_dns({HOST: [["127.0.0.1"]]})
    state, server = serve_receiver(pki.issue(HOST), host=HOST)
    try:
        context = DestinationContext(policy=LOOPBACK, timeout=5.0, ca_file=str(pki.ca_file))
        hook = _make({"url": state.url, "secret": SECRET}, context)
        hook.check()
        hook.write(_batch())
        with pytest.raises(RetryableDeliveryError, match="certificate verify failed"):
            _make({"url": state.url, "secret": SECRET}).write(_batch())
    finally:
        stop_receiver(state, server)
    assert [r.status for r in state.requests] == [200]
    default = ssl_context().cert_store_stats()["x509_ca"]
    assert default > 0
    assert ssl_context(str(pki.ca_file)).cert_store_stats()["x509_ca"] == default + 1


def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigurationError, match="check LOADBAY_WEBHOOK_CA_FILE"):
        ssl_context(str(missing))


def test_check_sends_nothing(receiver: Receiver) -> None:
    _hook(receiver).check()
    assert receiver.requests == []


def _short_secret(size: int) -> str:
    return "whsec_" + base64.b64encode(bytes(size)).decode()


URL = "https://hooks.example/in"
REFUSED_SETTINGS: list[tuple[str, Any, str]] = [
    ("no-url", {"secret": SECRET}, 'A webhook destination needs "url": The https:// address'),
    (
        "ftp-url",
        {"url": "ftp://hooks.example/in", "secret": SECRET},
        'The "url" of a webhook destination must start with https://.',
    ),
    (
        "no-scheme",
        {"url": "hooks.example/in", "secret": SECRET},
        'The "url" of a webhook destination must start with https://.',
    ),
    (
        "url-not-text",
        {"url": 42, "secret": SECRET},
        'The "url" setting of a webhook destination must be text, not a number.',
    ),
    (
        "url-null",
        {"url": None, "secret": SECRET},
        'The "url" setting of a webhook destination must be text, not null.',
    ),
    ("no-secret", {"url": URL}, 'needs a signing secret: "secret" (whsec_...).'),
    (
        "secret-not-text",
        {"url": URL, "secret": 42},
        'The "secret" setting of a webhook destination must be text or null, not a number.',
    ),
    (
        "secrets-not-a-list",
        {"url": URL, "secrets": SECRET},
        'The "secrets" setting of a webhook destination must be a list of texts, not text.',
    ),
    (
        "secrets-hold-a-number",
        {"url": URL, "secrets": [SECRET, 7]},
        'The "secrets" setting of a webhook destination must be a list of texts, not a list.',
    ),
    ("empty-secrets", {"url": URL, "secrets": []}, "needs a signing secret"),
    ("16-byte-secret", {"url": URL, "secret": _short_secret(16)}, "at least 24 random bytes"),
    ("23-byte-secret", {"url": URL, "secret": _short_secret(23)}, "at least 24 random bytes"),
    (
        "not-base64",
        {"url": URL, "secret": "whsec_" + "!" * 40},
        "Webhook signing secret 1 is too short or not base64",
    ),
    (
        "one-short-secret-in-rotation",
        {"url": URL, "secrets": [SECRET, _short_secret(8)]},
        "Webhook signing secret 2 is too short",
    ),
    (
        "unknown-setting",
        {"url": URL, "secret": SECRET, "timeout": 3},
        "Unknown setting 'timeout' for a webhook destination; "
        "its settings are: url, secret, secrets, rows_per_request.",
    ),
    (
        "unknown-settings",
        {"url": URL, "secret": SECRET, "Secret": SECRET, "headers": {}},
        "Unknown settings 'Secret', 'headers' for a webhook destination",
    ),
    ("not-an-object", [URL, SECRET], "must be a JSON object, not a list."),
]


@pytest.mark.parametrize(
    ("config", "message"),
    [(config, message) for _, config, message in REFUSED_SETTINGS],
    ids=[case for case, _, _ in REFUSED_SETTINGS],
)
def test_unusable_settings_are_refused(config: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _make(config)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_settings_parse_into_a_frozen_dataclass() -> None:
    spec = destinations.spec("webhook")
    parsed = spec.parse({"url": URL, "secrets": [SECRET]})
    assert parsed == webhook_module.WebhookConfig(url=URL, secrets=(SECRET,))
    assert parsed.signing_keys == (SECRET,)
    with pytest.raises(AttributeError):
        setattr(parsed, "url", "https://elsewhere.example/")  # noqa: B010 - frozen on purpose
    assert repr(parsed) == f"WebhookConfig(url={URL!r}, rows_per_request=1000)"


def test_redact_answers_secrets_as_set_or_not() -> None:
    spec = destinations.spec("webhook")
    assert spec.redact({"url": URL, "secret": SECRET}) == {
        "url": URL,
        "secret": {"set": True},
        "secrets": {"set": False},
    }
    assert spec.redact(spec.parse({"url": URL, "secrets": [SECRET, new_secret()]})) == {
        "url": URL,
        "secret": {"set": False},
        "secrets": {"set": True},
        "rows_per_request": 1000,
    }
    # A key the spec does not declare is not shown: it could be a secret.
    assert spec.redact({"url": URL, "secret": "", "token": SECRET}) == {
        "url": URL,
        "secret": {"set": False},
        "secrets": {"set": False},
    }


@pytest.mark.parametrize("size", [24, 32, 64])
def test_secrets_of_24_bytes_or_more_are_accepted(size: int) -> None:
    hook = _make({"url": "https://hooks.example/in", "secret": _short_secret(size)})
    assert hook.secrets == (_short_secret(size),)
    assert (hook.url, hook.kind, hook.timeout) == ("https://hooks.example/in", "webhook", 5.0)


def test_new_secrets_are_whsec_with_32_random_bytes() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
