"""What the command line does with the receiver: serve it, list and replay deliveries.

The dispatcher comes from the caller, so this module, like the rest of the library,
starts no Prefect run itself.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket

import uvicorn
from starlette.applications import Starlette

from s1_autotask._net import PortUnavailableError, listening_socket
from s1_autotask.config import ReceiverSettings
from s1_autotask.receiver.app import WEBHOOK_PATH, create_app, require_secret
from s1_autotask.receiver.delivery import Delivery, DeliveryStatus
from s1_autotask.receiver.errors import ReceiverConfigError, ReplayError, StoreError
from s1_autotask.receiver.handoff import Dispatcher, hand_on
from s1_autotask.receiver.store import DATABASE_NAME, DeliveryStore
from s1_autotask.redaction import install_redaction
from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.intake import RequestKind, read_request_json

__all__ = ["list_deliveries", "open_store", "replay", "serve", "server_config"]

logger = logging.getLogger(__name__)

# SentinelOne opens a connection per push; reuse saves it nothing worth holding a
# descriptor for.
_KEEP_ALIVE_SECONDS = 5


def open_store(settings: ReceiverSettings, *, create: bool = True) -> DeliveryStore:
    """The store in the configured data folder.

    With ``create`` off (the commands that only read or replay), a missing store is
    an error naming where it was looked for: the default folder is relative to the
    working directory, and an empty new store would only say "no deliveries".
    """
    folder = settings.data_dir.resolve()
    if not create and not (folder / DATABASE_NAME).is_file():
        msg = (
            f"There is no delivery store in {folder}: the receiver has not run with "
            "this S1AT_RECEIVER__DATA_DIR, or it is relative to another directory."
        )
        raise StoreError(msg)
    return DeliveryStore(folder)


def serve(settings: ReceiverSettings, dispatcher: Dispatcher) -> None:
    """Serve the receiver with uvicorn until interrupted.

    Raises `ReceiverConfigError` without a usable secret or when the address cannot
    be listened on, and `StoreError` when the data folder cannot be used.
    """
    secret = require_secret(settings)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    install_redaction([secret.decode()])
    store = open_store(settings)
    app = create_app(settings, store, dispatcher)
    sock = _listening_socket(settings.host, settings.port)

    config = server_config(app, settings)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    logger.info(
        "Receiving SentinelOne deliveries on http://%s:%d%s, kept in %s",
        host,
        settings.port,
        WEBHOOK_PATH,
        store.path,
    )
    uvicorn.Server(config).run(sockets=[sock])


def server_config(app: Starlette, settings: ReceiverSettings) -> uvicorn.Config:
    """How uvicorn serves the receiver: its logging, limits and idle times."""
    return uvicorn.Config(
        app,
        # Logging is the caller's, with its redaction filter; the access log would
        # only repeat the one line the receiver writes per delivery.
        log_config=None,
        access_log=False,
        server_header=False,
        # In-flight handoffs finish (each is bounded) before the process exits.
        timeout_graceful_shutdown=math.ceil(settings.handoff_timeout_seconds) + 5,
        # Past this many open connections uvicorn answers each new request with
        # 503 at once, so senders that never finish cannot pile up work. It cannot
        # stop them holding file descriptors: uvicorn accepts every connection and
        # has no timeout for reading request headers, so a connection that never
        # completes its headers stays open until its sender closes it. Only a
        # reverse proxy in front (which also terminates TLS) bounds that; the app
        # bounds the time of the body itself.
        limit_concurrency=settings.max_connections,
        # Set here rather than left to uvicorn's default: an idle connection
        # between two requests counts towards the limit above.
        timeout_keep_alive=_KEEP_ALIVE_SECONDS,
    )


def list_deliveries(
    store: DeliveryStore, *, status: DeliveryStatus | None = None, limit: int = 50
) -> list[Delivery]:
    """The newest deliveries first, optionally only those in one status."""
    return store.recent(status=status, limit=limit)


async def replay(
    store: DeliveryStore,
    delivery_id: str,
    dispatcher: Dispatcher,
    *,
    settings: ReceiverSettings | None = None,
) -> Delivery:
    """Hand a delivery on again now, whatever became of it; the updated record.

    A done delivery starts new flow runs (their keys carry the replay count). A
    rejected one is read again, so a body that a newer version understands can be
    handed on. If the handoff fails, the record says why and when it is retried.

    Raises `DeliveryNotFoundError` for an unknown id, and `ReplayError` for a
    rejected body that is still unusable or a delivery being handed on right now.
    """
    settings = settings or ReceiverSettings()
    delivery = await asyncio.to_thread(store.get, delivery_id)

    kind: RequestKind | None = None
    threat_ids: list[str] | None = None
    if delivery.kind is None:
        try:
            request = read_request_json(delivery.body)
        except ThreatPayloadError as exc:
            msg = f"Delivery {delivery_id} was rejected and is still unusable: {exc}"
            raise ReplayError(msg) from exc
        kind, threat_ids = request.kind, request.ids()

    # One claim, taken atomically with the replay count: a replay racing another,
    # or the receiver's own handoff, is refused instead of starting runs that
    # the record would never show.
    claim = await asyncio.to_thread(
        store.claim_for_replay, delivery_id, kind=kind, threat_ids=threat_ids
    )
    return await hand_on(store, claim, dispatcher, settings)


def _listening_socket(host: str, port: int) -> socket.socket:
    try:
        return listening_socket(host, port, "webhook receiver")
    except PortUnavailableError as exc:
        raise ReceiverConfigError(str(exc)) from exc
