"""The receiver's ASGI application: authenticate, keep, answer, then hand on.

``POST /webhooks/sentinelone`` (with or without a trailing slash: nothing here ever
redirects) checks, in this order, and answers the first failure with
``{"error": "<sentence>"}``:

1. the shared secret, sent once in the configured header (401), before the body is
   read;
2. the body's size (413): by Content-Length at once, otherwise while reading; and
   its time: a body not complete within the body timeout gets 408;
3. the Content-Type, which must be JSON (415);
4. the body, which must be JSON text in UTF-8 (400);
5. the JSON, which must be threats, a doorbell or a Unified Alert (422, with
   ``location``).

A refusal before the body is read whole closes the connection. Answers and kept
reasons never carry the webhook secret, and request-derived values are escaped in
the log.

An authenticated body refused by checks 3 to 5 is kept as ``rejected``: the sender
loses nothing (a Hyperautomation flow counts any answer as success, so nobody there
would notice the 4xx), and an operator can read it and replay it. A usable body is
committed as pending before the 202; the handoff runs after the answer, and a loop
started with the app retries whatever could not be handed on, also after a restart.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from s1_autotask.config import ReceiverSettings
from s1_autotask.receiver._checks import RefusedError, declared_length, read_body
from s1_autotask.receiver._text import loggable, mask_secret
from s1_autotask.receiver.delivery import Delivery
from s1_autotask.receiver.errors import ReceiverConfigError, StoreError
from s1_autotask.receiver.handoff import Dispatcher, describe_ids, hand_on
from s1_autotask.receiver.store import DeliveryStore
from s1_autotask.sentinelone.intake import ThreatRequest

__all__ = ["HEALTH_PATH", "MIN_SECRET_LENGTH", "WEBHOOK_PATH", "create_app"]

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/sentinelone"
HEALTH_PATH = "/healthz"
# Shorter secrets can be guessed, and the log filter leaves values under six
# characters alone.
MIN_SECRET_LENGTH = 16
# A delivery still waiting after this long means Prefect is not taking runs.
STALE_SECONDS = 300
# Health stays degraded this long after the store last refused a write: deliveries
# were answered 503 meanwhile, and a full disk rarely frees itself.
STORE_FAILURE_SECONDS = 300
# Deliveries the retry loop hands on at once; the rest wait for the next round.
_CLAIM_BATCH = 10


def create_app(
    settings: ReceiverSettings, store: DeliveryStore, dispatcher: Dispatcher
) -> Starlette:
    """Build the receiver; it refuses to exist without a shared secret."""
    receiver = _Receiver(settings, store, dispatcher, require_secret(settings))
    app = Starlette(
        routes=[
            Route(WEBHOOK_PATH, receiver.receive, methods=["POST"]),
            Route(f"{WEBHOOK_PATH}/", receiver.receive, methods=["POST"]),
            Route(HEALTH_PATH, receiver.health, methods=["GET"]),
            Route(f"{HEALTH_PATH}/", receiver.health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=receiver.lifespan,
    )
    # Starlette would answer the other spelling of a path with a redirect built
    # from the Host header, before any check and without keeping the body: a
    # sender that follows it posts elsewhere, one that does not loses the threat.
    app.router.redirect_slashes = False
    return app


def _problems(
    failed: int,
    oldest_pending_seconds: float | None,
    store_failed_ago: float | None,
) -> list[str]:
    """What an operator must look at, as sentences; none when all is well."""
    problems = []
    if store_failed_ago is not None and store_failed_ago <= STORE_FAILURE_SECONDS:
        problems.append(
            f"The delivery store could not be written {store_failed_ago:.0f} s "
            "ago, so deliveries were refused with 503: is the disk of the data "
            "folder full or read-only? (see the receiver's log)"
        )
    if oldest_pending_seconds is not None and oldest_pending_seconds > STALE_SECONDS:
        problems.append(
            f"A delivery has waited {oldest_pending_seconds:.0f} s to be handed on: "
            "Prefect is not taking runs (see deliveries list --status pending)."
        )
    if failed:
        problems.append(
            f"{failed} deliveries were given up on after every retry; replay them "
            "with deliveries replay ID."
        )
    return problems


def require_secret(settings: ReceiverSettings) -> bytes:
    """The shared secret as bytes, or `ReceiverConfigError` saying how to set one."""
    secret = settings.secret.get_secret_value()
    if not secret:
        msg = (
            "The webhook receiver has no shared secret, so it would accept anyone's "
            "deliveries: set S1AT_RECEIVER__SECRET (or secret under [receiver] in "
            f"the config file) to a long random value, and have the sender put it in "
            f"the {settings.secret_header} header."
        )
        raise ReceiverConfigError(msg)
    if len(secret) < MIN_SECRET_LENGTH:
        msg = (
            f"The webhook receiver's shared secret is {len(secret)} characters long; "
            f"use at least {MIN_SECRET_LENGTH}, such as the output of "
            "`openssl rand -hex 32`."
        )
        raise ReceiverConfigError(msg)
    return secret.encode()


class _Receiver:
    """The endpoints and the retry loop, over one store and one dispatcher."""

    def __init__(
        self,
        settings: ReceiverSettings,
        store: DeliveryStore,
        dispatcher: Dispatcher,
        secret: bytes,
    ) -> None:
        self._settings = settings
        self._store = store
        self._dispatcher = dispatcher
        self._secret = secret
        self._header = settings.secret_header.lower().encode("latin-1")
        # When the store last refused a write, by the monotonic clock.
        self._store_failed_at: float | None = None

    async def receive(self, request: Request) -> Response:
        try:
            self._authenticate(request)
            body = await self._read_body(request)
        except RefusedError as refusal:
            logger.warning(
                "Refused a delivery from %s: %s", _client(request), refusal.message
            )
            # The rest of the request may still be on its way, or never come:
            # the connection cannot carry another one.
            return JSONResponse(
                self._content(refusal),
                status_code=refusal.status_code,
                headers={"Connection": "close"},
            )
        except ClientDisconnect:
            logger.info("A sender went away before its body was read")
            return Response(status_code=400)

        # The Content-Type is kept and may be quoted back: a secret templated
        # into it must not be.
        content_type = self._mask(request.headers.get("content-type", ""))
        try:
            threat_request = read_body(content_type, body)
        except RefusedError as refusal:
            return await self._reject(body, content_type, refusal)
        return await self._accept(body, content_type, threat_request)

    async def health(self, request: Request) -> Response:
        try:
            summary = await asyncio.to_thread(self._store.summary)
        except StoreError as exc:
            logger.warning("The health check cannot read the delivery store: %s", exc)
            content = {
                "status": "unavailable",
                "error": "The delivery store cannot be read.",
            }
            return JSONResponse(content, status_code=503)

        oldest = summary.oldest_waiting_at
        age = None
        if oldest is not None:
            age = round((datetime.now(UTC) - oldest).total_seconds(), 3)
        store_failed = None
        if self._store_failed_at is not None:
            store_failed = time.monotonic() - self._store_failed_at
        problems = _problems(summary.counts["failed"], age, store_failed)
        return JSONResponse(
            {
                "status": "degraded" if problems else "ok",
                "problems": problems,
                "pending": summary.waiting,
                "failed": summary.counts["failed"],
                "rejected": summary.counts["rejected"],
                "oldest_pending_seconds": age,
            },
            # A monitor that only looks at the status code must see that Prefect
            # has stopped taking runs or the disk is full, not only that this
            # process is up.
            status_code=503 if problems else 200,
        )

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.create_task(self._retry_loop(), name="receiver-retry-loop")
        try:
            yield
        finally:
            loop.cancel()
            with suppress(asyncio.CancelledError):
                await loop

    def _authenticate(self, request: Request) -> None:
        name = self._settings.secret_header
        sent = [v for k, v in request.headers.raw if k.lower() == self._header]
        if not sent:
            msg = f"Missing {name} header."
            raise RefusedError(401, msg)
        # Proxies and clients disagree on which of two copies counts; taking one
        # would let a wrong copy ride along with a right one.
        if len(sent) > 1:
            msg = f"The {name} header was sent {len(sent)} times; send it once."
            raise RefusedError(401, msg)
        if not hmac.compare_digest(sent[0], self._secret):
            msg = f"Wrong secret in {name}."
            raise RefusedError(401, msg)

    async def _read_body(self, request: Request) -> bytes:
        limit = self._settings.max_body_bytes
        declared = declared_length(request.headers.get("content-length"))
        if declared is not None and declared > limit:
            msg = f"The request body is {declared} bytes; the limit is {limit} bytes."
            raise RefusedError(413, msg)

        # A sender that stops halfway would hold its connection and its memory
        # for as long as it likes; the whole body gets one deadline.
        timeout = self._settings.body_timeout_seconds
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        msg = f"The request body is over the limit of {limit} bytes."
                        raise RefusedError(413, msg)
                    chunks.append(chunk)
        except TimeoutError as exc:
            msg = (
                f"The request body was not received within {timeout:g} s; "
                "send it again."
            )
            raise RefusedError(408, msg) from exc
        return b"".join(chunks)

    async def _accept(
        self, body: bytes, content_type: str, threat_request: ThreatRequest
    ) -> Response:
        threat_ids = threat_request.ids()
        try:
            delivery = await asyncio.to_thread(
                self._store.add,
                body,
                content_type=content_type,
                kind=threat_request.kind,
                threat_ids=threat_ids,
            )
        except StoreError:
            self._store_failed()
            logger.exception("A delivery could not be stored")
            unstored = {"error": "The delivery could not be stored; send it again."}
            return JSONResponse(
                unstored, status_code=503, headers={"Retry-After": "30"}
            )

        logger.info(
            "Accepted delivery %s: %s, %d bytes, threats %s",
            delivery.id,
            delivery.kind,
            len(body),
            describe_ids(threat_ids),
        )
        accepted = {
            "delivery_id": delivery.id,
            "status": "accepted",
            "kind": delivery.kind,
            "threat_ids": threat_ids,
        }
        return JSONResponse(
            accepted,
            status_code=202,
            background=BackgroundTask(self._hand_on_now, delivery.id),
        )

    async def _reject(
        self, body: bytes, content_type: str, refusal: RefusedError
    ) -> Response:
        content = self._content(refusal)
        try:
            delivery = await asyncio.to_thread(
                self._store.add_rejected,
                body,
                content_type=content_type,
                reason=content["error"],
            )
        except StoreError:
            # The answer stands either way: this body will never be usable.
            self._store_failed()
            logger.exception("A rejected delivery could not be kept")
        else:
            content["delivery_id"] = delivery.id
            logger.info(
                "Rejected delivery %s with %d: %d bytes of %s, problem at %s",
                delivery.id,
                refusal.status_code,
                len(body),
                loggable(content_type) or "no content type",
                loggable(content.get("location", "the request")),
            )
        return JSONResponse(content, status_code=refusal.status_code)

    def _content(self, refusal: RefusedError) -> dict[str, str]:
        """The answer to a refusal, with the secret masked wherever it was echoed."""
        return {key: self._mask(value) for key, value in refusal.content().items()}

    def _mask(self, text: str) -> str:
        return mask_secret(text, self._settings.secret.get_secret_value())

    def _store_failed(self) -> None:
        self._store_failed_at = time.monotonic()

    async def _hand_on_now(self, delivery_id: str) -> None:
        try:
            claim = await asyncio.to_thread(self._store.claim, delivery_id)
            # None: the retry loop claimed it first, and hands it on itself.
            if claim is not None:
                await self._hand_on(claim)
        except StoreError as exc:
            self._store_failed()
            logger.warning(
                "Delivery %s is left to the retry loop: %s", delivery_id, exc
            )

    async def _hand_on(self, claim: Delivery) -> None:
        await hand_on(self._store, claim, self._dispatcher, self._settings)

    async def _retry_loop(self) -> None:
        while True:
            claimed: list[Delivery] = []
            try:
                claimed = await asyncio.to_thread(
                    self._store.claim_due, limit=_CLAIM_BATCH
                )
            except StoreError as exc:
                self._store_failed()
                logger.warning("The retry loop cannot use the delivery store: %s", exc)
            outcomes = await asyncio.gather(
                *(self._hand_on(claim) for claim in claimed), return_exceptions=True
            )
            for claim, outcome in zip(claimed, outcomes, strict=True):
                if isinstance(outcome, StoreError):
                    self._store_failed()
                _log_unfinished(claim, outcome)
            if len(claimed) < _CLAIM_BATCH:
                await asyncio.sleep(self._settings.retry_poll_seconds)


def _log_unfinished(claim: Delivery, outcome: BaseException | None) -> None:
    """Say why a delivery the retry loop claimed was left unfinished, if it was."""
    if outcome is None:
        return
    if not isinstance(outcome, Exception):
        raise outcome
    if isinstance(outcome, StoreError):
        logger.warning("Delivery %s is left for a later round: %s", claim.id, outcome)
        return
    # A bug must not end retries for the life of the process: the traceback is
    # kept, the claim runs out after its lease, and the loop goes on.
    logger.error("Delivery %s could not be handed on", claim.id, exc_info=outcome)


def _client(request: Request) -> str:
    # uvicorn takes the address from X-Forwarded-For when the peer is a trusted
    # proxy (127.0.0.1 by default), so it is whatever text that header held.
    return loggable(request.client.host) if request.client else "an unknown address"


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 (and any other HTTP error) as JSON, like every other answer."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None
    if status == 404:
        message = f"There is nothing here; deliveries go to POST {WEBHOOK_PATH}."
    elif status == 405:
        allowed = (headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed here; use {allowed}."
    else:
        message = str(exc.detail) if isinstance(exc, HTTPException) else "Error."
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The exception goes on to the server, which logs its traceback; the sender
    # learns only that its request failed.
    return JSONResponse(
        {"error": "The receiver failed on this request; send it again."},
        status_code=500,
    )
