"""The destination interface: check a connection, write one batch idempotently."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from destinations.network import NetworkPolicy


@dataclass(frozen=True)
class DeliveryBatch:
    """One batch of clean, typed rows. (import_id, seq) is the idempotency key."""

    import_id: str
    seq: int
    batch_count: int
    template: str
    table: pa.Table

    @property
    def key(self) -> str:
        return f"{self.import_id}-{self.seq}"


@dataclass(frozen=True)
class DestinationContext:
    """What the operator decides, not the client: which networks may be reached."""

    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    ca_file: str | None = None
    timeout: float = 15.0


class Destination(Protocol):
    @property
    def kind(self) -> str: ...

    def check(self) -> None:
        """Raise a DeliveryError that says what to fix when the destination is unusable."""

    def write(self, batch: DeliveryBatch) -> None:
        """Deliver the batch; delivering the same batch twice must have one effect."""


DestinationFactory = Callable[[Mapping[str, Any], DestinationContext], Destination]
