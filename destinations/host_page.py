"""The host page: rows handed to the client's own page through the SDK's onData callback.

For clients without a backend. No worker sends anything: after the upload, the importer
page reads the import's rows (server/handoff.py), posts them to the page that embedded it
(its validated origin only), and reports the page's acknowledgement; only that settles the
deliveries. They get no queue job (server/deliveries.py `enqueue_all`, server/sweeper.py);
a worker that meets one anyway (a retry asked through the API) finds it unacknowledged:
an import the page never acknowledged is never counted delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

from destinations.base import DestinationContext, DestinationSpec, WriteResult, setting
from destinations.errors import ConfigurationError, RetryableDeliveryError

KIND = "host-page"
DEFAULT_MAX_ROWS = 10_000
# A browser holds the rows as JavaScript objects: past this, a client needs a backend.
LIMIT_MAX_ROWS = 100_000
WAITING = "Waiting for the host page to acknowledge the rows it was handed."


@dataclass(frozen=True)
class HostPageConfig:
    max_rows: int = setting(
        "The most rows an import may have to be handed to the page (above it the importer "
        f"says so before the user submits); at most {LIMIT_MAX_ROWS:,}.",
        default=DEFAULT_MAX_ROWS,
    )


@dataclass(frozen=True)
class HostPage:
    config: HostPageConfig

    kind = KIND

    @property
    def spec(self) -> DestinationSpec[HostPageConfig]:
        return SPEC

    def check(self) -> None:
        """Nothing to reach: the page is whichever one embeds the importer."""

    def write(self, batch: object) -> WriteResult:
        raise RetryableDeliveryError(WAITING, retry_after=None)

    def finish(self, done: object) -> WriteResult | None:
        return None


def _build(config: HostPageConfig, context: DestinationContext) -> HostPage:
    if not 1 <= config.max_rows <= LIMIT_MAX_ROWS:
        raise ConfigurationError(
            f'The "max_rows" setting of a {KIND} destination must be from 1 to {LIMIT_MAX_ROWS:,}.'
        )
    return HostPage(config)


SPEC = DestinationSpec(
    kind=KIND,
    title="The host page (the SDK's onData callback)",
    config=HostPageConfig,
    build=_build,
    relayed=True,
)
