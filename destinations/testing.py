"""The conformance suite every destination kind passes, built-in or plugin.

Subclass `Conformance` in a test module; for each registered kind the suite asks for a
pytest fixture named `<kind>_harness` (put it in a conftest.py) that returns a `Harness`:
the kind's own way to set up a receiver, provoke failures and count effects. A kind that
is registered without such a fixture fails the suite, so none goes untested. A plugin's
own test suite can narrow the kinds by overriding the `harness` fixture.

    from destinations.testing import Conformance

    class TestConformance(Conformance):
        pass
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa
import pytest

import destinations
from destinations.base import DeliveryBatch, DestinationContext, DestinationSpec, WriteResult
from destinations.errors import (
    ConfigurationError,
    DeliveryError,
    EndpointGoneError,
    FatalDeliveryError,
    RetryableDeliveryError,
)
from destinations.network import UnsafeAddressError


class Failure(enum.Enum):
    """What can go wrong at a receiver, each with the error a retry policy needs."""

    SERVER_ERROR = "server-error"  # a 5xx, or the service's own "try later"
    RATE_LIMITED = "rate-limited"  # a 429 or throttling
    TIMEOUT = "timeout"  # no answer within the context's timeout
    CONNECTION_REFUSED = "connection-refused"  # nothing listens there (yet)
    REJECTED = "rejected"  # a 4xx: credentials or data refused
    GONE = "gone"  # a 410, or the target was deleted: disable the destination


EXPECTED: dict[Failure, type[DeliveryError]] = {
    Failure.SERVER_ERROR: RetryableDeliveryError,
    Failure.RATE_LIMITED: RetryableDeliveryError,
    Failure.TIMEOUT: RetryableDeliveryError,
    Failure.CONNECTION_REFUSED: RetryableDeliveryError,
    Failure.REJECTED: FatalDeliveryError,
    Failure.GONE: EndpointGoneError,
}


@dataclass(frozen=True)
class Setup:
    """Settings as a client would store them, and the operator's context to build them in."""

    config: Mapping[str, Any]
    context: DestinationContext


class Harness(Protocol):
    """What a kind supplies to the suite. Every setup must reach loopback only."""

    kind: str

    def working(self) -> Setup:
        """Settings for a destination that accepts writes; they include every secret field."""

    def failing(self, failure: Failure) -> Setup | None:
        """Settings (and receiver state) under which the next write meets `failure`; None
        when the kind cannot meet it at all (the case is then skipped, with a reason)."""

    def refused(self) -> Setup:
        """Settings pointing at an address the context's network policy refuses."""

    def effects(self) -> list[Any]:
        """The distinct effects at the receiver so far: one entry per batch as it landed
        (a rewrite that lands differently is a second entry)."""


_OCCURRED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def sample_batch(seq: int = 0, *, import_id: str = "imp_conformance") -> DeliveryBatch:
    """A small batch with the types templates produce, nulls included."""
    table = pa.table(
        {
            "name": pa.array(["Zyxwab Quorth", None], pa.string()),
            "count": pa.array([42, None], pa.int64()),
            "amount": pa.array([19.75, -0.5], pa.float64()),
            "ok": pa.array([True, False], pa.bool_()),
            "day": pa.array([dt.date(2024, 2, 29), None], pa.date32()),
            "at": pa.array([_OCCURRED, None], pa.timestamp("us", tz="UTC")),
        }
    )
    return DeliveryBatch(import_id, seq, 2, "conformance", table, occurred_at=_OCCURRED)


def secret_values(spec: DestinationSpec[Any], config: Mapping[str, Any]) -> list[str]:
    """Every secret string in stored settings, per the spec's secret fields."""
    found: list[str] = []
    for field in spec.fields:
        value = config.get(field.name) if field.secret else None
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(v for v in value if isinstance(v, str))
    return [value for value in found if value]


def _messages(exc: BaseException) -> Iterator[str]:
    """An error's message and those of its causes: a secret must be in none of them."""
    seen: BaseException | None = exc
    while seen is not None:
        yield str(seen)
        yield repr(seen)
        seen = seen.__cause__ or seen.__context__


def assert_no_secret(secrets: list[str], *texts: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a secret value appears in what is shown"


def _skip_relayed(kind: str) -> None:
    """A relayed kind (the host page) is delivered by the importer page, never written to
    by a worker, and reaches no address: its own tests cover the hand-off."""
    if destinations.spec(kind).relayed:
        pytest.skip(f"{kind} is delivered through the importer page, not by write()")


_WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "integer": "twelve",
    "number": "twelve",
    "boolean": "yes",
    "array": "not a list",
}


