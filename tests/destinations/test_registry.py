"""The registry: kinds come from the `loadbay.destinations` entry points (built-ins too),
broken or clashing plugins are refused by name, and validate() runs check() at creation."""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import destinations
from destinations import (
    ENTRY_POINT_GROUP,
    DestinationContext,
    DestinationSpec,
    Registry,
    setting,
)
from destinations.errors import ConfigurationError, RegistrationError
from destinations.network import NetworkPolicy, UnsafeAddressError
from destinations.webhook import SPEC as WEBHOOK
from destinations.webhook import WebhookDestination, new_secret
from tests.destinations.conftest import HOST, FakeDNS

HERE = Path(__file__).resolve().parent
PYPROJECT = HERE.parents[1] / "pyproject.toml"
SECRET = new_secret()


def _entry(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def _builtin_specs() -> dict[str, str]:
    """Every DestinationSpec defined in the destinations package: kind -> "module:attr"."""
    found: dict[str, str] = {}
    for module_info in pkgutil.iter_modules(destinations.__path__, "destinations."):
        module = importlib.import_module(module_info.name)
        for attr, value in vars(module).items():
            # Defined here, not imported: its settings class lives in this module.
            if isinstance(value, DestinationSpec) and value.config.__module__ == module.__name__:
                found[value.kind] = f"{module_info.name}:{attr}"
    return found


@dataclass(frozen=True)
class _NoopConfig:
    token: str = setting("A token.", secret=True)


@dataclass(frozen=True)
class _Noop:
    config: _NoopConfig
    context: DestinationContext

    @property
    def kind(self) -> str:
        return "noop"

    @property
    def spec(self) -> DestinationSpec[Any]:
        return NOOP

    def check(self) -> None:
        pass

    def write(self, batch: object) -> None:
        pass


NOOP = DestinationSpec(kind="noop", title="No-op", config=_NoopConfig, build=_Noop)


# --- built-ins come through the entry-point group, like any plugin -----------------------------


def test_every_builtin_is_registered_through_its_entry_point() -> None:
    """A meta-test: a spec in destinations/ that is not an entry point is not a plugin."""
    builtins = _builtin_specs()
    assert "webhook" in builtins
    installed = {e.name: e for e in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    declared = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"][
        ENTRY_POINT_GROUP
    ]
    for kind, where in builtins.items():
        assert declared.get(kind) == where, f"pyproject.toml does not declare {kind} = {where}"
        assert kind in installed, f"{kind} is declared but not installed: pip install -e ."
        assert installed[kind].value == where
        assert installed[kind].load() is destinations.spec(kind)
        assert destinations.Registry().origin(kind) == f"entry point {kind} = {where}"


def test_kinds_are_the_entry_points_sorted() -> None:
    kinds = destinations.kinds()
    assert "webhook" in kinds
    assert list(kinds) == sorted(kinds)
    assert set(kinds) >= {e.name for e in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def test_a_registry_reads_its_entry_points_once_and_lazily() -> None:
    calls: list[int] = []

    def discover() -> list[metadata.EntryPoint]:
        calls.append(1)
        return [_entry("webhook", "destinations.webhook:SPEC")]

    registry = Registry(discover)
    assert calls == []
    assert registry.kinds() == ("webhook",)
    assert registry.spec("webhook") is WEBHOOK
    assert registry.kinds() == ("webhook",)
    assert calls == [1]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [_entry("webhook", "destinations.no_such_module:SPEC")],
            r"entry point webhook = destinations\.no_such_module:SPEC \(loadbay\.destinations\) "
            r"could not be loaded: ModuleNotFoundError",
        ),
        (
            [_entry("webhook", "destinations.webhook:new_secret")],
            r"webhook:new_secret \(loadbay\.destinations\) is a function, not a DestinationSpec",
        ),
        (
            [_entry("hook", "destinations.webhook:SPEC")],
            r"entry point hook = destinations\.webhook:SPEC .* names a spec of kind 'webhook'",
        ),
        (
            [
                _entry("webhook", "destinations.webhook:SPEC"),
                _entry("webhook", "tests.destinations.test_registry:WEBHOOK"),
            ],
            r"destination kind 'webhook' is already registered \(by entry point webhook = "
            r"destinations\.webhook:SPEC; again by entry point webhook = tests\.",
        ),
    ],
    ids=["import-fails", "not-a-spec", "name-differs-from-kind", "two-plugins-one-kind"],
)
def test_broken_plugins_are_refused_by_name(
    entries: list[metadata.EntryPoint], message: str
) -> None:
    registry = Registry(lambda: entries)
    with pytest.raises(RegistrationError, match=message):
        registry.kinds()


