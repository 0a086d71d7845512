"""Errors the HTTP adapter raises for requests it refuses before the core sees them."""

from __future__ import annotations


class RequestRejectedError(Exception):
    """A request refused with a status code and a machine-readable reason."""

    status_code = 400

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class BodyTooLargeError(RequestRejectedError):
    """The body is over the size limit (413)."""

    status_code = 413


class BadQueryError(RequestRejectedError):
    """A query parameter has a value the endpoint cannot use (400)."""

    status_code = 400
