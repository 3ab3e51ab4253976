"""Async client for the Autotask PSA REST API: zone discovery, header auth, paging.

One ``AutotaskClient`` wraps one configured ``httpx.AsyncClient`` for one tenant. httpx
failures and non-success answers are translated into ``errors.py`` exceptions in this
module only; retry policy belongs to the caller (see ``errors.is_transient``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from s1_autotask.autotask._http import (
    entity_name,
    error_from_response,
    id_order,
    is_http_url,
    json_object,
    next_page_url,
    normalise_base_url,
    page_items,
    page_reference,
    record_id,
    strip_none,
)
from s1_autotask.autotask._query import validate_filters, validate_max_records
from s1_autotask.autotask.errors import (
    AutotaskConfigError,
    AutotaskError,
    AutotaskQueryError,
    AutotaskRateLimitError,
    AutotaskStatusError,
    AutotaskTransportError,
    AutotaskZoneError,
    is_transient,
)

__all__ = ["DEFAULT_ZONE_URL", "AutotaskClient", "AutotaskCredentials"]

logger = logging.getLogger(__name__)

DEFAULT_ZONE_URL = (
    "https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation"
)
_ZONE_ENDPOINT = "zoneInformation"
# Datto's own way to select every row; an empty filter list is not documented.
_ALL_ROWS: dict[str, str] = {"op": "exist", "field": "id"}


class AutotaskCredentials(BaseModel):
    """An API-only user's username, secret and API integration (tracking) code."""

    model_config = ConfigDict(frozen=True)

    username: str = Field(min_length=1)
    secret: SecretStr
    integration_code: SecretStr


def _auth_headers(credentials: AutotaskCredentials) -> dict[str, str]:
    """Build the headers of an authenticated call; the only place secrets are read."""
    headers = {
        "ApiIntegrationCode": credentials.integration_code.get_secret_value(),
        "UserName": credentials.username,
        "Secret": credentials.secret.get_secret_value(),
    }
    for name, value in headers.items():
        # httpx would refuse such a header and quote its value in the error.
        if not all(" " <= ch <= "~" for ch in value):
            msg = (
                f"Autotask {name} holds a character an HTTP header cannot carry; "
                "use printable ASCII."
            )
            raise AutotaskConfigError(msg)
    return {**headers, "Content-Type": "application/json"}


# Waits between repeats of a request: doubling from the base, and what Autotask's
# Retry-After asks for, within reason.
_MAX_BACKOFF = 8.0
_MAX_RETRY_AFTER = 30.0
# httpx failures that mean the request never left this machine.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _may_repeat(method: str, path: str, exc: AutotaskError) -> bool:
    """Whether sending the request again is safe and may help."""
    if not is_transient(exc):
        return False
    reading = method == "GET" or path.split("?", 1)[0].endswith("/query")
    if reading:
        return True
    # Autotask refuses these before doing anything, so a write can go again.
    if isinstance(exc, AutotaskRateLimitError):
        return True
    return isinstance(exc, AutotaskTransportError) and isinstance(
        exc.__cause__, _NEVER_SENT
    )


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("s1-autotask")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    return f"s1-autotask/{version}"


