"""Exceptions raised by the Autotask client, and which of them are worth retrying.

AutotaskError
├── AutotaskTransportError        timeout, connection or protocol failure
├── AutotaskQueryError            filter rejected before sending (also a ValueError)
├── PicklistError                 label or field not found in picklist metadata
├── AutotaskConfigError           credentials missing, or not sendable in a header
└── AutotaskStatusError           Autotask answered, but not with success
    ├── AutotaskAuthError         401, or credentials refused in a 500
    │   ├── AutotaskZoneError     zone lookup failed (unknown user, unusable url)
    │   └── AutotaskPermissionError  403, or 500 "does not have the adequate
    │                                permissions"
    ├── AutotaskRateLimitError    429, thread threshold (Itgenatr005)
    └── AutotaskValidationError   the request itself was refused (400/409/422, or 500
                                  with a business-rule message)

Messages carry the method, the endpoint path and at most three clipped error strings
from Autotask; never headers, bodies we sent, or credentials.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

__all__ = [
    "AutotaskAuthError",
    "AutotaskConfigError",
    "AutotaskError",
    "AutotaskPermissionError",
    "AutotaskQueryError",
    "AutotaskRateLimitError",
    "AutotaskStatusError",
    "AutotaskTransportError",
    "AutotaskValidationError",
    "AutotaskZoneError",
    "PicklistError",
    "is_transient",
]

MAX_ERRORS = 3
MAX_ERROR_LENGTH = 300

# Gateway failures and overload: the request most likely never reached Autotask's
# business logic, so repeating it later is safe and useful.
_TRANSIENT_STATUSES = frozenset({502, 503, 504})


class AutotaskError(Exception):
    """Base class of every error raised by the Autotask client."""


class AutotaskTransportError(AutotaskError):
    """The request did not complete: timeout, refused connection, TLS or protocol."""


class AutotaskQueryError(AutotaskError, ValueError):
    """A query filter would be misread by Autotask, so it was not sent."""


class PicklistError(AutotaskError):
    """A picklist field or label could not be resolved to a value."""

    def __init__(
        self,
        message: str,
        *,
        field: str,
        label: str | None = None,
        parent_value: str | None = None,
        available: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.field = field
        self.label = label
        self.parent_value = parent_value
        self.available = list(available)


class AutotaskStatusError(AutotaskError):
    """Autotask answered with a status that is not a success."""

    def __init__(
        self,
        status_code: int,
        errors: Sequence[str],
        endpoint: str,
        *,
        method: str = "GET",
        detail: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.errors = clip_errors(errors)
        self.endpoint = endpoint
        self.method = method
        super().__init__(detail or self._describe())

    def _describe(self) -> str:
        status = self.status_code
        summary = f"Autotask {self.method} {self.endpoint} failed with HTTP {status}"
        if not self.errors:
            return summary + "."
        return f"{summary}: {'; '.join(self.errors)}"


class AutotaskAuthError(AutotaskStatusError):
    """Autotask refused the credentials, or they point at the wrong zone."""

    def _describe(self) -> str:
        if self.status_code != 401:
            return super()._describe()
        # Autotask's 401 body is empty, so say what it nearly always means.
        return (
            super()._describe().rstrip(".")
            + ": Autotask refused the API user's credentials; check "
            "S1AT_AUTOTASK__USERNAME, S1AT_AUTOTASK__SECRET and "
            "S1AT_AUTOTASK__INTEGRATION_CODE."
        )


class AutotaskConfigError(AutotaskError):
    """The client's own settings cannot be used: missing, or not sendable."""


class AutotaskZoneError(AutotaskAuthError):
    """The zone lookup did not give a usable web-services url for the API user."""


class AutotaskPermissionError(AutotaskAuthError):
    """The API user is authenticated but its security level forbids the action."""


class AutotaskRateLimitError(AutotaskStatusError):
    """The hourly request threshold or the per-endpoint thread limit was hit."""

    def __init__(
        self,
        status_code: int,
        errors: Sequence[str],
        endpoint: str,
        *,
        method: str = "GET",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status_code, errors, endpoint, method=method)
        self.retry_after = retry_after


class AutotaskValidationError(AutotaskStatusError):
    """Autotask rejected the request content; sending it again will fail again."""


def clip_errors(errors: Sequence[str]) -> list[str]:
    """Keep the first few error strings, each cut to a length fit for a log line."""
    return [str(error)[:MAX_ERROR_LENGTH] for error in list(errors)[:MAX_ERRORS]]


def is_transient(exc: BaseException) -> bool:
    """Tell whether retrying the failed call later may succeed.

    A plain 500 counts as transient. Autotask reports both business-rule failures and
    genuine server faults ("An unexpected error has occurred ... Error ID") as 500; the
    rule failures we recognise are raised as validation, auth or permission errors
    before we get here. Retrying an unrecognised rule failure costs a few bounded
    retries, while treating a server fault as permanent would drop the threat.
    """
    if isinstance(exc, AutotaskTransportError | httpx.TransportError):
        return True
    if isinstance(exc, AutotaskRateLimitError):
        return True
    if isinstance(exc, AutotaskAuthError | AutotaskValidationError):
        return False
    if isinstance(exc, AutotaskStatusError):
        return exc.status_code == 500 or exc.status_code in _TRANSIENT_STATUSES
    return False
