"""The retry schedule: Svix's intervals with ±10 % jitter, Retry-After honoured."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest

from server.deliveries import JITTER, RETRY_SCHEDULE, next_delay
from server.runtime import Runtime

if TYPE_CHECKING:
    from tests.conftest import SettingsFactory

SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


class Extreme(random.Random):
    """A generator that always draws one end of the requested range."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


def test_the_schedule_is_svix_s() -> None:
    assert list(RETRY_SCHEDULE) == SCHEDULE
    assert JITTER == 0.1


@pytest.mark.parametrize(("attempts", "base"), list(enumerate(SCHEDULE, start=1)))
def test_delay_stays_within_ten_percent_of_the_schedule(attempts: int, base: int) -> None:
    rng = random.Random(attempts)
    delays = [next_delay(attempts, None, rng) for _ in range(500)]
    assert all(d is not None and base * 0.9 <= d <= base * 1.1 for d in delays)
    assert len(set(delays)) == 500  # jittered, so retries of many deliveries spread out
    assert min(d for d in delays if d is not None) < base < max(d for d in delays if d is not None)


@pytest.mark.parametrize(("attempts", "base"), list(enumerate(SCHEDULE, start=1)))
def test_jitter_bounds_are_exactly_ten_percent(attempts: int, base: int) -> None:
    assert next_delay(attempts, None, Extreme("low")) == pytest.approx(base * 0.9)
    assert next_delay(attempts, None, Extreme("high")) == pytest.approx(base * 1.1)


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [
        (1, 120.0, 120.0),  # larger than 5 s: the receiver's wish wins
        (1, 3600.0, 3600.0),
        (2, 1000.0, 1000.0),
        (6, 86400.0, 86400.0),
        (7, 40000.0, 40000.0),
    ],
)
def test_a_larger_retry_after_is_honoured(
    attempts: int, retry_after: float, expected: float
) -> None:
    assert next_delay(attempts, retry_after, Extreme("high")) == expected


@pytest.mark.parametrize(("attempts", "retry_after"), [(2, 1.0), (3, 0.0), (5, 16000.0)])
def test_a_smaller_retry_after_does_not_shorten_the_schedule(
    attempts: int, retry_after: float
) -> None:
    base = SCHEDULE[attempts - 1]
    assert next_delay(attempts, retry_after, Extreme("low")) == pytest.approx(base * 0.9)


@pytest.mark.parametrize("attempts", [8, 9, 100])
@pytest.mark.parametrize("retry_after", [None, 60.0])
def test_after_seven_retries_there_is_no_next_attempt(
    attempts: int, retry_after: float | None
) -> None:
    assert next_delay(attempts, retry_after, random.Random(1)) is None


def test_the_queue_module_does_not_import_the_jobs() -> None:
    """Jobs are enqueued by dotted path: server.queue never imports server.jobs."""
    import subprocess
    import sys

    code = "import sys, server.queue, server.runtime; print('server.jobs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_runtime_builds_its_queue_once(settings_factory: SettingsFactory) -> None:
    rt = Runtime.from_settings(settings_factory())
    assert "queue" not in rt.__dict__  # nothing connects until a job is enqueued
    queue = rt.queue
    assert rt.queue is queue
    assert [q.name for q in queue.worker_queues] == [
        f"{rt.settings.queue_name}-retry",
        f"{rt.settings.queue_name}-small",
        rt.settings.queue_name,
    ]