class AutotaskClient:
    """Talk to one Autotask tenant; use as ``async with AutotaskClient(...)``."""

    def __init__(
        self,
        credentials: AutotaskCredentials,
        *,
        base_url: str | None = None,
        zone_url: str = DEFAULT_ZONE_URL,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        request_gate: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
        retries: int = 0,
        retry_base_seconds: float = 0.5,
    ) -> None:
        """Configure the client; nothing is sent until the first call.

        ``request_gate`` returns an async context manager held around every
        authenticated request: the caller's way to cap concurrent calls (Autotask
        allows three threads per endpoint) without this library knowing how.

        ``retries`` repeats a request that failed in passing, up to that many
        times, but only when repeating it cannot do anything twice: a read, or a
        write that Autotask surely never processed (429, the thread limit, a
        connection that was never made). A write whose fate is unknown (a timeout,
        a dropped answer, a 500) is never repeated here; the caller looks the
        record up before trying again.
        """
        if not is_http_url(zone_url):
            msg = f"Autotask zone url {zone_url!r} is not an absolute http(s) url."
            raise ValueError(msg)

        self._credentials = credentials
        self._zone_url = zone_url
        self._pinned = base_url is not None
        self._base_url = normalise_base_url(base_url) if base_url is not None else None
        self._zone_lock = asyncio.Lock()
        self._request_gate = request_gate
        self._retries = retries
        self._retry_base = retry_base_seconds
        self._web_url: str | None = None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": _user_agent(), "Accept": "application/json"},
            transport=transport,
            # httpx drops only Authorization on a cross-host redirect; the Autotask
            # credentials are custom headers and would follow the redirect.
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return (
            f"AutotaskClient(username={self._credentials.username!r}, "
            f"base_url={self._base_url!r})"
        )

    @property
    def base_url(self) -> str | None:
        """The API base url ending in ``v1.0/``; None until the zone is discovered."""
        return self._base_url

    @property
    def web_url(self) -> str | None:
        """The tenant's web UI, for links to tickets; None until the zone is known.

        The zone lookup names it; with a configured base url it is the matching
        ``wwN`` host of the ``webservicesN`` API host.
        """
        if self._web_url is not None or self._base_url is None:
            return self._web_url
        api = httpx.URL(self._base_url)
        host = api.host
        if host.startswith("webservices") and host.endswith(".autotask.net"):
            host = "ww" + host.removeprefix("webservices")
        return str(api.copy_with(host=host, path="/", query=None))

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

    async def query(
        self,
        entity: str,
        filters: Sequence[Mapping[str, Any]],
        *,
        include_fields: Sequence[str] | None = None,
        max_records: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return every row matching ``filters``, following Autotask's page links."""
        path = f"{entity_name(entity)}/query"
        validate_filters(filters)
        validate_max_records(max_records)

        body: dict[str, Any] = {"filter": list(filters) or [dict(_ALL_ROWS)]}
        if include_fields is not None:
            body["IncludeFields"] = list(include_fields)
        if max_records is not None:
            body["MaxRecords"] = max_records

        items: list[dict[str, Any]] = []
        page = await self._request_json("POST", path, body=body)
        seen_pages: set[str] = set()
        while True:
            items.extend(page_items(page, path))
            next_url = next_page_url(page)
            # Autotask reads MaxRecords as the page size, so stop once we hold enough.
            if next_url is None or (max_records and len(items) >= max_records):
                break
            if next_url in seen_pages:
                msg = f"Autotask repeated a page link for {path}; stopped paging."
                raise AutotaskError(msg)
            seen_pages.add(next_url)
            # A POST query's next page must be POSTed with the same body: a GET
            # answers 405 and the remaining rows are silently lost.
            reference = page_reference(next_url, self._base_url or "", path)
            page = await self._request_json("POST", reference, body=body)
        return items[:max_records] if max_records else items

    async def get(self, entity: str, item_id: int) -> dict[str, Any] | None:
        """Return one record by id, or None when Autotask has no such record."""
        path = f"{entity_name(entity)}/{record_id(item_id)}"

        try:
            payload = await self._request_json("GET", path)
        except AutotaskStatusError as exc:
            if exc.status_code == 404:
                return None
            raise
        item = payload.get("item")
        return item if isinstance(item, dict) else None

    async def create(self, entity: str, body: Mapping[str, Any]) -> int:
        """Create a record and return its id; None values are left out of the body."""
        path = entity_name(entity)
        return await self._write("POST", path, strip_none(dict(body)))

    async def update(self, entity: str, body: Mapping[str, Any]) -> int:
        """PATCH the fields in ``body``, which names the record ``id``; return the id.

        None values are sent, because on PATCH a null clears the field.
        """
        if not any(str(key).casefold() == "id" for key in body):
            msg = f"Autotask update of {entity} needs the record id in the body."
            raise ValueError(msg)
        return await self._write("PATCH", entity_name(entity), dict(body))

    async def create_ticket_note(self, ticket_id: int, body: Mapping[str, Any]) -> int:
        """Add a note to a ticket and return the note id."""
        path = f"Tickets/{record_id(ticket_id)}/Notes"
        note = strip_none(dict(body))
        ticket_keys = [key for key in note if str(key).casefold() == "ticketid"]
        if any(str(note[key]) != str(ticket_id) for key in ticket_keys):
            msg = f"Note body names a different ticket than {ticket_id}."
            raise ValueError(msg)
        if not ticket_keys:
            note["ticketID"] = ticket_id
        return await self._write("POST", path, note)

    async def entity_fields(self, entity: str) -> list[dict[str, Any]]:
        """Return the field metadata of an entity, picklists included."""
        path = f"{entity_name(entity)}/entityInformation/fields"

        payload = await self._request_json("GET", path)

        fields = payload.get("fields")
        if not isinstance(fields, list):
            msg = f"Autotask GET {path} answered without a fields list."
            raise AutotaskStatusError(200, [], path, method="GET", detail=msg)
        return [field for field in fields if isinstance(field, dict)]

    async def find_ticket_by_external_id(
        self, external_id: str
    ) -> dict[str, Any] | None:
        """Return the ticket carrying ``external_id``; the oldest one if several do."""
        if not external_id.strip():
            msg = "External id is empty; it would match every ticket without one."
            raise AutotaskQueryError(msg)
        condition = {"op": "eq", "field": "externalID", "value": external_id}

        tickets = await self.query("Tickets", [condition])

        if not tickets:
            return None
        oldest = min(tickets, key=id_order)
        if len(tickets) > 1:
            logger.warning(
                "Autotask has %d tickets with externalID %s; using ticket %s",
                len(tickets),
                external_id,
                oldest.get("id"),
            )
        return oldest

    async def _write(self, method: str, path: str, body: dict[str, Any]) -> int:
        payload = await self._request_json(method, path, body=body)

        item_id = payload.get("itemId")
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            msg = f"Autotask {method} {path} answered without an itemId."
            raise AutotaskStatusError(200, [], path, method=method, detail=msg)
        return item_id

    async def _request_json(
        self, method: str, path: str, *, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            try:
                response = await self._call(method, path, body=body)
                return self._interpret(response, method, path)
            except AutotaskError as exc:
                if attempt >= self._retries or not _may_repeat(method, path, exc):
                    raise
                attempt += 1
                delay = self._retry_delay(attempt, exc)
                logger.info(
                    "Autotask %s %s failed in passing (%s); trying again in %.1f s "
                    "(%d of %d)",
                    method,
                    path.split("?", 1)[0],
                    type(exc).__name__,
                    delay,
                    attempt,
                    self._retries,
                )
                await asyncio.sleep(delay)

    def _retry_delay(self, attempt: int, exc: AutotaskError) -> float:
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, int | float) and asked > 0:
            return float(min(asked, _MAX_RETRY_AFTER))
        return float(min(self._retry_base * 2 ** (attempt - 1), _MAX_BACKOFF))

    def _interpret(
        self, response: httpx.Response, method: str, path: str
    ) -> dict[str, Any]:
        endpoint = path.split("?", 1)[0]
        if not response.is_success:
            raise error_from_response(method, endpoint, response)
        return json_object(method, endpoint, response)

    async def _call(
        self, method: str, path: str, *, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Send an authenticated call to ``path`` below the base url."""
        base = await self._zone_base_url()
        response = await self._send(method, base + path, path, body=body)

        # Tenants get moved between zones and the old zone then answers 401. A 401
        # means nothing was processed, so even a create may be sent once more.
        if response.status_code == 401 and not self._pinned:
            base = await self._rediscover_zone(stale=base)
            response = await self._send(method, base + path, path, body=body)
        return response

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        authenticated: bool = True,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Make one HTTP exchange, log it, and translate httpx failures."""
        endpoint = path.split("?", 1)[0]
        headers = _auth_headers(self._credentials) if authenticated else None
        # Zone lookups are exempt from Autotask's thread limit, so they skip the gate.
        gate = self._request_gate if authenticated and self._request_gate else None
        started = time.perf_counter()
        try:
            async with gate() if gate else nullcontext():
                started = time.perf_counter()
                response = await self._http.request(
                    method, url, json=body, headers=headers, params=params
                )
        except httpx.RequestError as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.warning(
                "Autotask %s %s failed after %.0f ms: %s",
                method,
                endpoint,
                elapsed_ms,
                type(exc).__name__,
            )
            # A timeout's own message is empty; say what happened instead.
            detail = str(exc)[:300] or (
                f"no answer within {self._http.timeout.read} s"
                if isinstance(exc, httpx.TimeoutException)
                else "no detail"
            )
            msg = (
                f"Autotask {method} {endpoint} failed without a response: "
                f"{type(exc).__name__}: {detail}"
            )
            raise AutotaskTransportError(msg) from exc

        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "Autotask %s %s -> HTTP %d in %.0f ms",
            method,
            endpoint,
            response.status_code,
            elapsed_ms,
        )
        return response

    async def _zone_base_url(self) -> str:
        if self._base_url is not None:
            return self._base_url
        async with self._zone_lock:
            if self._base_url is None:
                self._base_url = await self._discover_zone()
            return self._base_url

    async def _rediscover_zone(self, *, stale: str) -> str:
        async with self._zone_lock:
            current = self._base_url
            # Another call may already have found the new zone while we waited.
            if current is None or current == stale:
                logger.warning("Autotask answered 401 from %s; looking up zone", stale)
                self._base_url = None
                current = self._base_url = await self._discover_zone()
            return current

    async def _discover_zone(self) -> str:
        """Ask which zone serves the API user; the lookup carries no credentials."""
        zone_endpoint = str(httpx.URL(self._zone_url).copy_with(query=None))
        response = await self._send(
            "GET",
            self._zone_url,
            _ZONE_ENDPOINT,
            authenticated=False,
            params={"user": self._credentials.username},
        )
        if not response.is_success:
            error = error_from_response("GET", zone_endpoint, response)
            raise error

        url = json_object("GET", zone_endpoint, response).get("url")
        if not isinstance(url, str) or not is_http_url(url):
            msg = f"Autotask zone lookup at {zone_endpoint} gave no http(s) url."
            raise AutotaskZoneError(200, [], zone_endpoint, detail=msg)
        # The lookup is unauthenticated: never let its answer move the secret from
        # https to plain http.
        zone_scheme, base_scheme = (
            httpx.URL(self._zone_url).scheme,
            httpx.URL(url).scheme,
        )
        if zone_scheme == "https" and base_scheme != "https":
            msg = f"Autotask zone lookup at {zone_endpoint} gave a non-https url."
            raise AutotaskZoneError(200, [], zone_endpoint, detail=msg)

        base = normalise_base_url(url)
        web = json_object("GET", zone_endpoint, response).get("webUrl")
        if isinstance(web, str) and is_http_url(web):
            self._web_url = web
        logger.info("Autotask zone for %s is %s", self._credentials.username, base)
        return base
