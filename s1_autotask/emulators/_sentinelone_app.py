"""The Starlette application that speaks the SentinelOne v2.1 threat contract.

Served paths, all below `/web/api/v2.1/` and all behind `Authorization: ApiToken`:

- `GET threats`: filters, sort, `limit` 1-1000, keyset `cursor`.
- `POST threats/notes` and `POST threats/external-ticket-id`: a `filter` and a
  `data` object; the answer counts the threats changed.
- `GET threats/{id}/notes`: the notes of one threat, paged like the threats.

Every failure leaves as SentinelOne's `{"errors": [...]}` body.
"""

import json
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from s1_autotask.emulators._sentinelone_errors import (
    EmulatedApiError,
    method_not_allowed,
    not_found,
    unauthorized,
    validation_error,
)
from s1_autotask.emulators._sentinelone_query import (
    Page,
    ThreatFilter,
    parse_page_request,
    parse_threat_filter,
)

if TYPE_CHECKING:
    from s1_autotask.emulators._sentinelone_state import SentinelOneEmulator

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/web/api/v2.1/"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_THREAT_SORTS = ("id", "createdAt", "updatedAt")
_NOTE_SORTS = ("createdAt", "updatedAt")
# The maximum the real API accepts is not published; this keeps a runaway test
# from storing megabytes per note.
_MAX_TEXT = 65_536


def create_app(emulator: "SentinelOneEmulator") -> Starlette:
    """Build the ASGI application serving `emulator`."""
    api = _SentinelOneApi(emulator)
    return Starlette(routes=[Route("/{path:path}", api.handle, methods=_METHODS)])


class _SentinelOneApi:
    """Request dispatch for the emulated `/web/api/v2.1/` tree."""

    def __init__(self, emulator: "SentinelOneEmulator") -> None:
        self._emulator = emulator

    async def handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except EmulatedApiError as exc:
            return JSONResponse(exc.body, status_code=exc.status_code)

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        if not path.startswith(API_PREFIX):
            raise not_found(path)
        if not self._emulator.authenticate(request.headers.get("authorization")):
            raise unauthorized()

        segments = path[len(API_PREFIX) :].rstrip("/").split("/")
        match segments:
            case ["threats"]:
                _allow(request, "GET")
                return self._list_threats(request)
            case ["threats", "notes"]:
                _allow(request, "POST")
                return await self._add_note(request)
            case ["threats", "external-ticket-id"]:
                _allow(request, "POST")
                return await self._set_external_ticket_id(request)
            case ["threats", threat_id, "notes"]:
                _allow(request, "GET")
                return self._list_notes(request, threat_id)
        raise not_found(path)

    def _list_threats(self, request: Request) -> Response:
        # Repeated parameters are joined like one comma-separated value; names the
        # emulator does not know are ignored, as the real API ignores them.
        query = {
            key: ",".join(request.query_params.getlist(key))
            for key in request.query_params
        }
        selection = parse_threat_filter(query)
        paging = parse_page_request(query, _THREAT_SORTS, default_sort="id")

        page = self._emulator.list_threats(selection, paging)

        return _page_response(page)

    def _list_notes(self, request: Request, threat_id: str) -> Response:
        query = dict(request.query_params)
        paging = parse_page_request(query, _NOTE_SORTS, default_sort="createdAt")

        page = self._emulator.list_notes(threat_id, paging)

        return _page_response(page)

    async def _add_note(self, request: Request) -> Response:
        selection, data = await _write_back_body(request)
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            msg = "data.text: a non-empty string is required."
            raise validation_error(msg)
        if len(text) > _MAX_TEXT:
            msg = f"data.text: at most {_MAX_TEXT} characters are accepted."
            raise validation_error(msg)

        affected = self._emulator.write_note(selection, text)

        return JSONResponse({"data": {"affected": affected}})

    async def _set_external_ticket_id(self, request: Request) -> Response:
        selection, data = await _write_back_body(request)
        ticket_id = data.get("externalTicketId")
        if not isinstance(ticket_id, str) or not ticket_id.strip():
            msg = "data.externalTicketId: a non-empty string is required."
            raise validation_error(msg)

        affected = self._emulator.write_external_ticket_id(selection, ticket_id)

        return JSONResponse({"data": {"affected": affected}})


async def _write_back_body(request: Request) -> tuple[ThreatFilter, dict[str, Any]]:
    """Read `{"filter": {...}, "data": {...}}`, the shape of every threat action."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        msg = "The body is not valid JSON."
        raise validation_error(msg) from None
    if not isinstance(body, dict):
        msg = "The body must be a JSON object."
        raise validation_error(msg)
    selection, data = body.get("filter"), body.get("data")
    if not isinstance(selection, dict):
        msg = "filter: an object is required."
        raise validation_error(msg)
    if not isinstance(data, dict):
        msg = "data: an object is required."
        raise validation_error(msg)
    threat_filter = parse_threat_filter(selection)
    if threat_filter.is_empty:
        # Whether the real API applies an empty filter to every threat in scope is
        # not documented; refusing it keeps a client bug from touching them all.
        msg = "filter: at least one condition such as ids is needed."
        raise validation_error(msg)
    return threat_filter, data


def _page_response(page: Page) -> Response:
    return JSONResponse(
        {
            "data": page.items,
            "pagination": {"nextCursor": page.next_cursor, "totalItems": page.total},
        }
    )


def _allow(request: Request, method: str) -> None:
    if request.method != method:
        raise method_not_allowed(request.method, request.url.path)
