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
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

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
        bound_host, bound_port = sock.getsockname()[:2]
        shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        url = f"http://{shown_host}:{bound_port}"
        logger.info("%s emulator listening on %s", label, url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()


def run_app(app: ASGIApp, host: str, port: int) -> None:
    """Serve ``app`` in the foreground until interrupted."""
    uvicorn.run(app, host=host, port=port, access_log=False)


def _listening_socket(host: str, port: int, label: str) -> socket.socket:
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
        msg = f"The {label} emulator cannot listen on {host}:{port}: {exc.strerror}."
        raise EmulatorStartError(msg) from exc
    return sock


def _wait_until_started(
    server: uvicorn.Server, thread: threading.Thread, timeout: float, label: str
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = f"The {label} emulator did not start listening within {timeout} s."
            raise EmulatorStartError(msg)
        time.sleep(0.01)
