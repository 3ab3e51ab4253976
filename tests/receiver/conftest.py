"""Fixtures for the receiver: settings, a store in a temporary folder, fake dispatchers
and the app, reached in process or over a real loopback server."""

import asyncio
import json
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from s1_autotask.config import ReceiverSettings
from s1_autotask.receiver import DeliveryStore, Handoff, HandoffError, create_app
from s1_autotask.receiver.service import server_config

FIXTURES = Path(__file__).parent.parent / "fixtures"
MITRE = FIXTURES / "sentinelone" / "v21-windows-suspicious-mitre-mitigated.json"
MACOS = FIXTURES / "sentinelone" / "v21-macos-malicious-mitigated-no-tactics.json"
ALERT = FIXTURES / "unified-alert" / "edr-alert-graphql.json"
MITRE_ID = "1373834705420286869"
MACOS_ID = "2120407777501474123"
SECRET = "s3cr3t-for-the-receiver-tests-0a9f"
URL = "/webhooks/sentinelone"


def threat(path: Path = MITRE) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return payload


def headers(**extra: str) -> dict[str, str]:
    """The headers a correctly configured sender posts with."""
    return {"X-Webhook-Secret": SECRET, "Content-Type": "application/json", **extra}


class RecordingDispatcher:
    """Starts nothing; records each handoff and, like Prefect, answers a known
    idempotency key with the run it already started."""

    def __init__(self) -> None:
        self.calls: list[Handoff] = []
        self.runs: dict[str, str] = {}

    async def start(self, handoff: Handoff) -> str:
        self.calls.append(handoff)
        key = handoff.idempotency_key
        return self.runs.setdefault(key, f"run-{len(self.runs) + 1}")


class FailingDispatcher(RecordingDispatcher):
    """Fails its first ``failures`` calls with ``error``, then records like its base."""

    def __init__(self, failures: int = 1_000_000, error: Exception | None = None):
        super().__init__()
        self.failures = failures
        self.error = error or HandoffError("Prefect API at http://prefect:4200 is down")
        self.failed = 0

    async def start(self, handoff: Handoff) -> str:
        if self.failed < self.failures:
            self.failed += 1
            raise self.error
        return await super().start(handoff)


class BlockingDispatcher(RecordingDispatcher):
    """Holds every handoff until released, to look at what happens meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def start(self, handoff: Handoff) -> str:
        self.entered.set()
        await self.release.wait()
        return await super().start(handoff)


class FullDiskStore(DeliveryStore):
    """A store on a disk with no room left: reads work, writes that need space fail
    with SQLite's own "database or disk is full"."""

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with super()._connection() as conn:
            # SQLite raises the limit to the pages already in use.
            conn.execute("PRAGMA max_page_count = 1")
            yield conn


@pytest.fixture
def settings(tmp_path: Path) -> ReceiverSettings:
    # Retries fast enough for a test to watch several of them.
    return ReceiverSettings(
        secret=SecretStr(SECRET),
        data_dir=tmp_path / "data",
        retry_base_seconds=0.1,
        retry_max_seconds=0.2,
        retry_poll_seconds=0.05,
        max_body_bytes=64 * 1024,
    )


@pytest.fixture
def store(settings: ReceiverSettings) -> DeliveryStore:
    return DeliveryStore(settings.data_dir)


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@asynccontextmanager
async def in_process(
    settings: ReceiverSettings, store: DeliveryStore, dispatcher: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGITransport, without its lifespan (so without the retry loop).

    The transport returns once the app is finished, background handoff included.
    """
    app = create_app(settings, store, dispatcher)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://receiver.test"
    ) as client:
        yield client


@asynccontextmanager
async def served(
    settings: ReceiverSettings, store: DeliveryStore, dispatcher: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a real loopback uvicorn server in this event loop, lifespan on,
    configured as `serve` configures it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(create_app(settings, store, dispatcher), settings)
    # A test has nothing in flight worth waiting for when it ends.
    config.timeout_graceful_shutdown = 1
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def client(
    settings: ReceiverSettings, store: DeliveryStore, dispatcher: RecordingDispatcher
) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(settings, store, dispatcher) as client:
        yield client
