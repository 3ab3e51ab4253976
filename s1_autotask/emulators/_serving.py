"""Putting an emulator's ASGI app on a port: in a background thread, or in front.

Both emulators serve the same way: bind in the caller's thread so a busy port fails
at once, run uvicorn on that socket in a daemon thread, wait until it listens, and
stop it when the block ends. Uvicorn's access log stays off: query strings carry
search filters, and the CLI's users do not need them on their terminal.
"""

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from s1_autotask._net import PortUnavailableError, listening_socket, url_of

__all__ = ["EmulatorStartError", "run_app", "serve_app_in_thread"]

logger = logging.getLogger(__name__)


class EmulatorStartError(RuntimeError):
    """The emulator's server thread did not start listening."""


@contextmanager
def serve_app_in_thread(
    app: ASGIApp,
    *,
    label: str,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve ``app`` from a background thread; yield its base url, such as
    ``http://127.0.0.1:50123``.

    ``label`` names the emulator in messages ("Autotask"). Port 0 picks a free port.
    """
    sock = _listening_socket(host, port, label)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"{label.lower()}-emulator",
        daemon=True,
    )
    thread.start()
    try:
        _wait_until_started(server, thread, startup_timeout, label)
        url = url_of(sock)
        logger.info("%s emulator listening on %s", label, url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()


def run_app(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    label: str,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` in the foreground until interrupted.

    ``on_listening`` gets the base url once the port is bound, so nothing claims
    the emulator is up before it can be.
    """
    sock = _listening_socket(host, port, label)
    if on_listening is not None:
        on_listening(url_of(sock))
    server = uvicorn.Server(uvicorn.Config(app, access_log=False))
    server.run(sockets=[sock])


def _listening_socket(host: str, port: int, label: str) -> socket.socket:
    try:
        return listening_socket(host, port, f"{label} emulator")
    except PortUnavailableError as exc:
        raise EmulatorStartError(str(exc)) from exc


def _wait_until_started(
    server: uvicorn.Server, thread: threading.Thread, timeout: float, label: str
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = f"The {label} emulator did not start listening within {timeout} s."
            raise EmulatorStartError(msg)
        time.sleep(0.01)