class Conformance:
    """The shared contract: spec, check(), idempotent write(), error sorting, SSRF, secrets."""

    @pytest.fixture(params=destinations.kinds())
    def harness(self, request: pytest.FixtureRequest) -> Harness:
        kind: str = request.param
        name = f"{kind}_harness"
        try:
            harness: Harness = request.getfixturevalue(name)
        except pytest.FixtureLookupError:
            pytest.fail(
                f"destination kind {kind!r} has no {name} fixture: every registered kind "
                "must supply a Harness to the conformance suite (see destinations.testing)"
            )
        assert harness.kind == kind
        return harness

    def test_the_spec_describes_every_setting(self, harness: Harness) -> None:
        spec = destinations.spec(harness.kind)
        assert spec.kind == harness.kind
        assert spec.title.strip()
        assert spec.fields, "a kind with no settings cannot be configured"
        for field in spec.fields:
            assert field.help.strip(), f"setting {field.name!r} has no help text for the form"
        schema = spec.json_schema()
        assert list(schema["properties"]) == [f.name for f in spec.fields]
        assert schema["additionalProperties"] is False
        for field in spec.fields:
            assert schema["properties"][field.name].get("writeOnly", False) is field.secret
        working = harness.working().config
        for field in spec.fields:
            if field.required:
                assert field.name in working, "the working settings leave out a required one"

    def test_validate_checks_without_writing(self, harness: Harness) -> None:
        setup = harness.working()
        destination = destinations.validate(harness.kind, setup.config, setup.context)
        assert destination.kind == harness.kind
        assert destination.spec is destinations.spec(harness.kind)
        destination.check()
        assert harness.effects() == []

    def test_writing_the_same_batch_twice_has_one_effect(self, harness: Harness) -> None:
        _skip_relayed(harness.kind)
        setup = harness.working()
        destination = destinations.create(harness.kind, setup.config, setup.context)
        result = destination.write(sample_batch(0))
        assert isinstance(result, WriteResult), "write() returns what the receiver said"
        once = harness.effects()
        assert len(once) == 1
        destination.write(sample_batch(0))
        assert harness.effects() == once
        # A second destination object (a retry in another worker) changes nothing either.
        destinations.create(harness.kind, setup.config, setup.context).write(sample_batch(0))
        assert harness.effects() == once
        destination.write(sample_batch(1))
        assert len(harness.effects()) == 2, "effects() must tell different batches apart"

    @pytest.mark.parametrize("failure", list(Failure), ids=[f.value for f in Failure])
    def test_failures_are_sorted_for_the_retry_policy(
        self, harness: Harness, failure: Failure
    ) -> None:
        setup = harness.failing(failure)
        if setup is None:
            pytest.skip(f"{harness.kind} cannot meet {failure.value}")
        destination = destinations.create(harness.kind, setup.config, setup.context)
        with pytest.raises(DeliveryError) as caught:
            destination.write(sample_batch(0))
        expected = EXPECTED[failure]
        assert isinstance(caught.value, expected), f"{failure.value}: {caught.value!r}"
        if expected is FatalDeliveryError:
            assert not isinstance(caught.value, EndpointGoneError | RetryableDeliveryError)
        assert str(caught.value).strip()
        spec = destinations.spec(harness.kind)
        assert_no_secret(secret_values(spec, setup.config), *_messages(caught.value))
        assert harness.effects() == []

    def test_bad_settings_are_fatal_configuration_errors(self, harness: Harness) -> None:
        spec = destinations.spec(harness.kind)
        setup = harness.working()
        secrets = secret_values(spec, setup.config)
        cases: list[tuple[dict[str, Any], str]] = [
            ({**setup.config, "no_such_setting": secrets[0] if secrets else 1}, "no_such_setting")
        ]
        for field in spec.fields:
            if field.required:
                without = {k: v for k, v in setup.config.items() if k != field.name}
                cases.append((without, field.name))
            cases.append(({**setup.config, field.name: _WRONG_TYPE[field.type]}, field.name))
        for config, named in cases:
            for build in (destinations.create, destinations.validate):
                with pytest.raises(ConfigurationError) as caught:
                    build(harness.kind, config, setup.context)
                assert isinstance(caught.value, FatalDeliveryError)
                assert named in str(caught.value)
                assert_no_secret(secrets, *_messages(caught.value))
        assert harness.effects() == []

    def test_a_refused_address_fails_check_and_write(self, harness: Harness) -> None:
        _skip_relayed(harness.kind)
        setup = harness.refused()
        destination = destinations.create(harness.kind, setup.config, setup.context)
        with pytest.raises(UnsafeAddressError):
            destination.check()
        with pytest.raises(UnsafeAddressError):
            destination.write(sample_batch(0))
        with pytest.raises(UnsafeAddressError) as caught:
            destinations.validate(harness.kind, setup.config, setup.context)
        spec = destinations.spec(harness.kind)
        assert_no_secret(secret_values(spec, setup.config), *_messages(caught.value))
        assert harness.effects() == []

    def test_secrets_are_redacted_everywhere_they_could_show(self, harness: Harness) -> None:
        spec = destinations.spec(harness.kind)
        setup = harness.working()
        secrets = secret_values(spec, setup.config)
        parsed = spec.parse(setup.config)
        destination = destinations.create(harness.kind, setup.config, setup.context)
        from_stored, from_parsed = spec.redact(setup.config), spec.redact(parsed)
        assert list(from_parsed) == [f.name for f in spec.fields]
        assert list(from_stored) == [
            f.name for f in spec.fields if f.secret or f.name in setup.config
        ]
        for redacted in (from_stored, from_parsed):
            for field in spec.fields:
                if field.secret:
                    assert redacted[field.name] == {"set": bool(setup.config.get(field.name))}
            assert_no_secret(secrets, json.dumps(redacted), repr(redacted))
        assert_no_secret(secrets, repr(parsed), str(parsed), repr(destination), str(destination))
        assert_no_secret(secrets, json.dumps(spec.json_schema()), repr(spec.fields))
