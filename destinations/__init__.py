"""Destinations, registered by kind through the `loadbay.destinations` entry-point group.

Built-in kinds are registered exactly as a third-party plugin's would be: an entry point
`<kind> = "package.module:SPEC"` naming a DestinationSpec (see pyproject.toml). They are
discovered on first use, not at import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any

from destinations.base import (
    ConfigField,
    DeliveryBatch,
    Destination,
    DestinationContext,
    DestinationSpec,
    setting,
)
from destinations.errors import (
    ConfigurationError,
    DeliveryError,
    RegistrationError,
    RetryableDeliveryError,
)
from destinations.network import UnsafeAddressError

__all__ = [
    "ENTRY_POINT_GROUP",
    "ConfigField",
    "DeliveryBatch",
    "Destination",
    "DestinationContext",
    "DestinationSpec",
    "Registry",
    "create",
    "kinds",
    "register",
    "setting",
    "spec",
    "validate",
]

ENTRY_POINT_GROUP = "loadbay.destinations"


def _installed() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


class Registry:
    """Specs by kind: the entry points, loaded once, plus any registered in-process."""

    def __init__(self, discover: Callable[[], Iterable[metadata.EntryPoint]] = _installed):
        self._discover = discover
        self._specs: dict[str, DestinationSpec[Any]] = {}
        self._origins: dict[str, str] = {}
        self._loaded = False
        self._lock = threading.Lock()

    def register(self, spec: DestinationSpec[Any], *, origin: str = "register()") -> None:
        self._load()
        with self._lock:
            self._add(spec, origin)

    def kinds(self) -> tuple[str, ...]:
        self._load()
        return tuple(sorted(self._specs))

    def origin(self, kind: str) -> str:
        """Where a kind came from: its entry point ("name = module:attr") or register()."""
        self.spec(kind)
        return self._origins[kind]

    def spec(self, kind: str) -> DestinationSpec[Any]:
        self._load()
        try:
            return self._specs[kind]
        except KeyError:
            available = ", ".join(sorted(self._specs)) or "none (is loadbay installed?)"
            raise ConfigurationError(
                f"Unknown destination kind {kind!r}; available: {available}."
            ) from None

    def _add(self, spec: DestinationSpec[Any], origin: str) -> None:
        if spec.kind in self._specs:
            raise RegistrationError(
                f"destination kind {spec.kind!r} is already registered "
                f"(by {self._origins[spec.kind]}; again by {origin})"
            )
        self._specs[spec.kind] = spec
        self._origins[spec.kind] = origin

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for entry in sorted(self._discover(), key=lambda e: (e.name, e.value)):
                self._add(_load_entry(entry), f"entry point {entry.name} = {entry.value}")
            self._loaded = True


def _load_entry(entry: metadata.EntryPoint) -> DestinationSpec[Any]:
    where = f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP})"
    try:
        loaded = entry.load()
    except Exception as exc:  # noqa: BLE001 - any import failure, reported with its origin
        raise RegistrationError(f"{where} could not be loaded: {exc!r}") from exc
    if not isinstance(loaded, DestinationSpec):
        raise RegistrationError(f"{where} is a {type(loaded).__name__}, not a DestinationSpec")
    if loaded.kind != entry.name:
        raise RegistrationError(f"{where} names a spec of kind {loaded.kind!r}")
    return loaded


_registry = Registry()


def register(spec: DestinationSpec[Any]) -> None:
    """Add a kind in-process (an embedding application's own); entry points are preferred."""
    _registry.register(spec)


def kinds() -> tuple[str, ...]:
    return _registry.kinds()


def spec(kind: str) -> DestinationSpec[Any]:
    """The spec of a kind: its title, settings (fields, json_schema) and redact()."""
    return _registry.spec(kind)


def create(kind: str, config: Mapping[str, Any], context: DestinationContext) -> Destination:
    """A destination from stored settings; parses them, but checks nothing on the network."""
    return _registry.spec(kind).create(config, context)


def probe(destination: Destination) -> str | None:
    """The kind's connection test (reach it as a delivery would, write no rows): what it
    found, or None when the kind has none. Errors are ConfigurationErrors that say what to
    change."""
    run = getattr(destination, "probe", None)
    if run is None:
        return None
    try:
        return str(run())
    except (ConfigurationError, UnsafeAddressError):
        raise
    except RetryableDeliveryError as exc:
        raise ConfigurationError(f"The destination cannot be reached now: {exc}") from exc
    except DeliveryError as exc:
        raise ConfigurationError(str(exc)) from exc


def validate(kind: str, config: Mapping[str, Any], context: DestinationContext) -> Destination:
    """Parse the settings and run check(), as when a client creates a destination.

    Raises UnsafeAddressError when the destination points where loadbay must not go, and
    ConfigurationError for anything else that keeps it from working (including a host that
    does not resolve now); both messages say what to change.
    """
    destination = create(kind, config, context)
    try:
        destination.check()
    except (ConfigurationError, UnsafeAddressError):
        raise
    except RetryableDeliveryError as exc:
        raise ConfigurationError(
            f"The destination cannot be reached: {exc}. Check the settings and try again."
        ) from exc
    except DeliveryError as exc:
        raise ConfigurationError(str(exc)) from exc
    return destination
