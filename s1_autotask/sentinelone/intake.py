"""What an incoming payload asks for: whole threats, or threat ids to fetch.

SentinelOne has no signed threat webhook. Pushes come from a Hyperautomation HTTP
step whose body the customer templates, or from their own scripts, so a payload is
one of:

- whole threats: one threat object, a list of them, or the API's ``{"data": [...]}``;
- a doorbell that only names threats: ``{"threatId": "..."}`` (also ``threat_id``,
  ``threatIds``, ``threat_ids``), or a bare id;
- a Unified Alert (UAM), bare or as GraphQL returns it (``{"data": {"alert": ...}}``),
  whose ``externalId`` is the threat id for alerts from the EDR.

An object that looks like a threat (`looks_like_threat`) is read as one whatever
other keys it carries; only other objects are doorbells or alerts. The flow reads
each threat handed on to it with this module again, so one rule at both ends keeps
the threat a receiver accepted the threat a flow handles.

A doorbell is never trusted for the threat's content: the flow fetches the threat
from the API by id. Anything else raises `ThreatPayloadError` naming the location.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from s1_autotask.sentinelone._raw import describe
from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.models import Threat
from s1_autotask.sentinelone.parse import (
    MAX_THREATS_PER_CALL,
    THREAT_ID,
    load_json,
    looks_like_threat,
    parse_threats,
    threat_items,
)

RequestKind = Literal["threats", "threat_ids", "unified_alert"]

# Prefect refuses flow parameters over 512 KiB once serialised; the margin leaves
# room for the other parameters and for escaping.
MAX_PARAMETER_BYTES = 400_000

_ONE_ID_KEYS = ("threatId", "threat_id")
_MANY_ID_KEYS = ("threatIds", "threat_ids")


class ThreatRequest(BaseModel):
    """The threats a payload carries whole, or the ids of those it only names."""

    model_config = ConfigDict(frozen=True)

    kind: RequestKind
    threats: tuple[Threat, ...] = ()
    threat_ids: tuple[str, ...] = ()

    def ids(self) -> list[str]:
        """Every threat id the request concerns, in order, each once."""
        found = [t.id for t in self.threats] + list(self.threat_ids)
        return list(dict.fromkeys(found))


def read_request_json(raw: bytes | str) -> ThreatRequest:
    """Decode JSON text and read what it asks for."""
    return read_request(load_json(raw))


def read_request(payload: object) -> ThreatRequest:
    """Read a decoded payload: whole threats, a doorbell, or a Unified Alert."""
    named = _named_request(payload)
    if named is not None:
        return named
    return ThreatRequest(kind="threats", threats=tuple(parse_threats(payload)))


def merge_ids(request: ThreatRequest | None, extra_ids: Sequence[object]) -> list[str]:
    """Ids named by a request plus ids given separately (a rerun), validated."""
    named = list(request.threat_ids) if request else []
    named += [
        _threat_id(value, f"threat_ids[{index}]")
        for index, value in enumerate(extra_ids)
    ]
    return list(dict.fromkeys(named))


def json_size(value: object) -> int:
    """Bytes of ``value`` as JSON with non-ASCII escaped, as Prefect may send it."""
    return len(json.dumps(value, ensure_ascii=True, separators=(",", ":")))


def split_for_parameters(
    payload: object, limit: int = MAX_PARAMETER_BYTES
) -> list[object]:
    """Split a payload of whole threats into parts that each fit a flow parameter.

    A payload that fits comes back whole. Otherwise each part is a ``{"data":
    [...]}`` envelope of consecutive threats; a single threat too large to travel
    alone raises `ThreatPayloadError` naming it.
    """
    if json_size(payload) <= limit:
        return [payload]
    items = _splittable_items(payload, limit)
    parts: list[list[object]] = [[]]
    used = 0
    for location, item in items:
        size = json_size(item) + 1
        if size > limit:
            where = location if location.startswith("data") else f"payload{location}"
            msg = (
                f"Threat payload is too large at {where}: the threat is {size} bytes "
                f"as JSON, over the {limit} bytes a flow run can take."
            )
            raise ThreatPayloadError(msg, location=where)
        if used + size > limit:
            parts.append([])
            used = 0
        parts[-1].append(item)
        used += size
    return [{"data": part} for part in parts]


def _splittable_items(payload: object, limit: int) -> list[tuple[str, object]]:
    """The threats of a list or an envelope, found as the parser finds them."""
    # Only a list of whole threats can be split; one threat, a doorbell or an
    # alert that large cannot.
    whole = _named_request(payload) is None
    items = threat_items(payload) if whole else []
    if not items or items[0][0] == "":
        msg = (
            f"Threat payload is too large: {json_size(payload)} bytes as JSON, over "
            f"the {limit} bytes a flow run can take."
        )
        raise ThreatPayloadError(msg, location="payload")
    return items


def _named_request(payload: object) -> ThreatRequest | None:
    """What a doorbell or a Unified Alert asks for; None for whole threats."""
    if isinstance(payload, str | int) and not isinstance(payload, bool):
        return ThreatRequest(
            kind="threat_ids", threat_ids=(_threat_id(payload, "payload"),)
        )
    if not isinstance(payload, Mapping) or looks_like_threat(payload):
        return None
    alert = _unified_alert(payload)
    if alert is not None:
        return _alert_request(*alert)
    if any(key in payload for key in (*_ONE_ID_KEYS, *_MANY_ID_KEYS)):
        return ThreatRequest(kind="threat_ids", threat_ids=_doorbell_ids(payload))
    return None


def _unified_alert(
    payload: Mapping[object, object],
) -> tuple[Mapping[object, object], str] | None:
    """The alert and its location, when the payload is a Unified Alert."""
    data = payload.get("data")
    nested = data.get("alert") if isinstance(data, Mapping) else None
    if isinstance(nested, Mapping):
        return nested, "data.alert"
    if isinstance(data, Mapping) and _is_alert(data):
        return data, "data"
    bare = payload.get("alert")
    if isinstance(bare, Mapping):
        return bare, "alert"
    if _is_alert(payload):
        return payload, ""
    return None


def _is_alert(value: Mapping[object, object]) -> bool:
    # Hyperautomation bodies are templated by the customer and rarely carry the
    # whole alert, so externalId alone marks one; but a threat stays a threat.
    if looks_like_threat(value):
        return False
    return "externalId" in value or "detectionSource" in value


def _alert_request(alert: Mapping[object, object], location: str) -> ThreatRequest:
    where = f"{location}." if location else ""
    source = alert.get("detectionSource")
    product = source.get("product") if isinstance(source, Mapping) else None
    if isinstance(product, str) and product.upper() != "EDR":
        msg = (
            f"Threat payload is invalid at {where}detectionSource.product: a Unified "
            f"Alert from {describe(product)} is not an EDR threat, so there is no "
            "threat to fetch."
        )
        raise ThreatPayloadError(msg, location=f"{where}detectionSource.product")
    external_id = alert.get("externalId")
    if external_id is None or external_id == "":
        msg = (
            f"Threat payload is invalid at {where}externalId: a Unified Alert needs "
            "its externalId (the threat id) to find the threat."
        )
        raise ThreatPayloadError(msg, location=f"{where}externalId")
    threat_id = _threat_id(external_id, f"{where}externalId")
    return ThreatRequest(kind="unified_alert", threat_ids=(threat_id,))


def _doorbell_ids(payload: Mapping[object, object]) -> tuple[str, ...]:
    named: list[tuple[str, object]] = [
        (key, payload[key]) for key in _ONE_ID_KEYS if key in payload
    ]
    for key in _MANY_ID_KEYS:
        if key not in payload:
            continue
        values = payload[key]
        if not isinstance(values, list) or not values:
            msg = (
                f"Threat payload is invalid at {key}: expected a non-empty list of "
                f"threat ids, got {describe(values)}."
            )
            raise ThreatPayloadError(msg, location=key)
        named += [(f"{key}[{i}]", value) for i, value in enumerate(values)]
    _check_id_count(payload, len(named))
    ids = [_threat_id(value, location) for location, value in named]
    return tuple(dict.fromkeys(ids))


def _check_id_count(payload: Mapping[object, object], count: int) -> None:
    # The cap is on the doorbell as a whole: keys that are each under it must
    # not add up to more threats than one call may ask for.
    if count <= MAX_THREATS_PER_CALL:
        return
    keys = [key for key in (*_ONE_ID_KEYS, *_MANY_ID_KEYS) if key in payload]
    where = keys[0] if len(keys) == 1 else "payload"
    listed = keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]
    msg = (
        f"Threat payload names {count} threats in {listed}; at most "
        f"{MAX_THREATS_PER_CALL} are accepted in one call."
    )
    raise ThreatPayloadError(msg, location=where)


def _threat_id(value: object, location: str) -> str:
    """A threat id as the API spells it; a bare JSON number keeps every digit."""
    text = value if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        text = str(value) if value.bit_length() <= 128 else None
    if text is None or not THREAT_ID.fullmatch(text):
        msg = (
            f"Threat payload is invalid at {location}: {describe(value)} is not a "
            "SentinelOne threat id (1 to 50 letters and digits)."
        )
        raise ThreatPayloadError(msg, location=location)
    return text
