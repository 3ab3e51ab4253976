"""A local Autotask PSA REST emulator: the tenant state and the ways to serve it.

`AutotaskEmulator` holds one emulated tenant: the API credentials it accepts, the
seeded companies, resources and configuration items, the tickets and notes created
at run time, and the limits real tenants enforce (3 concurrent requests per
integration code and entity, an hourly request threshold). `create_app` exposes it
as the Autotask REST contract; `serve_in_thread` and `run` put it on a port.

Credentials default to username "api-user@example.com", secret "emulator-secret"
and integration code "EMULATOR-CODE"; they guard nothing real.
"""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from s1_autotask.emulators._autotask_app import create_app
from s1_autotask.emulators._autotask_seed import EmulatorSeedError, load_seed
from s1_autotask.emulators._autotask_state import (
    DEFAULT_INTEGRATION_CODE,
    DEFAULT_SECRET,
    DEFAULT_USERNAME,
    AutotaskEmulator,
)

__all__ = [
    "DEFAULT_INTEGRATION_CODE",
    "DEFAULT_SECRET",
    "DEFAULT_USERNAME",
    "AutotaskEmulator",
    "EmulatorSeedError",
    "EmulatorStartError",
    "RunningEmulator",
    "create_app",
    "load_seed",
    "run",
    "serve_in_thread",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningEmulator:
    """An emulator being served: its base URL and its state."""

    url: str
    emulator: AutotaskEmulator

    @property
    def state(self) -> AutotaskEmulator:
        """The served tenant state (same object as `emulator`)."""
        return self.emulator


class EmulatorStartError(RuntimeError):
    """The emulator's server thread did not start listening."""


@contextmanager
def serve_in_thread(
    emulator: AutotaskEmulator | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
) -> Iterator[RunningEmulator]:
    """Serve the emulator from a background thread for the duration of the block.

    Port 0 picks a free port. Uvicorn's access log stays off: query strings carry
    search filters, and the CLI's users do not need them on their terminal.
    """
    if emulator is None:
        emulator = AutotaskEmulator.from_seed()
    sock = _listening_socket(host, port)
    config = uvicorn.Config(
        create_app(emulator),
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name="autotask-emulator",
        daemon=True,
    )
    thread.start()
    try:
        _wait_until_started(server, thread, startup_timeout)
        bound_host, bound_port = sock.getsockname()[:2]
        shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        url = f"http://{shown_host}:{bound_port}"
        logger.info("Autotask emulator listening on %s", url)
        yield RunningEmulator(url=url, emulator=emulator)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()


def run(emulator: AutotaskEmulator, host: str = "127.0.0.1", port: int = 8089) -> None:
    """Serve the emulator in the foreground until interrupted."""
    uvicorn.run(create_app(emulator), host=host, port=port, access_log=False)


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind in the caller's thread, so a busy port fails here and not in uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so,
    # and without it keep-alive responses stall on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        msg = f"The Autotask emulator cannot listen on {host}:{port}: {exc.strerror}."
        raise EmulatorStartError(msg) from exc
    return sock


def _wait_until_started(
    server: uvicorn.Server, thread: threading.Thread, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = f"The Autotask emulator did not start listening within {timeout} s."
            raise EmulatorStartError(msg)
        time.sleep(0.01)
