"""Filters, sorting and cursors of the emulated SentinelOne list endpoints.

A filter comes from a query string (`ids=1,2&updatedAt__gte=...`) or from the
`filter` object of a write-back body (`{"ids": ["1", "2"]}`); both read the same
names. Paging is keyset paging: a cursor holds the sort it belongs to and the sort
value and id of the last record served, so threats added or updated between two
pages neither repeat nor push others off a page.
"""

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from s1_autotask.emulators._sentinelone_errors import (
    EmulatedApiError,
    validation_error,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Page",
    "PageRequest",
    "ThreatFilter",
    "format_timestamp",
    "paginate",
    "parse_page_request",
    "parse_threat_filter",
    "parse_timestamp",
]

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
MAX_SKIP = 1000
_TIME_FIELDS = ("createdAt", "updatedAt")
_TIME_OPERATORS = ("gt", "gte", "lt", "lte")
# Where each list-valued filter looks in a threat object.
_SET_FILTERS = {
    "ids": ("id",),
    "siteIds": ("agentRealtimeInfo", "siteId"),
    "accountIds": ("agentRealtimeInfo", "accountId"),
    "incidentStatuses": ("threatInfo", "incidentStatus"),
}

RecordT = TypeVar("RecordT", bound=Mapping[str, Any])


