"""Async client for the SentinelOne v2.1 REST API: threats by cursor, and write-back.

One ``SentinelOneClient`` wraps one configured ``httpx.AsyncClient`` for one console.
httpx failures and non-success answers are translated into ``errors.py`` exceptions
in this module only; retry policy belongs to the caller (see ``errors.is_transient``).
"""

import importlib.metadata
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr

from s1_autotask.config import SentinelOneSettings
from s1_autotask.sentinelone._http import (
    API_PREFIX,
    FilterValue,
    affected_count,
    error_from_response,
    format_timestamp,
    json_object,
    next_cursor,
    normalise_base_url,
    page_threats,
    query_value,
)
from s1_autotask.sentinelone.errors import (
    SentinelOneError,
    SentinelOneNotConfiguredError,
    SentinelOneTransportError,
)
from s1_autotask.sentinelone.models import Threat
from s1_autotask.sentinelone.parse import THREAT_ID, parse_threats

__all__ = [
    "EXTERNAL_TICKET_PATH",
    "IDS_PER_REQUEST",
    "MAX_PAGE_SIZE",
    "NOTES_PATH",
    "THREATS_PATH",
    "SentinelOneClient",
]

logger = logging.getLogger(__name__)

THREATS_PATH = f"{API_PREFIX}/threats"
NOTES_PATH = f"{THREATS_PATH}/notes"
EXTERNAL_TICKET_PATH = f"{THREATS_PATH}/external-ticket-id"
MAX_PAGE_SIZE = 1000
# Ids travel comma-joined in the query string. A hundred 19-digit ids make about
# 2 KB once encoded, far below the 8 KB request line that proxies commonly accept.
IDS_PER_REQUEST = 100
# Query parameters this client sets itself; a caller's filter must not undo them.
_OWN_PARAMETERS = {
    "ids": "ids",
    "limit": "page_size",
    "cursor": "page_size",
    "skip": "page_size",
    "countOnly": "page_size",
    "sortBy": "updated_since",
    "sortOrder": "updated_since",
    "updatedAt__gte": "updated_since",
}


def _auth_headers(api_token: SecretStr) -> dict[str, str]:
    """Build the Authorization header; the only place the token is read."""
    token = api_token.get_secret_value().strip()
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        msg = "SentinelOne API token is empty or holds characters a header cannot."
        raise ValueError(msg)
    return {"Authorization": f"ApiToken {token}"}


def _default_user_agent() -> str:
    try:
        version = importlib.metadata.version("s1-autotask")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"s1-autotask/{version}"


