"""What the benches that run a real `loadbay serve` share: a free loopback port, starting
and stopping loadbay's processes, waiting for /healthz, and the peak memory of a process
tree sampled in a thread."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EVERY_S = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running(
    commands: dict[str, list[str]], env: dict[str, str], logs: Path | None = None
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """`loadbay <args>` for each name (e.g. {"serve": ["serve", "--port", "8443"]}), their
    output in `logs`/<name>.log (discarded without `logs`); terminated on the way out."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, args in commands.items():
            if logs is None:
                out = subprocess.DEVNULL
                procs[name] = subprocess.Popen(  # noqa: S603 - our own CLI
                    [sys.executable, "-m", "server.cli", *args], env=env, cwd=ROOT,
                    stdout=out, stderr=out,
                )  # fmt: skip
                continue
            with (logs / f"{name}.log").open("wb") as log:
                procs[name] = subprocess.Popen(  # noqa: S603 - our own CLI
                    [sys.executable, "-m", "server.cli", *args], env=env, cwd=ROOT,
                    stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
        yield procs
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_up(client: httpx.Client, seconds: float = 30) -> None:
    """Until `loadbay serve` answers /healthz."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client.get("/healthz")
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"loadbay serve did not start within {seconds:.0f} s")


def tree_rss(pid: int) -> int:
    """RSS of the process plus the PSS of its children: a forked work horse shares its
    parent's pages, which a sum of RSS would count twice."""
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        children = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    for child in children:
        try:
            total += child.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return int(total)


class PeakRss:
    """Peak resident memory of some processes, each with its children (work horses),
    sampled every 50 ms in a thread while the `with` block runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peaks = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peaks[name] = max(self.peaks[name], tree_rss(pid))
            self._stop.wait(SAMPLE_EVERY_S)

    def megabytes(self) -> dict[str, float]:
        return {name: round(rss / 1e6, 1) for name, rss in self.peaks.items()}
