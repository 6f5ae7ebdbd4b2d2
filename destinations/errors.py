"""Delivery failures, sorted the way a retry policy needs them."""

from __future__ import annotations


class DeliveryError(Exception):
    """A batch could not be delivered. The message is safe to show to the client."""


class RetryableDeliveryError(DeliveryError):
    """Worth another attempt later (timeouts, 5xx, 429, connection refused)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalDeliveryError(DeliveryError):
    """Retrying cannot help (bad configuration, refused address, 4xx)."""


class EndpointGoneError(FatalDeliveryError):
    """The receiver said 410 Gone: the destination must be disabled."""


class ConfigurationError(FatalDeliveryError):
    """The destination's settings are invalid."""


class RegistrationError(Exception):
    """A destination plugin is broken or clashes with another: the operator's to fix."""
