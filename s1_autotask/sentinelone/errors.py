"""Exceptions raised for SentinelOne data and calls, and which calls are worth retrying.

SentinelOneError
├── ThreatPayloadError          a payload that is not a usable threat (or threats)
├── SentinelOneNotConfiguredError  the API is needed but not configured
├── ThreatNotFoundError         no threat with that id in the token's scope
├── SentinelOneTransportError   timeout, connection or protocol failure
└── SentinelOneStatusError      the API answered with a failure, or unusably
    ├── SentinelOneAuthError    401 or 403: token refused, expired or not allowed
    └── SentinelOneRateLimitError  429, with the Retry-After seconds when given

Messages carry the method, the path and at most three clipped `errors[]` entries from
the API; never headers, query values, bodies we sent, or the token.
"""

from collections.abc import Sequence
from typing import Any

import httpx

__all__ = [
    "SentinelOneAuthError",
    "SentinelOneError",
    "SentinelOneNotConfiguredError",
    "SentinelOneRateLimitError",
    "SentinelOneStatusError",
    "SentinelOneTransportError",
    "ThreatNotFoundError",
    "ThreatPayloadError",
    "is_transient",
]

MAX_ERRORS = 3
MAX_ERROR_LENGTH = 300

# A plain 500 counts as transient: SentinelOne reports bad input as 400 with an
# errors body, so a 500 ("Internal server error", code 5000010) is a fault on its
# side. Reads are safe to repeat and retries are bounded by the caller; treating a
# passing fault as permanent would leave a threat without its ticket.
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
_EXPIRY_ADVICE = (
    "The API token may have expired (console-user tokens expire after six months) "
    "or lack the permission for this call."
)


class SentinelOneError(Exception):
    """Base class for every SentinelOne problem this package reports."""


class ThreatPayloadError(SentinelOneError):
    """A payload could not be read as SentinelOne threats.

    `location` is the path of the offending value, such as
    `data[2].threatInfo.createdAt`, or `payload` when the payload as a whole is wrong.
    `threat_id` is set when the id of the threat at fault could be read.
    """

    def __init__(
        self, message: str, *, location: str, threat_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.location = location
        self.threat_id = threat_id

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are lost by the default exception pickling, and
        # Prefect pickles exceptions raised inside tasks.
        return (_rebuild_payload_error, (str(self), self.location, self.threat_id))


def _rebuild_payload_error(
    message: str, location: str, threat_id: str | None
) -> ThreatPayloadError:
    return ThreatPayloadError(message, location=location, threat_id=threat_id)


class SentinelOneNotConfiguredError(SentinelOneError):
    """Threats must be fetched from SentinelOne, but its API is not configured."""


class ThreatNotFoundError(SentinelOneError):
    """SentinelOne has no threat with the id asked for, in the token's scope."""


class SentinelOneTransportError(SentinelOneError):
    """The request did not complete: timeout, refused connection, TLS or protocol."""


class SentinelOneStatusError(SentinelOneError):
    """SentinelOne answered with a failure status, or with a body we cannot use.

    `errors` holds the API's `errors[]` entries as short "title: detail (code N)"
    strings. `detail`, when given, replaces the generated message.
    """

    def __init__(
        self,
        status_code: int,
        method: str,
        path: str,
        *,
        errors: Sequence[str] = (),
        detail: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.method = method
        self.path = path
        self.errors = clip_errors(errors)
        super().__init__(detail or self._describe())

    def _describe(self) -> str:
        summary = (
            f"SentinelOne {self.method} {self.path} failed with HTTP {self.status_code}"
        )
        if not self.errors:
            return summary + "."
        return f"{summary}: {'; '.join(self.errors)}."

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt from the message and attributes rather than through __init__, so
        # every subclass pickles without knowing its own constructor; Prefect
        # pickles exceptions raised inside tasks.
        return (_rebuild_status_error, (type(self), self.args), dict(self.__dict__))


def _rebuild_status_error(
    cls: type[SentinelOneStatusError], args: tuple[Any, ...]
) -> SentinelOneStatusError:
    error = cls.__new__(cls)
    error.args = args
    return error


class SentinelOneAuthError(SentinelOneStatusError):
    """SentinelOne refused the API token (401), or the token may not do this (403)."""

    def _describe(self) -> str:
        return f"{super()._describe()} {_EXPIRY_ADVICE}"


class SentinelOneRateLimitError(SentinelOneStatusError):
    """SentinelOne asked us to slow down (429)."""

    def __init__(
        self,
        status_code: int,
        method: str,
        path: str,
        *,
        errors: Sequence[str] = (),
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status_code, method, path, errors=errors)

    def _describe(self) -> str:
        if self.retry_after is None:
            return super()._describe()
        return f"{super()._describe()} Retry after {self.retry_after:g} s."


def clip_errors(errors: Sequence[str]) -> list[str]:
    """Keep the first few error strings, each cut to a length fit for a log line."""
    return [str(error)[:MAX_ERROR_LENGTH] for error in list(errors)[:MAX_ERRORS]]


def is_transient(exc: BaseException) -> bool:
    """Tell whether retrying the failed call later may succeed."""
    if isinstance(exc, SentinelOneTransportError | httpx.TransportError):
        return True
    if isinstance(exc, SentinelOneRateLimitError):
        return True
    if isinstance(exc, SentinelOneAuthError):
        return False
    if isinstance(exc, SentinelOneStatusError):
        return exc.status_code in _TRANSIENT_STATUSES
    return False