def parse_timestamp(value: object, name: str) -> datetime:
    """Read an ISO-8601 time; one without a zone is taken as UTC, as the API does."""
    if not isinstance(value, str):
        msg = f"{name}: expected an ISO-8601 time string."
        raise validation_error(msg)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{name}: {value[:40]!r} is not an ISO-8601 time."
        raise validation_error(msg) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def format_timestamp(moment: datetime) -> str:
    """Write a time as SentinelOne does: UTC, microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ThreatFilter:
    """Which threats a listing or a write-back applies to; unset parts match all."""

    sets: Mapping[str, frozenset[str]]
    external_ticket_exists: bool | None
    time_bounds: tuple[tuple[str, str, datetime], ...]

    @property
    def is_empty(self) -> bool:
        """Whether the filter has no condition at all, and so matches every threat."""
        return (
            not self.sets
            and self.external_ticket_exists is None
            and not self.time_bounds
        )

    def matches(self, threat: Mapping[str, Any]) -> bool:
        """Tell whether `threat` passes every condition of the filter."""
        for name, allowed in self.sets.items():
            if str(_dig(threat, _SET_FILTERS[name])) not in allowed:
                return False
        info = threat.get("threatInfo") or {}
        if self.external_ticket_exists is not None and (
            bool(info.get("externalTicketExists")) != self.external_ticket_exists
        ):
            return False
        for field, operator, bound in self.time_bounds:
            moment = parse_timestamp(info.get(field), field)
            if not _compare(moment, operator, bound):
                return False
        return True


def parse_threat_filter(source: Mapping[str, object]) -> ThreatFilter:
    """Build a filter from query values (comma-joined text) or a body's filter object.

    Names the emulator does not know are ignored, as the real API ignores them. An
    empty id list matches no threat rather than every threat.
    """
    sets = {
        name: _string_set(source[name], name)
        for name in _SET_FILTERS
        if source.get(name) is not None
    }
    exists = source.get("externalTicketExists")
    bounds = tuple(
        (field, operator, parse_timestamp(source[key], key))
        for field in _TIME_FIELDS
        for operator in _TIME_OPERATORS
        if source.get(key := f"{field}__{operator}") is not None
    )
    return ThreatFilter(sets, _boolean(exists, "externalTicketExists"), bounds)


@dataclass(frozen=True)
class PageRequest:
    """How to order and cut one page of a listing."""

    sort_by: str
    descending: bool
    limit: int
    skip: int
    after: tuple[str | None, str] | None


def parse_page_request(
    query: Mapping[str, str], sort_fields: Sequence[str], default_sort: str
) -> PageRequest:
    """Read `limit`, `skip`, `sortBy`, `sortOrder` and `cursor` from a query string.

    A cursor carries its own sort; asking for a different one with it is refused.
    """
    limit = _bounded_int(query.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    skip = _bounded_int(query.get("skip"), "skip", 0, 0, MAX_SKIP)
    sort_by = query.get("sortBy")
    order = query.get("sortOrder")
    if sort_by is not None and sort_by not in sort_fields:
        msg = (
            f"sortBy: the emulator sorts by {', '.join(sort_fields)}, not {sort_by!r}."
        )
        raise validation_error(msg)
    if order is not None and order not in {"asc", "desc"}:
        msg = f"sortOrder: must be asc or desc, not {order[:20]!r}."
        raise validation_error(msg)

    cursor = query.get("cursor")
    if cursor is None:
        return PageRequest(
            sort_by or default_sort, order == "desc", limit, skip, after=None
        )
    cursor_sort, cursor_order, after = _decode_cursor(cursor, sort_fields)
    if (sort_by or cursor_sort, order or cursor_order) != (cursor_sort, cursor_order):
        msg = "cursor: it belongs to a different sortBy or sortOrder."
        raise validation_error(msg)
    return PageRequest(cursor_sort, cursor_order == "desc", limit, skip, after)


@dataclass(frozen=True)
class Page:
    """One page of records, the cursor of the next one, and the filtered total."""

    items: list[Any]
    next_cursor: str | None
    total: int


def paginate(
    records: Sequence[RecordT],
    request: PageRequest,
    sort_value: Callable[[RecordT, str], str | None],
) -> Page:
    """Sort `records`, skip past the cursor, and cut one page.

    `sort_value` gives a record's value of a sort field (an ISO time, or None when
    sorting by id); ties, and the id sort itself, order by numeric id.
    """

    def position(record: RecordT) -> tuple[Any, ...]:
        return _position(request.sort_by, sort_value(record, request.sort_by), record)

    ordered = sorted(records, key=position, reverse=request.descending)
    if request.after is not None:
        value, after_id = request.after
        mark = _position(request.sort_by, value, {"id": after_id})
        if request.descending:
            ordered = [record for record in ordered if position(record) < mark]
        else:
            ordered = [record for record in ordered if position(record) > mark]
    remaining = ordered[request.skip :]
    items = remaining[: request.limit]

    cursor = None
    if len(remaining) > request.limit and items:
        last = items[-1]
        cursor = _encode_cursor(
            request.sort_by,
            "desc" if request.descending else "asc",
            sort_value(last, request.sort_by),
            str(last["id"]),
        )
    return Page(items=items, next_cursor=cursor, total=len(records))


def _position(
    sort_by: str, value: str | None, record: Mapping[str, Any]
) -> tuple[Any, ...]:
    identity = _id_order(str(record["id"]))
    if sort_by == "id":
        return (identity,)
    return (parse_timestamp(value, sort_by), identity)


def _id_order(record_id: str) -> tuple[int, int, str]:
    # SentinelOne ids are 64-bit numbers sent as strings: order them as numbers.
    if record_id.isdecimal():
        return (0, int(record_id), "")
    return (1, 0, record_id)


def _encode_cursor(sort_by: str, order: str, value: str | None, record_id: str) -> str:
    state = {"sortBy": sort_by, "sortOrder": order, "value": value, "id": record_id}
    text = json.dumps(state, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode("ascii")


def _decode_cursor(
    cursor: str, sort_fields: Sequence[str]
) -> tuple[str, str, tuple[str | None, str]]:
    invalid = validation_error("cursor: it is not a cursor this API gave out.")
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    if not isinstance(state, dict):
        raise invalid
    sort_by, order = state.get("sortBy"), state.get("sortOrder")
    value, record_id = state.get("value"), state.get("id")
    if (
        not isinstance(sort_by, str)
        or sort_by not in sort_fields
        or order not in ("asc", "desc")
        or not isinstance(record_id, str)
        or not (value is None if sort_by == "id" else isinstance(value, str))
    ):
        raise invalid
    try:
        if value is not None:
            parse_timestamp(value, "cursor")
    except EmulatedApiError:
        raise invalid from None
    return sort_by, str(order), (value, record_id)


def _dig(record: Mapping[str, Any], path: Sequence[str]) -> object:
    value: object = record
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _compare(moment: datetime, operator: str, bound: datetime) -> bool:
    if operator == "gt":
        return moment > bound
    if operator == "gte":
        return moment >= bound
    if operator == "lt":
        return moment < bound
    return moment <= bound


def _string_set(value: object, name: str) -> frozenset[str]:
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(
        isinstance(item, str | int) and not isinstance(item, bool) for item in value
    ):
        items = [str(item) for item in value]
    else:
        msg = f"{name}: expected a list of strings."
        raise validation_error(msg)
    return frozenset(item.strip() for item in items if item.strip())


def _boolean(value: object, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.casefold() in {"true", "false"}:
        return value.casefold() == "true"
    msg = f"{name}: expected true or false."
    raise validation_error(msg)


def _bounded_int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdecimal() else None
    if value is None or not low <= value <= high:
        msg = f"{name}: must be an integer from {low} to {high}."
        raise validation_error(msg)
    return value
