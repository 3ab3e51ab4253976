"""Turn SentinelOne threat payloads into `Threat` models.

A payload is one threat, a list of threats, or the API's `{"data": [...]}` envelope;
each threat may be the v2.1 nested shape or the legacy v2.0 flat one. Anything else
raises `ThreatPayloadError` naming the path of the offending value.

`looks_like_threat` and `threat_items` are the one definition of which objects are
threats and where they sit in a payload: intake and the receiver's handoff use them
too, so what a payload was read as and what is handed on cannot disagree.
"""

import json
import logging
import re
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from pydantic import ValidationError

from s1_autotask.sentinelone._normalise import to_threat
from s1_autotask.sentinelone._raw import (
    PROBLEM_ERROR_TYPE,
    RawThreatV20,
    RawThreatV21,
    describe,
    quote,
)
from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.models import Threat

logger = logging.getLogger(__name__)

MAX_THREATS_PER_CALL = 1000
MAX_DEPTH = 64
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_PATH_SYNTAX = re.compile(r"[.\[\]'\"]")
# What pydantic puts in an error location when a map key itself is invalid.
_KEY_MARKER = "[key]"

# Keys that only a v2.0 flat threat carries at its top level.
_V20_KEYS = ("classification", "fileDisplayName", "agentComputerName")
_EXPECTED_THREAT = (
    "a SentinelOne threat (an object with threatInfo, or a v2.0 threat with keys "
    "such as classification, fileDisplayName or agentComputerName)"
)
_EXPECTED_PAYLOAD = (
    'a threat object, a list of threats, an API response {"data": [...]}, a '
    'threat id such as {"threatId": "..."}, or a Unified Alert with its externalId'
)
# Payloads that arrive in place of threats, told apart by a key of their own.
_NEIGHBOUR_KEYS = {
    "detectionSource": (
        "a Unified Alert (UAM), not a threat; the threat id is its externalId"
    ),
    "alertInfo": "a STAR custom-rule alert, not a threat",
    "activityType": "a console activity, not a threat",
}
_PLAIN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
# SentinelOne threat ids are decimal strings. The id travels into Autotask's
# externalID (50 characters), console links, artifact keys and log lines, so
# anything beyond letters and digits is refused rather than escaped everywhere.
THREAT_ID = re.compile(r"[0-9A-Za-z]{1,50}")


def parse_threats_json(raw: bytes | str) -> list[Threat]:
    """Parse JSON text holding one threat, a list of them, or a `data` envelope.

    JSON integers become exact Python integers, so a numeric id above 2**53 keeps
    every digit.
    """
    return parse_threats(load_json(raw))


def load_json(raw: bytes | str) -> object:
    """Decode a payload's JSON text, or raise `ThreatPayloadError` saying why not.

    The value comes back ready to travel as a Prefect flow parameter: nested at most
    `MAX_DEPTH` levels, and with lone surrogates replaced by U+FFFD.
    """
    try:
        return clean_json(json.loads(raw))
    except json.JSONDecodeError as exc:
        msg = (
            f"Threat payload is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})."
        )
        raise ThreatPayloadError(msg, location="payload") from exc
    except RecursionError as exc:
        msg = "Threat payload is nested too deeply to be read as JSON."
        raise ThreatPayloadError(msg, location="payload") from exc
    except UnicodeDecodeError as exc:
        msg = (
            f"Threat payload is not valid JSON text: it cannot be decoded as "
            f"{exc.encoding} ({exc.reason} at byte {exc.start})."
        )
        raise ThreatPayloadError(msg, location="payload") from exc
    except ValueError as exc:
        # Python refuses integer literals longer than its digit limit (4300).
        msg = "Threat payload is not valid JSON: a number in it has too many digits."
        raise ThreatPayloadError(msg, location="payload") from exc


def clean_json(value: object, depth: int = 0) -> object:
    """``value`` with lone surrogates replaced; refused when nested too deeply.

    JSON may escape half a surrogate pair (``"\\ud800"``); Python keeps it, but
    it cannot be encoded as UTF-8, so Prefect could not store such a parameter.
    Prefect's serializer also stops at 255 levels, far above any real payload.
    """
    if depth > MAX_DEPTH:
        msg = f"Threat payload is nested more than {MAX_DEPTH} levels deep."
        raise ThreatPayloadError(msg, location="payload")
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [clean_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            clean_json(key, depth + 1): clean_json(item, depth + 1)
            for key, item in value.items()
        }
    return value


