"""Wire-level helpers for the SentinelOne client: urls, query values, answers."""

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from s1_autotask.sentinelone.errors import (
    SentinelOneAuthError,
    SentinelOneRateLimitError,
    SentinelOneStatusError,
)

API_PREFIX = "/web/api/v2.1"
_API_SUFFIX = re.compile(r"/web/api/v2\.1/?$", re.IGNORECASE)

FilterValue = str | int | bool | datetime | Sequence[str]


def normalise_base_url(url: str) -> str:
    """Turn a console or API url into the base that ``/web/api/v2.1/...`` goes under.

    Both ``https://tenant.sentinelone.net`` and the same url ending in
    ``/web/api/v2.1`` are accepted; the result has no trailing slash.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in {"http", "https"} or not parsed.host:
        msg = f"SentinelOne url {url!r} is not an absolute http(s) url."
        raise ValueError(msg)

    base = str(parsed.copy_with(query=None, fragment=None)).rstrip("/")
    return _API_SUFFIX.sub("", base).rstrip("/")


def format_timestamp(moment: datetime) -> str:
    """Write ``moment`` the way SentinelOne filters expect: UTC, microseconds, ``Z``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A naive time read as UTC would shift a polling window by the local offset
        # and silently skip threats.
        msg = f"Timestamp {moment.isoformat()} has no time zone; give an aware one."
        raise ValueError(msg)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def query_value(name: str, value: FilterValue) -> str:
    """Render one filter value as the API reads it: lists comma-joined, bools lower."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, int | str):
        return str(value)
    items = [str(item) for item in value]
    if any("," in item for item in items):
        msg = f"SentinelOne filter {name} has a value with a comma in it."
        raise ValueError(msg)
    return ",".join(items)


def error_from_response(
    method: str, path: str, response: httpx.Response
) -> SentinelOneStatusError:
    """Pick the exception that says why SentinelOne refused a request."""
    status = response.status_code
    errors = error_messages(response)

    if status in {401, 403}:
        return SentinelOneAuthError(status, method, path, errors=errors)
    if status == 429:
        return SentinelOneRateLimitError(
            status,
            method,
            path,
            errors=errors,
            retry_after=retry_after_seconds(response),
        )
    return SentinelOneStatusError(status, method, path, errors=errors)


def error_messages(response: httpx.Response) -> list[str]:
    """Read ``{"errors": [{"code", "title", "detail"}]}`` as short sentences."""
    try:
        payload = response.json()
    except ValueError:
        return []
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return []
    return [_error_text(error) for error in errors if error]


def _error_text(error: object) -> str:
    if not isinstance(error, dict):
        return str(error)
    # The Go SDK models a `message` field; the consoles we have seen send `title`.
    title = error.get("title") or error.get("message")
    detail = error.get("detail")
    code = error.get("code")

    parts = [str(title)] if title else []
    if isinstance(detail, str) and detail:
        parts.append(detail)
    elif isinstance(detail, dict | list) and detail:
        # Validation failures name the offending fields in an object.
        parts.append(json.dumps(detail, separators=(",", ":"), ensure_ascii=False))
    text = ": ".join(parts) or "unnamed error"
    if isinstance(code, int) and not isinstance(code, bool):
        text += f" (code {code})"
    return text


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


def json_object(method: str, path: str, response: httpx.Response) -> dict[str, Any]:
    """Decode a successful answer, which SentinelOne always sends as an object."""
    try:
        payload = response.json()
    except ValueError:
        payload = None

    if not isinstance(payload, dict):
        msg = (
            f"SentinelOne {method} {path} answered HTTP {response.status_code} "
            "without a JSON object body."
        )
        raise SentinelOneStatusError(response.status_code, method, path, detail=msg)
    return payload


def page_threats(page: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    """Return the threat objects of one list page, refusing a page of another shape."""
    items = page.get("data")
    if not isinstance(items, list):
        msg = f"SentinelOne GET {path} answered without a data list."
        raise SentinelOneStatusError(200, "GET", path, detail=msg)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            msg = (
                f"SentinelOne GET {path} answered with data[{index}] that is not "
                "an object."
            )
            raise SentinelOneStatusError(200, "GET", path, detail=msg)
    return items


def next_cursor(page: Mapping[str, Any], path: str) -> str | None:
    """Return the cursor of the following page, or None on the last page."""
    pagination = page.get("pagination")
    if pagination is None:
        return None
    if not isinstance(pagination, dict):
        msg = f"SentinelOne GET {path} answered with a non-object pagination."
        raise SentinelOneStatusError(200, "GET", path, detail=msg)
    cursor = pagination.get("nextCursor")
    if cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str):
        msg = f"SentinelOne GET {path} answered with a nextCursor that is not a string."
        raise SentinelOneStatusError(200, "GET", path, detail=msg)
    return cursor


def affected_count(payload: Mapping[str, Any], path: str) -> int:
    """Read ``data.affected`` from a write-back answer."""
    data = payload.get("data")
    affected = data.get("affected") if isinstance(data, dict) else None
    if isinstance(affected, bool) or not isinstance(affected, int) or affected < 0:
        msg = f"SentinelOne POST {path} answered without a data.affected count."
        raise SentinelOneStatusError(200, "POST", path, detail=msg)
    return affected
