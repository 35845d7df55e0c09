"""One exception hierarchy for Pickwise, mapped to HTTP once in the app factory."""

from __future__ import annotations

from typing import Any


class PickwiseError(Exception):
    """Base of every error Pickwise raises on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, fields: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        self.headers = headers or {}
        # extra members of the JSON error object (e.g. the event_id a 503 refers to)
        self.details = details or {}


class InvalidInput(PickwiseError):
    status_code = 422
    code = "invalid_input"


class Unauthorized(PickwiseError):
    status_code = 401
    code = "unauthorized"


class Forbidden(PickwiseError):
    status_code = 403
    code = "forbidden"


class NotFound(PickwiseError):
    status_code = 404
    code = "not_found"


class PayloadTooLarge(PickwiseError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(PickwiseError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})
        self.retry_after_s = retry_after_s


class DependencyUnavailable(PickwiseError):
    """A dependency (service, broker, store) could not answer in time."""

    status_code = 503
    code = "dependency_unavailable"

    def __init__(self, message: str, *, dependency: str, retry_after_s: int = 1,
                 headers: dict[str, str] | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s), **(headers or {})}, details=details)
        self.dependency = dependency
        self.retry_after_s = retry_after_s


class CircuitOpen(DependencyUnavailable):
    code = "circuit_open"


class InvalidMessage(PickwiseError):
    """A Kafka message that can never be processed (poison): goes to the DLQ."""

    code = "invalid_message"
