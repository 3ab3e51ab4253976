"""What makes an authenticated request usable, checked in the order answered.

Each check raises `RefusedError` carrying the status and the sentence the sender
gets; the app decides what is kept and logged.
"""

from __future__ import annotations

import json

from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.intake import ThreatRequest, read_request
from s1_autotask.sentinelone.parse import load_json

__all__ = ["RefusedError", "declared_length", "read_body"]

_SHOWN_CONTENT_TYPE = 60


class RefusedError(Exception):
    """A check failed; carries the answer the sender gets."""

    def __init__(
        self, status_code: int, message: str, location: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.location = location

    def content(self) -> dict[str, str]:
        content = {"error": self.message}
        if self.location is not None:
            content["location"] = self.location
        return content


def read_body(content_type: str, body: bytes) -> ThreatRequest:
    """Checks 3 to 5 of the app: the Content-Type, the JSON text, what it asks."""
    if not content_type:
        msg = "The Content-Type header is missing; send JSON."
        raise RefusedError(415, msg)
    if not _is_json(content_type):
        shown = content_type[:_SHOWN_CONTENT_TYPE]
        if len(content_type) > _SHOWN_CONTENT_TYPE:
            shown += "..."
        msg = f"The Content-Type {shown!r} is not JSON; send application/json."
        raise RefusedError(415, msg)
    if not body:
        msg = 'The request body is empty; send a threat or {"threatId": "..."}.'
        raise RefusedError(400, msg)
    # json.loads would read UTF-16 and UTF-32 too, but SentinelOne sends UTF-8
    # and `deliveries show` prints a kept body as UTF-8: the contract is UTF-8
    # only. A UTF-8 byte order mark is harmless and read past.
    encoding = json.detect_encoding(body)
    if encoding not in ("utf-8", "utf-8-sig"):
        msg = f"The request body is {encoding[:6].upper()} text; send UTF-8."
        raise RefusedError(400, msg)
    try:
        payload = load_json(body)
    except ThreatPayloadError as exc:
        raise RefusedError(400, str(exc)) from exc
    try:
        return read_request(payload)
    except ThreatPayloadError as exc:
        raise RefusedError(422, str(exc), location=exc.location) from exc


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    if not kind or not subtype:
        return False
    return media == "application/json" or subtype.endswith("+json")


def declared_length(value: str | None) -> int | None:
    """The Content-Length as a number; None when absent or not a plain number."""
    # Twenty digits is past any real length; a longer run is not worth parsing.
    if value is None or not value.isdigit() or len(value) > 20:
        return None
    return int(value)
