"""Errors the server turns into HTTP answers at its edge (status + message for people)."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ServiceError):
    status = 404
    code = "not-found"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Invalid(ServiceError):
    status = 422
    code = "invalid"


class TooLarge(ServiceError):
    status = 413
    code = "too-large"
