"""Destinations, registered by name. Built-in ones use the same `register` as plugins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from destinations.base import (
    DeliveryBatch,
    Destination,
    DestinationContext,
    DestinationFactory,
)
from destinations.errors import ConfigurationError

__all__ = ["DeliveryBatch", "Destination", "DestinationContext", "create", "kinds", "register"]

_REGISTRY: dict[str, DestinationFactory] = {}


def register(kind: str, factory: DestinationFactory) -> None:
    if kind in _REGISTRY:
        raise ValueError(f"destination kind {kind!r} is already registered")
    _REGISTRY[kind] = factory


def kinds() -> tuple[str, ...]:
    _load_builtins()
    return tuple(sorted(_REGISTRY))


def create(kind: str, config: Mapping[str, Any], context: DestinationContext) -> Destination:
    _load_builtins()
    try:
        factory = _REGISTRY[kind]
    except KeyError:
        raise ConfigurationError(
            f"Unknown destination kind {kind!r}; available: {', '.join(sorted(_REGISTRY))}."
        ) from None
    return factory(config, context)


def _load_builtins() -> None:
    if "webhook" not in _REGISTRY:
        from destinations import webhook

        register("webhook", webhook.WebhookDestination.from_config)
