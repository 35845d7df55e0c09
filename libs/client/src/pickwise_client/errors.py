"""Errors the client raises: the gateway's JSON error body (``{"error": {code, message, fields, request_id}}``)
as one exception per HTTP status family, so callers catch what they can act on."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from pickwise_common.schemas import ErrorBody, ErrorField


class PickwiseAPIError(Exception):
    """The gateway answered with an error status. ``code``/``fields``/``request_id`` come from its JSON body
    (``code`` is ``http_error`` when the body was not the API's error shape, e.g. a proxy's HTML page)."""

    def __init__(self, status_code: int, code: str, message: str, *, fields: list[ErrorField] | None = None,
                 request_id: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields = fields or []
        self.request_id = request_id
        self.retry_after_s = retry_after_s

    @property
    def field_names(self) -> list[str]:
        return [f.field for f in self.fields]


class InvalidRequest(PickwiseAPIError):
    """400/422: the request was refused; ``fields`` names each offending field."""


class Unauthorized(PickwiseAPIError):
    """401/403: missing or unknown X-API-Key, a scope it lacks, or a catalog it may not use."""


class NotFound(PickwiseAPIError):
    """404: no such item (or route)."""


class RateLimited(PickwiseAPIError):
    """429: this API key's rate limit is exceeded; wait ``retry_after_s``."""


class ServiceUnavailable(PickwiseAPIError):
    """503: a dependency the answer cannot live without is down; retry after ``retry_after_s``."""


class ServerError(PickwiseAPIError):
    """Any other 5xx."""


class UnexpectedResponse(PickwiseAPIError):
    """A success status whose body does not match the documented response model."""


_BY_STATUS: dict[int, type[PickwiseAPIError]] = {400: InvalidRequest, 422: InvalidRequest, 401: Unauthorized,
                                                 403: Unauthorized, 404: NotFound, 429: RateLimited,
                                                 503: ServiceUnavailable}


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: not sent by the gateway, not worth parsing
        return None


def error_from_response(response: httpx.Response) -> PickwiseAPIError:
    """The exception for an error response (status >= 400)."""
    status = response.status_code
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else PickwiseAPIError)
    retry_after_s = _retry_after_s(response)
    body: Any
    try:
        body = response.json()
        detail = ErrorBody.model_validate(body).error
    except (ValueError, ValidationError):
        text = response.text.strip()[:500] or response.reason_phrase
        return cls(status, "http_error", text, request_id=response.headers.get("x-request-id"),
                   retry_after_s=retry_after_s)
    return cls(status, detail.code, detail.message, fields=detail.fields,
               request_id=detail.request_id or response.headers.get("x-request-id"), retry_after_s=retry_after_s)
