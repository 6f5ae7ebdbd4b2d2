"""RQ entry points: ids in, the work done by server.deliveries and server.retention;
and `periodic`, what `loadbay cron` runs and how often.

Each worker process builds its Runtime once (`loadbay worker` hands over its own with
`use_runtime` before the first job, so work horses inherit it instead of building one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rq import Queue

from server import deliveries, passthrough, retention, sweeper
from server.manage import idempotency
from server.queue import JobQueue
from server.runtime import Runtime
from server.settings import Settings

PURGE_TIMEOUT = 900  # shredding many imports' blobs may take longer than a delivery
KEYS_EVERY = 3600  # Idempotency-Keys are kept 24 h: forgotten within the hour after


@functools.cache
def _runtime() -> Runtime:
    return Runtime.from_settings(Settings.from_env())


def use_runtime(rt: Runtime) -> None:
    """Make `rt` this process's runtime for every job it runs (and its forks run)."""
    _runtime.cache_clear()
    globals()["_runtime"] = functools.cache(lambda: rt)


def deliver(delivery_id: int) -> str:
    """One attempt at one (batch, destination) delivery; schedules the next on failure."""
    return deliveries.deliver(_runtime(), delivery_id)


def sweep() -> dict[str, int]:
    """Every minute (see `loadbay cron`): stale claims released, due deliveries enqueued,
    passthrough imports whose window closed before delivery failed."""
    rt = _runtime()
    swept = sweeper.sweep(rt).to_dict()
    return swept | {"passthrough_expired": len(passthrough.expire_overdue(rt))}


def purge_expired() -> list[str]:
    """Hourly (see `loadbay cron`): shred every import past its retention."""
    return retention.purge_expired(_runtime())


def purge_idempotency_keys() -> int:
    """Hourly (see `loadbay cron`): forget Idempotency-Keys older than 24 h."""
    return idempotency.purge(_runtime())


def periodic(queues: JobQueue) -> list[tuple[Callable[..., Any], Queue, int, int]]:
    """What `loadbay cron` runs: (job, queue, every, timeout), in seconds."""
    every_hour = int(retention.PURGE_EVERY.total_seconds())
    return [
        (sweep, queues.retry, queues.timings.sweep_every, queues.timings.job_timeout),
        (purge_expired, queues.first, every_hour, PURGE_TIMEOUT),
        (purge_idempotency_keys, queues.first, KEYS_EVERY, queues.timings.job_timeout),
    ]
