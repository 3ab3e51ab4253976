"""The Starlette application that speaks the Autotask REST contract for the emulator.

One catch-all route normalises the path, because Autotask routes ignore case
(`/ATServicesRest/V1.0/Tickets` and `/atservicesrest/v1.0/tickets` are the same).
Errors travel as `EmulatedApiError` and leave as Autotask's bodies: `{"errors": [...]}`
from the API, `{"Message": ...}` from its web framework, nothing on a 401. Faults
from the emulator's plan are applied here, to authenticated calls only.
"""

import asyncio
import json
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from s1_autotask.emulators._autotask_entities import (
    TICKET_ADDITIONAL_CONFIGURATION_ITEMS,
    TICKET_NOTES,
    TICKETS,
    EntitySpec,
    entity_by_path,
)
from s1_autotask.emulators._autotask_errors import EmulatedApiError, server_error
from s1_autotask.emulators._autotask_faults import (
    REFUSALS,
    ConnectionCut,
    FaultKind,
    remember_transport,
)
from s1_autotask.emulators._autotask_query import (
    PageCursor,
    paginate,
    parse_query,
    project,
)

if TYPE_CHECKING:
    from s1_autotask.emulators.autotask import AutotaskEmulator

__all__ = ["create_app"]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_WITH_UDFS_AND_WEBHOOKS = frozenset(
    {"Companies", "Contacts", "ConfigurationItems", "Tickets"}
)


def create_app(emulator: "AutotaskEmulator") -> Starlette:
    """Build the ASGI application serving `emulator`."""
    api = _AutotaskApi(emulator)
    return _EmulatorApp(routes=[Route("/{path:path}", api.handle, methods=_METHODS)])