def test_register_adds_a_kind_beside_the_entry_points() -> None:
    registry = Registry(lambda: [_entry("webhook", "destinations.webhook:SPEC")])
    registry.register(NOOP)
    assert registry.kinds() == ("noop", "webhook")
    assert registry.origin("noop") == "register()"
    with pytest.raises(RegistrationError, match="'noop' is already registered"):
        registry.register(NOOP)
    with pytest.raises(RegistrationError, match="'webhook' is already registered"):
        registry.register(WEBHOOK)


@pytest.mark.parametrize("kind", ["ftp", "Webhook", "", "webhook "])
def test_unknown_kind_is_a_configuration_error(kind: str) -> None:
    with pytest.raises(ConfigurationError, match=f"Unknown destination kind {kind!r}; available: "):
        destinations.create(kind, {}, DestinationContext())


def test_with_no_plugin_installed_the_message_says_so() -> None:
    with pytest.raises(ConfigurationError, match=r"available: none \(is loadbay installed\?\)"):
        Registry(list).spec("webhook")


@pytest.mark.parametrize(
    ("kind", "error"),
    [("Webhook", ValueError), ("two words", ValueError), ("", ValueError)],
)
def test_a_spec_needs_a_plain_kind_name(kind: str, error: type[Exception]) -> None:
    with pytest.raises(error, match="must match"):
        DestinationSpec(kind=kind, title="x", config=_NoopConfig, build=_Noop)


def test_a_spec_needs_frozen_settings() -> None:
    @dataclass
    class Mutable:
        url: str = setting("An address.")

    with pytest.raises(TypeError, match="settings must be a frozen dataclass"):
        DestinationSpec(kind="mutable", title="x", config=Mutable, build=_Noop)  # type: ignore[arg-type]


# --- create() and validate() ---------------------------------------------------------------------


def test_create_builds_a_configured_webhook_without_checking_it() -> None:
    hook = destinations.create(
        "webhook", {"url": "https://hooks.example/in", "secret": SECRET}, DestinationContext()
    )
    assert isinstance(hook, WebhookDestination)
    assert (hook.kind, hook.url, hook.secrets) == ("webhook", "https://hooks.example/in", (SECRET,))
    assert hook.spec is WEBHOOK


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/in", "https://0x7f.1/in", "https://[::1]/in", f"https://{HOST}/in"],
)
def test_validate_refuses_an_unsafe_address_at_creation(fake_dns: FakeDNS, url: str) -> None:
    """Issue #15: the SSRF check runs when a destination is created, not only at delivery."""
    fake_dns({HOST: [["127.0.0.1"]]})
    with pytest.raises(UnsafeAddressError, match="loadbay only delivers to public addresses"):
        destinations.validate("webhook", {"url": url, "secret": SECRET}, DestinationContext())


def test_validate_refuses_plain_http_to_a_public_address() -> None:
    """A literal public address: refused before any connection, so nothing leaves the host."""
    with pytest.raises(ConfigurationError, match=r"uses plain http://; use an https:// URL"):
        destinations.validate(
            "webhook", {"url": "http://8.8.8.8/in", "secret": SECRET}, DestinationContext()
        )


def test_validate_turns_a_name_that_does_not_resolve_into_a_configuration_error(
    fake_dns: FakeDNS,
) -> None:
    fake_dns({})
    with pytest.raises(
        ConfigurationError,
        match=r"^The destination cannot be reached: could not resolve nowhere\.invalid: .*"
        r"Check the settings and try again\.$",
    ):
        destinations.validate(
            "webhook", {"url": "https://nowhere.invalid/in", "secret": SECRET}, DestinationContext()
        )


def test_validate_accepts_an_allowed_receiver_and_sends_nothing(fake_dns: FakeDNS) -> None:
    dns = fake_dns({HOST: [["127.0.0.1"]]})
    context = DestinationContext(policy=NetworkPolicy.from_strings(["127.0.0.0/8"]))
    # Nothing listens on port 9: check() must not connect (the receiver may not be up yet).
    hook = destinations.validate(
        "webhook", {"url": f"http://{HOST}:9/in", "secret": SECRET}, context
    )
    assert isinstance(hook, WebhookDestination)
    assert dns.names_asked == [HOST]


@pytest.mark.parametrize("kind", destinations.kinds())
def test_every_registered_kind_has_its_own_test_module(kind: str) -> None:
    """Adding a destination means adding tests/destinations/test_<kind>.py (a hyphen in
    the kind is an underscore in the module's name)."""
    module = HERE / f"test_{kind.replace('-', '_')}.py"
    assert module.is_file(), f"destination {kind!r} has no {module.relative_to(HERE.parent)}"
    assert "def test_" in module.read_text(encoding="utf-8")