class SentinelOneClient:
    """Talk to one SentinelOne console; use as ``async with SentinelOneClient(...)``."""

    def __init__(
        self,
        base_url: str,
        api_token: SecretStr,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str | None = None,
    ) -> None:
        """Configure the client; nothing is sent until the first call.

        ``base_url`` is the console url, with or without ``/web/api/v2.1``.
        """
        self._base_url = normalise_base_url(base_url)
        _auth_headers(api_token)
        self._token = api_token
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={
                "User-Agent": user_agent or _default_user_agent(),
                "Accept": "application/json",
            },
            transport=transport,
            # A redirect would be a console move or a proxy's login page; neither
            # should receive the token, and neither answers with threats.
            follow_redirects=False,
        )

    @classmethod
    def from_settings(cls, settings: SentinelOneSettings, *, why: str) -> Self:
        """The configured client, or an error naming what to set.

        ``why`` says what needs the API, for that error.
        """
        base = settings.api_base()
        if base is None or not settings.is_configured():
            msg = (
                f"{why} needs the SentinelOne API: set S1AT_SENTINELONE__API_URL (or "
                "S1AT_SENTINELONE__CONSOLE_URL) and S1AT_SENTINELONE__API_TOKEN."
            )
            raise SentinelOneNotConfiguredError(msg)
        return cls(base, settings.api_token, timeout=settings.timeout_seconds)

    def __repr__(self) -> str:
        return f"SentinelOneClient(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        """The console url that ``/web/api/v2.1/...`` paths are appended to."""
        return self._base_url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self._http.aclose()

    async def iter_raw_threats(
        self,
        *,
        ids: Sequence[str] | None = None,
        updated_since: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        **filters: FilterValue | None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield threat objects as the API sends them, oldest update first.

        ``updated_since`` selects threats updated at or after that moment; other
        ``/threats`` filters pass as keywords (``siteIds=[...]``,
        ``externalTicketExists=False``). Long ``ids`` lists are split over several
        requests, each in update order. Every page is followed to the last cursor.
        Raw objects let a caller handle one malformed threat without losing the rest.
        """
        params = _list_params(updated_since, page_size, filters)
        if ids is None:
            async for raw in self._threat_pages(params):
                yield raw
            return

        for chunk in _id_chunks(ids):
            async for raw in self._threat_pages({**params, "ids": ",".join(chunk)}):
                yield raw

    async def iter_threats(
        self,
        *,
        ids: Sequence[str] | None = None,
        updated_since: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        **filters: FilterValue | None,
    ) -> AsyncIterator[Threat]:
        """Like ``iter_raw_threats``, each threat parsed into a ``Threat``.

        Raises:
            ThreatPayloadError: a threat is malformed; the message names it.
        """
        raws = self.iter_raw_threats(
            ids=ids, updated_since=updated_since, page_size=page_size, **filters
        )
        async for raw in raws:
            yield _parse_one(raw)

    async def count_threats(
        self,
        *,
        updated_since: datetime | None = None,
        **filters: FilterValue | None,
    ) -> int | None:
        """How many threats a listing with these filters holds, or None if unsaid.

        One request for a single threat: the answer's ``pagination.totalItems``.
        """
        params = _list_params(updated_since, 1, filters)
        page = await self._request_json("GET", THREATS_PATH, params=params)
        pagination = page.get("pagination")
        total = pagination.get("totalItems") if isinstance(pagination, dict) else None
        if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            return total
        return None

    async def get_threats(self, ids: Sequence[str]) -> list[Threat]:
        """Fetch the threats with these ids; an unknown id is simply absent."""
        return [threat async for threat in self.iter_threats(ids=ids)]

    async def set_external_ticket_id(self, threat_id: str, ticket_id: str) -> int:
        """Store the ticket number on the threat; return how many threats changed.

        0 means the threat is outside the token's scope, does not exist, or already
        carries this ticket id.
        """
        if not ticket_id.strip():
            msg = f"External ticket id for threat {threat_id} is empty."
            raise ValueError(msg)
        body = {
            "filter": {"ids": [_checked_id(threat_id)]},
            "data": {"externalTicketId": ticket_id},
        }

        payload = await self._request_json(
            "POST", EXTERNAL_TICKET_PATH, body=body, threat_id=threat_id
        )

        return affected_count(payload, EXTERNAL_TICKET_PATH)

    async def add_threat_note(self, threat_id: str, text: str) -> int:
        """Add a note to the threat; return how many threats got it (0 or 1)."""
        if not text.strip():
            msg = f"Note for threat {threat_id} is empty."
            raise ValueError(msg)
        body = {"filter": {"ids": [_checked_id(threat_id)]}, "data": {"text": text}}

        payload = await self._request_json(
            "POST", NOTES_PATH, body=body, threat_id=threat_id
        )

        return affected_count(payload, NOTES_PATH)

    async def _threat_pages(
        self, params: Mapping[str, str]
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every threat of a listing, following ``nextCursor`` until null."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            query = dict(params) if cursor is None else {**params, "cursor": cursor}
            page = await self._request_json("GET", THREATS_PATH, params=query)
            for raw in page_threats(page, THREATS_PATH):
                yield raw

            cursor = next_cursor(page, THREATS_PATH)
            if cursor is None:
                return
            if cursor in seen:
                msg = f"SentinelOne repeated a page cursor for {THREATS_PATH}; stopped."
                raise SentinelOneError(msg)
            seen.add(cursor)

    async def _request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        threat_id: str | None = None,
    ) -> dict[str, Any]:
        response = await self._send(
            method, path, params=params, body=body, threat_id=threat_id
        )
        if not response.is_success:
            raise error_from_response(method, path, response)
        return json_object(method, path, response)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: dict[str, Any] | None,
        threat_id: str | None,
    ) -> httpx.Response:
        """Make one HTTP exchange, log it, and translate httpx failures."""
        about = f" for threat {threat_id}" if threat_id else ""
        started = time.perf_counter()
        try:
            response = await self._http.request(
                method,
                self._base_url + path,
                params=params,
                json=body,
                headers=_auth_headers(self._token),
            )
        except httpx.RequestError as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.warning(
                "SentinelOne %s %s%s failed after %.0f ms: %s",
                method,
                path,
                about,
                elapsed_ms,
                type(exc).__name__,
            )
            msg = (
                f"SentinelOne {method} {path}{about} failed without a response: "
                f"{type(exc).__name__}: {str(exc)[:300]}"
            )
            raise SentinelOneTransportError(msg) from exc

        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "SentinelOne %s %s%s -> HTTP %d in %.0f ms",
            method,
            path,
            about,
            response.status_code,
            elapsed_ms,
        )
        return response


def _list_params(
    updated_since: datetime | None,
    page_size: int,
    filters: Mapping[str, FilterValue | None],
) -> dict[str, str]:
    """Build the query of a threat listing, refusing what the API would reject."""
    if isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_SIZE:
        # The API answers 400 above 1000; failing here names the argument instead.
        msg = f"SentinelOne page size must be 1 to {MAX_PAGE_SIZE}, got {page_size!r}."
        raise ValueError(msg)
    for name in filters:
        if name in _OWN_PARAMETERS:
            msg = (
                f"SentinelOne filter {name} is set by the client; "
                f"pass {_OWN_PARAMETERS[name]}= instead."
            )
            raise ValueError(msg)

    # Ascending update order makes the last threat seen a safe polling checkpoint.
    params = {"limit": str(page_size), "sortBy": "updatedAt", "sortOrder": "asc"}
    if updated_since is not None:
        params["updatedAt__gte"] = format_timestamp(updated_since)
    for name, value in filters.items():
        if value is not None:
            params[name] = query_value(name, value)
    return params


def _id_chunks(ids: Iterable[str]) -> list[list[str]]:
    """Split the distinct ids, in their order, into request-sized groups."""
    if isinstance(ids, str):
        # A lone string would otherwise be read one character at a time.
        msg = "Threat ids must be a list of ids, not one string."
        raise TypeError(msg)
    unique = list(dict.fromkeys(_checked_id(threat_id) for threat_id in ids))
    return [
        unique[start : start + IDS_PER_REQUEST]
        for start in range(0, len(unique), IDS_PER_REQUEST)
    ]


def _checked_id(threat_id: str) -> str:
    if not isinstance(threat_id, str) or not THREAT_ID.fullmatch(threat_id):
        msg = f"{threat_id!r} is not a SentinelOne threat id (letters and digits)."
        raise ValueError(msg)
    return threat_id


def _parse_one(raw: dict[str, Any]) -> Threat:
    # A lone object that is not a v2.1 threat goes in a list, so an odd object with
    # a "data" key is not mistaken for a response envelope.
    payload: object = raw if "threatInfo" in raw else [raw]
    return parse_threats(payload)[0]