class _EmulatorApp(Starlette):
    """Starlette, plus a hold on the connection so a fault can cut it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only here, outside Starlette's middleware, is `send` still the server's.
        remember_transport(scope, send)
        await super().__call__(scope, receive, send)


class _AutotaskApi:
    """Request dispatch for the emulated `/atservicesrest/` tree."""

    def __init__(self, emulator: "AutotaskEmulator") -> None:
        self._emulator = emulator

    async def handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except EmulatedApiError as exc:
            body = exc.body
            if body is None:
                return Response(status_code=exc.status_code, headers=exc.headers)
            return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def _dispatch(self, request: Request) -> Response:
        segments = [s.lower() for s in request.url.path.split("/") if s]
        if segments[:1] != ["atservicesrest"]:
            raise _not_found(request)
        if segments[1:] == ["versioninformation"]:
            _allow(request, "GET")
            return JSONResponse({"apiVersions": ["1.0"]})
        if segments[1:2] != ["v1.0"] or len(segments) < 3:
            raise _not_found(request)
        path = segments[2:]

        if path == ["zoneinformation"]:
            # Zone discovery needs no credentials and is exempt from thread limits.
            return self._zone(request)
        endpoint = _endpoint(path)
        if endpoint is None:
            raise _not_found(request)

        self._emulator.authenticate(request.headers)
        delay = self._emulator.count_request() + self._emulator.latency_seconds
        fault = self._emulator.draw_fault(
            request.method, "/".join(path), write=_is_write(request.method, path)
        )
        if fault is not None and fault.kind in REFUSALS:
            raise self._emulator.fault_error(fault, endpoint)
        # Take the whole request in before working on it, as a server does: a slow
        # call is then still carried out after its client stopped waiting, and a cut
        # ends the stream cleanly instead of resetting it over unread bytes.
        await request.body()
        if fault is not None and fault.kind is FaultKind.DROPPED:
            return ConnectionCut()
        if fault is not None:
            delay += fault.delay

        with self._emulator.thread_slot(endpoint):
            if delay > 0:
                await asyncio.sleep(delay)
            if fault is not None and fault.kind is FaultKind.LOST_ANSWER:
                # The write is applied and saved; its answer, whatever it says,
                # never reaches the client.
                with suppress(EmulatedApiError):
                    await self._route(request, path)
                return ConnectionCut()
            return await self._route(request, path)

    def _zone(self, request: Request) -> Response:
        _allow(request, "GET")
        user = request.query_params.get("user", "")
        if not self._emulator.knows_user(user):
            msg = "Zone information could not be determined"
            raise server_error(msg)
        base = str(request.base_url)
        return JSONResponse(
            {
                "zoneName": "Emulator",
                "url": f"{base}atservicesrest/",
                "webUrl": base,
                "ci": 0,
            }
        )

    async def _route(self, request: Request, path: list[str]) -> Response:
        if path == ["thresholdinformation"]:
            _allow(request, "GET")
            return JSONResponse(self._emulator.threshold_information())

        entity = entity_by_path(path[0])
        if entity is None:
            raise _not_found(request)
        rest = path[1:]
        if not rest:
            return await self._write(request, entity)
        if rest[0] == "query":
            return await self._query(request, entity, rest[1:])
        if rest[0] == "entityinformation":
            return self._entity_information(request, entity, rest[1:])

        item_id = _parse_id(rest[0], request)
        if len(rest) == 1:
            _allow(request, "GET")
            return JSONResponse({"item": self._emulator.get_item(entity, item_id)})
        if entity is TICKETS:
            return await self._ticket_child(request, item_id, rest[1:])
        raise _not_found(request)

    async def _query(
        self, request: Request, entity: EntitySpec, tail: list[str]
    ) -> Response:
        if tail not in ([], ["count"], ["next"]):
            raise _not_found(request)
        search = None
        if request.method == "GET":
            search = request.query_params.get("search")
            if search is None and tail == ["next"]:
                # The page cursor of a POST query can only be followed with POST.
                raise _method_not_allowed(request.method)
            if search is None:
                msg = "A GET query needs its filter in the search parameter."
                raise server_error(msg)
            body = _parse_json(search)
        elif request.method == "POST":
            body = await _read_json(request)
        else:
            raise _method_not_allowed(request.method)

        query = parse_query(
            body, entity, strict_operators=self._emulator.strict_operators
        )
        matches = query.select(self._emulator.records(entity.name))
        if tail == ["count"]:
            return JSONResponse({"queryCount": len(matches)})

        cursor = PageCursor(query.max_records)
        if tail == ["next"]:
            paging = request.query_params.get("paging")
            if paging is None:
                msg = "The paging parameter is required."
                raise server_error(msg)
            cursor = PageCursor.decode(paging)
        page = paginate(matches, cursor)
        items = [project(record, entity, query.include_fields) for record in page.items]
        details = {
            "count": len(items),
            "requestCount": cursor.page_size,
            "prevPageUrl": _page_url(request, entity, page.prev_cursor, search),
            "nextPageUrl": _page_url(request, entity, page.next_cursor, search),
        }
        return JSONResponse({"items": items, "pageDetails": details})

    def _entity_information(
        self, request: Request, entity: EntitySpec, tail: list[str]
    ) -> Response:
        _allow(request, "GET")
        if tail == []:
            return JSONResponse({"info": _entity_info(entity)})
        if tail == ["fields"]:
            if entity is TICKETS:
                return JSONResponse({"fields": self._emulator.ticket_fields.fields})
            if entity is TICKET_NOTES:
                return JSONResponse({"fields": self._emulator.note_fields.fields})
            return JSONResponse({"fields": entity.field_information()})
        if tail == ["userdefinedfields"]:
            return JSONResponse({"fields": []})
        raise _not_found(request)

    async def _write(self, request: Request, entity: EntitySpec) -> Response:
        if entity is TICKET_NOTES:
            # Notes are written through Tickets/{id}/Notes; the root has no write route.
            raise _not_found(request)
        if entity is not TICKETS or request.method not in ("POST", "PATCH", "PUT"):
            # TODO: writes to companies, contacts and configuration items are not
            # emulated; the integration only reads them, so they answer 405 here.
            raise _method_not_allowed(request.method)

        body = await _read_json(request)
        if request.method == "POST":
            item_id = self._emulator.create_ticket(body)
        else:
            replace = request.method == "PUT"
            item_id = self._emulator.update_ticket(body, replace=replace)
        return JSONResponse({"itemId": item_id})

    async def _ticket_child(
        self, request: Request, ticket_id: int, tail: list[str]
    ) -> Response:
        child = tail[0]
        if child == "notes" and len(tail) == 2:
            _allow(request, "GET")
            note = self._emulator.get_item(TICKET_NOTES, _parse_id(tail[1], request))
            if note is not None and note["ticketID"] != ticket_id:
                note = None
            return JSONResponse({"item": note})
        if len(tail) != 1 or child not in ("notes", "additionalconfigurationitems"):
            raise _not_found(request)

        entity = (
            TICKET_NOTES if child == "notes" else TICKET_ADDITIONAL_CONFIGURATION_ITEMS
        )
        if request.method == "GET":
            return JSONResponse(self._children(entity, ticket_id))
        # TODO: note updates (PATCH or PUT Tickets/{id}/Notes, the note id in the
        # body) answer 405 here although Autotask accepts them; the integration
        # only ever adds notes, so no caller needs them yet.
        _allow(request, "POST")
        body = await _read_json(request)
        if entity is TICKET_NOTES:
            item_id = self._emulator.create_ticket_note(ticket_id, body)
        else:
            item_id = self._emulator.add_ticket_configuration_item(ticket_id, body)
        return JSONResponse({"itemId": item_id})

    def _children(self, entity: EntitySpec, ticket_id: int) -> dict[str, Any]:
        rows = [
            r for r in self._emulator.records(entity.name) if r["ticketID"] == ticket_id
        ]
        items = [project(r, entity, None) for r in sorted(rows, key=lambda r: r["id"])]
        details = {
            "count": len(items),
            "requestCount": 500,
            "prevPageUrl": None,
            "nextPageUrl": None,
        }
        return {"items": items, "pageDetails": details}


def _is_write(method: str, path: list[str]) -> bool:
    """Whether a call would save something: an entity root or a ticket's child."""
    if method not in _WRITE_METHODS or entity_by_path(path[0]) is None:
        return False
    return len(path) == 1 or (
        len(path) == 3 and path[0] == "tickets" and path[1].isdigit()
    )


