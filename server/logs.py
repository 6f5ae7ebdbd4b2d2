"""What loadbay's processes log: metadata only, never a cell value.

Log calls name ids, counts and loadbay's own messages. What no call controls is the text
of an exception: a parser's or a driver's message may quote the value it choked on (a
cell, a key). So every process (`serve`, `worker`, `cron`) logs through one handler whose
formatter prints an exception's type and where it was raised, for each exception in its
chain, and withholds its message. uvicorn (its access and error logs) and RQ log through
the same handler.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
WITHHELD = "(message withheld: it may quote data)"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class MetadataFormatter(logging.Formatter):
    """A formatter whose tracebacks hold frames and exception types, not messages."""

    def formatException(self, ei: ExcInfo) -> str:  # noqa: N802 - logging's name
        return describe(ei[1])

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return stack_info  # frames only: no values in a stack


def describe(exc: BaseException | None) -> str:
    """An exception as a log may show it: each exception of its chain, oldest first, by
    type and traceback frames."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.insert(0, exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    parts = []
    for item in chain:
        kind = type(item)
        frames = "".join(traceback.format_tb(item.__traceback__))
        parts.append(
            f"Traceback (most recent call last):\n{frames}{kind.__module__}.{kind.__qualname__} "
            f"{WITHHELD}"
        )
    return "\n\nwhich led to\n\n".join(parts)


def configure(level: int = logging.INFO) -> None:
    """Every logger of this process (loadbay's, uvicorn's, RQ's) to stderr through one
    MetadataFormatter handler; call once, at the start of a command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MetadataFormatter(FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "rq", "rq.worker"):
        named = logging.getLogger(name)
        for old in list(named.handlers):
            named.removeHandler(old)
        named.propagate = True