def parse_threats(payload: object) -> list[Threat]:
    """Normalise one threat, a list of threats, or a `{"data": [...]}` envelope."""
    candidates = threat_items(payload)

    threats = [_parse_threat(item, location) for location, item in candidates]

    logger.debug("Parsed %d SentinelOne threats", len(threats))
    return threats


def threat_items(payload: object) -> list[tuple[str, object]]:
    """Each threat candidate of a payload, in order, with its location in it.

    `parse_threats` parses exactly these items, so the n-th item is the n-th threat.
    An object that looks like a threat is one, whatever else it holds (a ``data``
    list too); its location is "". Items of a list are at ``[n]``, those of an
    envelope at ``data[n]``.
    """
    if isinstance(payload, Mapping) and looks_like_threat(payload):
        # A lone threat's paths start at its own keys: "threatInfo.createdAt".
        return [("", payload)]
    if isinstance(payload, Mapping) and "data" in payload:
        items, location = payload["data"], "data"
    elif isinstance(payload, list | tuple):
        items, location = payload, "payload"
    elif isinstance(payload, Mapping) and "errors" in payload:
        msg = (
            "Threat payload is a SentinelOne error response, not threats"
            f"{_api_error_summary(payload['errors'])}."
        )
        raise ThreatPayloadError(msg, location="payload")
    else:
        msg = f"Threat payload is invalid: expected {_EXPECTED_PAYLOAD}, got "
        msg += _describe_candidate(payload) + "."
        raise ThreatPayloadError(msg, location="payload")

    if not isinstance(items, list | tuple):
        msg = f"Threat payload is invalid at {location}: expected a list of threats, "
        msg += f"got {describe(items)}."
        raise ThreatPayloadError(msg, location=location)
    within = "" if location == "payload" else f" in {location}"
    if not items:
        msg = f"Threat payload holds no threats{within}: the list is empty."
        raise ThreatPayloadError(msg, location=location)
    if len(items) > MAX_THREATS_PER_CALL:
        msg = (
            f"Threat payload holds {len(items)} threats{within}; at most "
            f"{MAX_THREATS_PER_CALL} are accepted in one call."
        )
        raise ThreatPayloadError(msg, location=location)
    prefix = "data" if location == "data" else ""
    return [(f"{prefix}[{index}]", item) for index, item in enumerate(items)]


def _parse_threat(item: object, location: str) -> Threat:
    threat_id = _peek_id(item)
    raw: RawThreatV21 | RawThreatV20
    if isinstance(item, Mapping) and "threatInfo" in item:
        raw = _validate(RawThreatV21, item, location, threat_id)
        id_location = _join(location, ("threatInfo", "threatId"))
    elif isinstance(item, Mapping) and looks_like_threat(item):
        raw = _validate(RawThreatV20, item, location, threat_id)
        id_location = _join(location, ("id",))
    else:
        where = location or "payload"
        msg = f"Threat payload is invalid at {where}: expected {_EXPECTED_THREAT}, "
        msg += f"got {_describe_candidate(item)}."
        raise ThreatPayloadError(msg, location=where)

    resolved_id = raw.threat_id()
    if resolved_id is None:
        msg = (
            f"Threat payload is invalid at {id_location}: threat id is missing "
            "(neither id nor threatInfo.threatId is set)."
        )
        raise ThreatPayloadError(msg, location=id_location)
    if not THREAT_ID.fullmatch(resolved_id):
        where = _join(location, ("id",)) if raw.id else id_location
        msg = (
            f"Threat payload is invalid at {where}: threat id {describe(resolved_id)} "
            "is not a SentinelOne threat id (1 to 50 letters and digits)."
        )
        raise ThreatPayloadError(msg, location=where)
    if isinstance(raw, RawThreatV21):
        _warn_on_id_mismatch(raw)
    return to_threat(raw, resolved_id)


