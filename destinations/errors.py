"""Delivery failures, sorted the way a retry policy needs them."""

from __future__ import annotations

ANSWER_LIMIT = 1000  # characters of a receiver's answer kept with an attempt
# What a destination passes on: twice that, so a value of the batch the receiver quoted
# across the cut is still seen whole (and the answer not kept).
ANSWER_READ = 2 * ANSWER_LIMIT


class DeliveryError(Exception):
    """A batch could not be delivered. The message is safe to show to the client.

    `status_code` and `answer` are what the receiver said, when it said anything: the
    answer is the receiver's own words, cut to ANSWER_READ characters (ANSWER_LIMIT are
    kept).
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, answer: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.answer = answer[:ANSWER_READ] if answer is not None else None


class RetryableDeliveryError(DeliveryError):
    """Worth another attempt later (timeouts, 5xx, 429, connection refused)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        answer: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, answer=answer)
        self.retry_after = retry_after


class FatalDeliveryError(DeliveryError):
    """Retrying cannot help (bad configuration, refused address, 4xx)."""


class EndpointGoneError(FatalDeliveryError):
    """The receiver said 410 Gone: the destination must be disabled."""


class ConfigurationError(FatalDeliveryError):
    """The destination's settings are invalid."""


class RegistrationError(Exception):
    """A destination plugin is broken or clashes with another: the operator's to fix."""
