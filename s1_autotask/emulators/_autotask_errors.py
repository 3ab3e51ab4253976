"""The one exception the Autotask emulator raises to answer a request with an error."""

from typing import Any

__all__ = ["EmulatedApiError", "server_error"]


class EmulatedApiError(Exception):
    """An Autotask error response: a status code and the body Autotask would send.

    `errors` gives the usual `{"errors": [...]}` envelope; `message` gives the ASP.NET
    framework shape `{"Message": ...}` used for routing and method errors; neither
    gives an empty body (Autotask's 401).
    """

    def __init__(
        self,
        status_code: int,
        errors: list[str] | None = None,
        *,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or "; ".join(errors or []) or f"HTTP {status_code}")
        self.status_code = status_code
        self.errors = errors
        self.message = message
        self.headers = headers or {}

    @property
    def body(self) -> dict[str, Any] | None:
        """The JSON body to send, or None for an empty body."""
        if self.errors is not None:
            return {"errors": self.errors}
        if self.message is not None:
            return {"Message": self.message}
        return None


def server_error(text: str) -> EmulatedApiError:
    """Autotask's usual answer to a failed operation: 500 with one error string."""
    return EmulatedApiError(500, [text])