def looks_like_threat(item: object) -> bool:
    """Whether an object is a threat: it has threatInfo, or the keys of a v2.0 one.

    A neighbour (a Unified Alert, a STAR alert, an activity) with v2.0 keys is not.
    """
    if not isinstance(item, Mapping):
        return False
    if "threatInfo" in item:
        return True
    if any(key in item for key in _NEIGHBOUR_KEYS):
        return False
    return any(key in item for key in _V20_KEYS)


def _describe_candidate(value: object) -> str:
    if not isinstance(value, Mapping):
        return describe(value)
    for key, kind in _NEIGHBOUR_KEYS.items():
        if key in value:
            return kind
    if not value:
        return "an empty object"
    keys = ", ".join(
        quote(key) if isinstance(key, str) else describe(key)
        for key in islice(value, 5)
    )
    more = f" and {len(value) - 5} more" if len(value) > 5 else ""
    return f"an object with keys {keys}{more}"


def _api_error_summary(errors: object) -> str:
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return ""
    title = errors[0].get("title")
    code = errors[0].get("code")
    summary = f": {quote(title)}" if isinstance(title, str) else ""
    if isinstance(code, int) and not isinstance(code, bool):
        summary += f" (code {describe(code)})"
    return summary


def _peek_id(item: object) -> str | None:
    """Read the threat id before validation, for messages; only plain ids qualify."""
    if not isinstance(item, Mapping):
        return None
    info = item.get("threatInfo")
    candidates = [
        item.get("id"),
        info.get("threatId") if isinstance(info, Mapping) else None,
    ]
    for candidate in candidates:
        if isinstance(candidate, bool):
            continue
        text = describe(candidate) if isinstance(candidate, int) else candidate
        if isinstance(text, str) and _PLAIN_ID.fullmatch(text):
            return text
    return None


def _validate(
    model: type[RawThreatV21] | type[RawThreatV20],
    item: Mapping[Any, Any],
    location: str,
    threat_id: str | None,
) -> RawThreatV21 | RawThreatV20:
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = _join(location, first["loc"])
        subject = f"Threat {threat_id}" if threat_id else "Threat payload"
        msg = f"{subject} is invalid at {where}: {_problem_sentence(first)}"
        if exc.error_count() > 1:
            msg += f" ({exc.error_count() - 1} more problems in this threat)"
        raise ThreatPayloadError(
            msg + ".", location=where, threat_id=threat_id
        ) from exc


def _join(prefix: str, loc: Iterable[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == _KEY_MARKER:
            path += part
        else:
            path += f".{_key(part)}" if path else _key(part)
    return path


def _key(part: str) -> str:
    """A payload's map key as it may appear in a path: bounded, and unable to fake one.

    A key with a dot, a bracket or anything unprintable (a newline, an escape, a
    bidi override) is quoted with escapes, so it cannot forge a location or reach
    the terminal raw.
    """
    name = part if len(part) <= 80 else part[:80] + "..."
    if name.isprintable() and not _PATH_SYNTAX.search(name):
        return name
    return "[" + ascii(name) + "]"


def _problem_sentence(error: Any) -> str:
    """Phrase one pydantic error as a sentence about the named field."""
    loc = error["loc"]
    names = [
        index
        for index, part in enumerate(loc)
        if isinstance(part, str) and part != _KEY_MARKER
    ]
    field = _join("", loc[names[-1] :]) if names else "the value"
    got = describe(error.get("input"))
    if error["type"] == PROBLEM_ERROR_TYPE:
        return f"{field} {error['msg']}"
    if error["type"] in {"model_type", "model_attributes_type", "dict_type"}:
        return f"{field} must be an object, got {got}"
    if error["type"] == "list_type":
        return f"{field} must be a list, got {got}"
    return f"{field} is invalid: {error['msg']}"


def _warn_on_id_mismatch(raw: RawThreatV21) -> None:
    # The two ids are equal in the API's own answers; a mismatch means the payload
    # was edited on the way (redacted samples do this), so the top-level id wins.
    inner = raw.threat_info.threat_id
    if raw.id is not None and inner is not None and inner != raw.id:
        logger.warning(
            "Threat %s has a different threatInfo.threatId %s; using the top-level id",
            quote(raw.id),
            quote(inner),
        )
