"""The destination registry: built-ins, unknown kinds, duplicates, and a test per kind."""

from __future__ import annotations

from pathlib import Path

import pytest

import destinations
from destinations import DestinationContext
from destinations.errors import ConfigurationError
from destinations.webhook import WebhookDestination, new_secret

HERE = Path(__file__).resolve().parent


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, destinations.DestinationFactory]:
    """A private copy of the registry, so registering in a test leaves no trace."""
    destinations.kinds()  # load the built-ins into the real registry first
    copy = dict(destinations._REGISTRY)
    monkeypatch.setattr(destinations, "_REGISTRY", copy)
    return copy


def test_kinds_include_the_webhook() -> None:
    assert "webhook" in destinations.kinds()
    assert list(destinations.kinds()) == sorted(destinations.kinds())


def test_create_builds_a_configured_webhook() -> None:
    secret = new_secret()
    hook = destinations.create(
        "webhook", {"url": "https://hooks.example/in", "secret": secret}, DestinationContext()
    )
    assert isinstance(hook, WebhookDestination)
    assert (hook.kind, hook.url, hook.secrets) == ("webhook", "https://hooks.example/in", (secret,))


@pytest.mark.parametrize("kind", ["s3", "Webhook", "", "webhook "])
def test_unknown_kind_is_a_configuration_error(kind: str) -> None:
    with pytest.raises(ConfigurationError, match=f"Unknown destination kind {kind!r}; available: "):
        destinations.create(kind, {}, DestinationContext())


def test_registering_an_existing_kind_is_refused(registry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="destination kind 'webhook' is already registered"):
        destinations.register("webhook", WebhookDestination.from_config)
    assert registry["webhook"] == WebhookDestination.from_config


def test_a_registered_kind_can_be_created(registry: dict[str, object]) -> None:
    made: list[object] = []

    def factory(config: object, context: DestinationContext) -> object:
        made.append(config)
        return "built"

    destinations.register("noop", factory)  # type: ignore[arg-type]
    assert "noop" in destinations.kinds()
    assert destinations.create("noop", {"a": 1}, DestinationContext()) == "built"
    assert made == [{"a": 1}]
    with pytest.raises(ValueError, match="already registered"):
        destinations.register("noop", factory)  # type: ignore[arg-type]


def test_the_registry_copy_does_not_leak() -> None:
    assert "noop" not in destinations.kinds()


@pytest.mark.parametrize("kind", destinations.kinds())
def test_every_registered_kind_has_its_own_test_module(kind: str) -> None:
    """Adding a destination means adding tests/destinations/test_<kind>.py."""
    module = HERE / f"test_{kind}.py"
    assert module.is_file(), f"destination {kind!r} has no {module.relative_to(HERE.parent)}"
    assert "def test_" in module.read_text(encoding="utf-8")
