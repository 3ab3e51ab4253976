"""Binding a listening socket before a server starts, for every server we run.

Binding in the caller's thread makes a busy port a clear error at once, instead of
an exit from inside uvicorn after the command already said it was listening.
"""

from __future__ import annotations

import socket


class PortUnavailableError(OSError):
    """The address could not be listened on: in use, not ours, or not resolvable."""


def listening_socket(host: str, port: int, what: str) -> socket.socket:
    """A TCP socket bound to ``host:port``; ``what`` names the server in the error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so,
    # and without it keep-alive responses stall on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        msg = f"The {what} cannot listen on {host}:{port}: {exc.strerror or exc}."
        raise PortUnavailableError(msg) from exc
    return sock


def url_of(sock: socket.socket) -> str:
    """The base url a bound socket serves, such as ``http://127.0.0.1:50123``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