def _endpoint(path: list[str]) -> str | None:
    """The thread-limit bucket of a path: its entity, or None for no such route."""
    if path == ["thresholdinformation"]:
        return "ThresholdInformation"
    entity = entity_by_path(path[0])
    if entity is None:
        return None
    children = {
        "notes": TICKET_NOTES.name,
        "additionalconfigurationitems": TICKET_ADDITIONAL_CONFIGURATION_ITEMS.name,
    }
    if entity is TICKETS and len(path) >= 3 and path[2] in children:
        return children[path[2]]
    return entity.name


def _entity_info(entity: EntitySpec) -> dict[str, Any]:
    def access(allowed: bool) -> str:
        return "All" if allowed else "None"

    return {
        "name": entity.name,
        "canCreate": entity.can_create,
        "canDelete": False,
        "canQuery": True,
        "canUpdate": entity.can_update,
        "userAccessForCreate": access(entity.can_create),
        "userAccessForDelete": access(False),
        "userAccessForQuery": access(True),
        "userAccessForUpdate": access(entity.can_update),
        "hasUserDefinedFields": entity.name in _WITH_UDFS_AND_WEBHOOKS,
        "supportsWebhookCallouts": entity.name in _WITH_UDFS_AND_WEBHOOKS,
    }


def _page_url(
    request: Request,
    entity: EntitySpec,
    cursor: PageCursor | None,
    search: str | None,
) -> str | None:
    """An absolute `query/next` URL; GET queries carry their search along."""
    if cursor is None:
        return None
    url = (
        f"{request.base_url}atservicesrest/v1.0/{entity.name}/query/next"
        f"?paging={quote(cursor.encode(), safe='')}"
    )
    if search is not None:
        url += f"&search={quote(search, safe='')}"
    return url


async def _read_json(request: Request) -> object:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return _parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        msg = "The request body is not valid UTF-8."
        raise server_error(msg) from exc


def _parse_json(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        shown = text[exc.pos : exc.pos + 1]
        msg = (
            f"Unexpected character encountered while parsing value: {shown}. Path '', "
            f"line {exc.lineno}, position {exc.colno}."
        )
        raise server_error(msg) from exc


def _parse_id(segment: str, request: Request) -> int:
    if not segment.lstrip("-").isdigit():
        raise _not_found(request)
    return int(segment)


def _allow(request: Request, method: str) -> None:
    allowed = {method, "HEAD"} if method == "GET" else {method}
    if request.method not in allowed:
        raise _method_not_allowed(request.method)


def _method_not_allowed(method: str) -> EmulatedApiError:
    return EmulatedApiError(
        405, message=f"The requested resource does not support http method '{method}'."
    )


def _not_found(request: Request) -> EmulatedApiError:
    text = f"No HTTP resource was found that matches the request URI '{request.url}'."
    return EmulatedApiError(404, message=text)
