"""The one exception the SentinelOne emulator raises to answer with an error body.

SentinelOne wraps every failure in `{"errors": [{"code", "detail", "title"}]}`. Real
answers show code 4010010 "Authentication Failed" (401) and 5000010 "Internal server
error" (500); the other codes here follow the same status-then-0010 pattern and are
the emulator's choice.
"""

from typing import Any

__all__ = [
    "EmulatedApiError",
    "method_not_allowed",
    "not_found",
    "unauthorized",
    "validation_error",
]


class EmulatedApiError(Exception):
    """A SentinelOne error response: a status code and the one error it names."""

    def __init__(
        self, status_code: int, code: int, title: str, detail: str | None = None
    ) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status_code = status_code
        self.code = code
        self.title = title
        self.detail = detail

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body SentinelOne sends with this status."""
        return {
            "errors": [{"code": self.code, "detail": self.detail, "title": self.title}]
        }


def unauthorized() -> EmulatedApiError:
    """A missing or wrong token, answered as a real console does."""
    return EmulatedApiError(401, 4010010, "Authentication Failed")


def validation_error(detail: str) -> EmulatedApiError:
    """Input the API refuses, such as a limit above 1000 or an unreadable cursor."""
    return EmulatedApiError(400, 4000010, "Validation Error", detail)


def not_found(path: str) -> EmulatedApiError:
    """A path the emulated API does not serve."""
    return EmulatedApiError(404, 4040010, "Not Found", f"{path} is not served here.")


def method_not_allowed(method: str, path: str) -> EmulatedApiError:
    """A known path asked with the wrong method."""
    detail = f"{method} is not allowed on {path}."
    return EmulatedApiError(405, 4050010, "Method Not Allowed", detail)
