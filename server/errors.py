"""Domain errors: what went wrong, for people, with a stable code. No HTTP here: the edge
(`server.http.responses`) maps each kind to its status."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "bad-request"

    def __init__(
        self, message: str, *, details: Any = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after = retry_after


class NotFound(ServiceError):
    code = "not-found"


class Unauthorized(ServiceError):
    code = "unauthorized"


class Forbidden(ServiceError):
    code = "forbidden"


class Conflict(ServiceError):
    code = "conflict"


class Gone(ServiceError):
    """What was asked for existed and was deleted (on request or at expiry): the message
    names when and why."""

    code = "gone"


class Invalid(ServiceError):
    code = "invalid"


class BadDigest(ServiceError):
    """A batch's Content-Digest is missing, malformed or does not match its body."""

    code = "bad-digest"


class TooLarge(ServiceError):
    code = "too-large"


class TooSlow(ServiceError):
    """The request's body did not arrive in time."""

    code = "request-timeout"


class RateLimited(ServiceError):
    code = "rate-limited"


class Unavailable(ServiceError):
    """A part the request needs (the queue, a database) is down for now: try again."""

    code = "unavailable"
