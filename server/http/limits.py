"""What a request may cost: body caps checked before reading, read timeouts, inflation off
the event loop, a bound on concurrent uploads, and rate limits per key and per address."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import ClientDisconnect, Request

from server.errors import Invalid, RateLimited, TooLarge, TooSlow, Unavailable

JSON_BYTES = 2 * 1024 * 1024  # a mapping of 16,384 headers fits; a JSON bomb does not


@dataclass
class Limiter:
    """One per process (the receivers are stateless; each bounds what it accepts)."""

    body_timeout: float = 30.0
    max_concurrent_uploads: int = 8
    per_address: str = "1200/minute"
    per_key: str = "6000/minute"
    creations_per_address: str = "60/minute"
    imports_per_key: str = "60/minute"
    _limiter: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage())
    )
    _uploads: asyncio.Semaphore | None = None

    def hit(self, scope: str, who: str, rate: str, what: str = "Too many requests") -> None:
        """Count one request by `who`; RateLimited (with Retry-After) once over `rate`."""
        item: RateLimitItem = parse(rate)
        if self._limiter.hit(item, scope, who):
            return
        reset = self._limiter.get_window_stats(item, scope, who).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise RateLimited(f"{what}; try again in {wait} s.", retry_after=wait)

    def address(self, request: Request, rate: str | None = None) -> None:
        host = request.client.host if request.client else "unknown"
        self.hit("address", host, rate or self.per_address)

    def key(self, key: str) -> None:
        self.hit("key", key, self.per_key)

    def import_created(self, publishable_key: str) -> None:
        """Imports one organisation's key may create a minute: a public key cannot be used
        to fill the metadata database with imports."""
        item = parse(self.imports_per_key)
        what = f"This importer may start at most {item.amount} imports a {item.GRANULARITY.name}"
        self.hit("imports", publishable_key, self.imports_per_key, what)

    @asynccontextmanager
    async def upload_slot(self) -> AsyncIterator[None]:
        """At most `max_concurrent_uploads` batch bodies in memory at once; more wait
        no longer than a moment and are told to come back."""
        if self._uploads is None:
            self._uploads = asyncio.Semaphore(self.max_concurrent_uploads)
        try:
            await asyncio.wait_for(self._uploads.acquire(), timeout=1.0)
        except TimeoutError:
            raise Unavailable(
                "The server is receiving many uploads; try again in a moment.", retry_after=2
            ) from None
        try:
            yield
        finally:
            self._uploads.release()

    async def body(self, request: Request, limit: int) -> bytes:
        """The request body, refused as soon as it is known to pass `limit` bytes (by its
        Content-Length, before reading; or while reading) or is slower than the timeout."""
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit() or len(declared) > 19:
                raise Invalid("Content-Length must be a whole number of bytes.")
            if int(declared) > limit:
                raise TooLarge(f"A request body may hold at most {limit} bytes.")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"A request body may hold at most {limit} bytes.")
                    chunks.append(chunk)
        except TimeoutError:
            raise TooSlow(
                f"The request body did not arrive within {self.body_timeout:.0f} s; send it again."
            ) from None
        except ClientDisconnect:
            raise Invalid("The connection closed before the request body arrived.") from None
        return b"".join(chunks)

    async def json(self, request: Request) -> dict[str, Any]:
        body = await self.body(request, JSON_BYTES)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Invalid("The request body must be JSON.") from exc
        except RecursionError:
            raise Invalid("The request body's JSON is nested too deeply.") from None
        if not isinstance(data, dict):
            raise Invalid("The request body must be a JSON object.")
        return data
