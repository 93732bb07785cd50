"""ob-configserver's failures: a code that is also the HTTP status, and a prefixed message.

The prefixes are the ones ob-configserver writes (`server/response.go`), so logs and scripts
that grep for them read obfleet's answers the same way.
"""

from __future__ import annotations


class ConfigServerError(Exception):
    def __init__(self, code: int, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = code if http_status is None else http_status


def illegal_argument(cause: str) -> ConfigServerError:
    return ConfigServerError(400, f"illegal argument: {cause}")


def not_found(cause: str) -> ConfigServerError:
    return ConfigServerError(404, f"resource not found: {cause}")


def internal(cause: str) -> ConfigServerError:
    """ob-configserver answers 500, not 400, when a query parameter cannot be parsed."""
    return ConfigServerError(500, f"got internal error: {cause}")
