"""Wire-level helpers for the Autotask client: urls, request bodies, error responses."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any

import httpx

from s1_autotask.autotask.errors import (
    AutotaskAuthError,
    AutotaskError,
    AutotaskPermissionError,
    AutotaskRateLimitError,
    AutotaskStatusError,
    AutotaskValidationError,
    AutotaskZoneError,
)

API_VERSION_SEGMENT = "v1.0"
_ENTITY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")

# The thread-limit rejection has no confirmed status code; only its wording and
# internal code are known, so the body text decides.
_RATE_LIMIT_MARKERS = ("thread threshold", "itgenatr005")
_ZONE_MARKER = "zone information could not be determined"
# Autotask reports some permission failures as 500 instead of 403.
_PERMISSION_MARKER = "does not have the adequate permissions"
# A wrong integration code answers 500; its wording is undocumented, but a business
# rule message never names the integration code.
_AUTH_MARKERS = ("integration code", "integrationcode")
# Business-rule and input failures that Autotask reports as 500; repeating the same
# request gives the same answer.
_VALIDATION_MARKERS = (
    "does not reference an existing entity",
    "does not exist or is invalid",
    "exceeds maximum length",
    "you must assign both",
    "cannot be associated",
    "cannot all be empty",
    "is required",
    "unable to find",
    "invalid query syntax",
    "unexpected character encountered while parsing",
    "already exists",
    "no matching records found",
)
_VALIDATION_STATUSES = frozenset({400, 409, 422})


def is_http_url(url: str) -> bool:
    """Tell whether ``url`` is an absolute http(s) url with a host."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    return parsed.scheme in {"http", "https"} and bool(parsed.host)


def normalise_base_url(url: str) -> str:
    """Turn a zone url, with or without its version segment, into the API base url."""
    if not is_http_url(url):
        msg = f"Autotask base url {url!r} is not an absolute http(s) url."
        raise ValueError(msg)

    parsed = httpx.URL(url).copy_with(query=None, fragment=None)
    base = str(parsed).rstrip("/") + "/"
    if base.rstrip("/").rsplit("/", 1)[-1].casefold() != API_VERSION_SEGMENT:
        base += API_VERSION_SEGMENT + "/"
    return base


def same_origin(url: str, base: str) -> bool:
    """Tell whether ``url`` has the scheme, host and port of ``base``."""
    if not is_http_url(url):
        return False
    candidate, origin = httpx.URL(url), httpx.URL(base)
    return (
        candidate.scheme == origin.scheme
        and candidate.host.casefold() == origin.host.casefold()
        and candidate.port == origin.port
    )


def endpoint_path(url: str, base: str) -> str:
    """Give the path of ``url`` below the API base, without host or query string."""
    path = httpx.URL(url).path
    base_path = httpx.URL(base).path
    if path.casefold().startswith(base_path.casefold()):
        return path[len(base_path) :]
    return path


def strip_none(value: Any) -> Any:
    """Drop keys whose value is None, at any depth of dicts and lists."""
    if isinstance(value, dict):
        return {
            key: strip_none(item) for key, item in value.items() if item is not None
        }
    if isinstance(value, list):
        return [strip_none(item) for item in value]
    return value


def json_object(method: str, endpoint: str, response: httpx.Response) -> dict[str, Any]:
    """Decode a successful response body, which Autotask always sends as an object."""
    try:
        payload = response.json()
    except ValueError:
        payload = None

    if not isinstance(payload, dict):
        msg = (
            f"Autotask {method} {endpoint} answered HTTP {response.status_code} "
            "without a JSON object body."
        )
        raise AutotaskStatusError(
            response.status_code, [], endpoint, method=method, detail=msg
        )
    return payload


def error_messages(response: httpx.Response) -> list[str]:
    """Read ``{"errors": [...]}`` or ASP.NET's ``{"Message": ...}`` from a failure."""
    try:
        payload = response.json()
    except ValueError:
        return []
    if not isinstance(payload, dict):
        return []

    keyed = {str(key).casefold(): item for key, item in payload.items()}
    errors = keyed.get("errors")
    if isinstance(errors, str):
        return [errors]
    if isinstance(errors, list):
        return [_error_text(error) for error in errors if error]
    message = keyed.get("message")
    return [message] if isinstance(message, str) and message else []


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        for key, item in error.items():
            if str(key).casefold() == "message":
                return str(item)
    return str(error)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Read a ``Retry-After`` header given in seconds; dates and junk give None."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def error_from_response(
    method: str, endpoint: str, response: httpx.Response
) -> AutotaskStatusError:
    """Pick the exception that says why Autotask refused a request."""
    status = response.status_code
    errors = error_messages(response)
    text = response.text.casefold()

    if status == 429 or any(marker in text for marker in _RATE_LIMIT_MARKERS):
        return AutotaskRateLimitError(
            status,
            errors,
            endpoint,
            method=method,
            retry_after=retry_after_seconds(response),
        )
    if _ZONE_MARKER in text:
        return AutotaskZoneError(status, errors, endpoint, method=method)
    if status == 403 or _PERMISSION_MARKER in text:
        return AutotaskPermissionError(status, errors, endpoint, method=method)
    if status == 401 or any(marker in text for marker in _AUTH_MARKERS):
        return AutotaskAuthError(status, errors, endpoint, method=method)
    if status in _VALIDATION_STATUSES or (
        status == 500 and any(marker in text for marker in _VALIDATION_MARKERS)
    ):
        return AutotaskValidationError(status, errors, endpoint, method=method)
    return AutotaskStatusError(status, errors, endpoint, method=method)


def entity_name(name: str) -> str:
    """Check that ``name`` is a bare entity name, so it cannot reshape the url path."""
    if not _ENTITY_NAME.match(name):
        msg = f"{name!r} is not an Autotask entity name."
        raise ValueError(msg)
    return name


def record_id(item_id: int) -> int:
    """Check that ``item_id`` is a record id (0 is the tenant's own company)."""
    if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id < 0:
        msg = f"{item_id!r} is not an Autotask record id."
        raise ValueError(msg)
    return item_id


def page_items(page: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    """Return the records of one query page."""
    items = page.get("items")
    if not isinstance(items, list):
        msg = f"Autotask POST {path} answered without an items list."
        raise AutotaskStatusError(200, [], path, method="POST", detail=msg)
    return [item for item in items if isinstance(item, dict)]


def next_page_url(page: Mapping[str, Any]) -> str | None:
    """Return the link to the following query page, or None on the last page."""
    details = page.get("pageDetails")
    if not isinstance(details, dict):
        return None
    next_url = details.get("nextPageUrl")
    return next_url if isinstance(next_url, str) and next_url else None


def id_order(record: Mapping[str, Any]) -> int:
    """Sort key putting the oldest record (lowest id) first."""
    value = record.get("id")
    return value if isinstance(value, int) else sys.maxsize


def page_reference(next_url: str, base: str, path: str) -> str:
    """Turn a page link into a path below ``base``, refusing any other host.

    The link comes from a response body; following it blindly would send the
    credentials wherever it points.
    """
    target = httpx.URL(next_url) if same_origin(next_url, base) else None
    base_path = httpx.URL(base).path.casefold() if base else "/"
    if target is None or not target.path.casefold().startswith(base_path):
        msg = f"Autotask page link for {path} leaves the zone host; not following."
        raise AutotaskError(msg)

    reference = endpoint_path(next_url, base)
    if target.query:
        reference += "?" + target.query.decode("ascii")
    return reference
