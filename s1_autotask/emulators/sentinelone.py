"""A local SentinelOne v2.1 REST emulator: the console state and the ways to serve it.

`SentinelOneEmulator` holds one emulated console: the API token it accepts, the
threats it serves (the bundled samples by default), and the notes and external
ticket ids written back to them. `create_app` exposes it as the threat endpoints of
the v2.1 contract; `serve_in_thread` and `run` put it on a port.

The token defaults to `DEFAULT_TOKEN` ("emulator-s1-token"); it guards nothing real.
Point the client at the served url: `SentinelOneClient(server.url, token)`.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from s1_autotask.emulators._sentinelone_app import create_app
from s1_autotask.emulators._sentinelone_state import (
    DEFAULT_TOKEN,
    EmulatorDataError,
    SentinelOneEmulator,
)
from s1_autotask.emulators._serving import (
    EmulatorStartError,
    run_app,
    serve_app_in_thread,
)

__all__ = [
    "DEFAULT_TOKEN",
    "EmulatorDataError",
    "EmulatorStartError",
    "RunningSentinelOneEmulator",
    "SentinelOneEmulator",
    "create_app",
    "run",
    "serve_in_thread",
]


@dataclass(frozen=True)
class RunningSentinelOneEmulator:
    """An emulator being served: its base URL and its state."""

    url: str
    emulator: SentinelOneEmulator

    @property
    def state(self) -> SentinelOneEmulator:
        """The served console state (same object as `emulator`)."""
        return self.emulator


@contextmanager
def serve_in_thread(
    emulator: SentinelOneEmulator | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
) -> Iterator[RunningSentinelOneEmulator]:
    """Serve the emulator from a background thread for the duration of the block.

    Without an emulator the bundled samples are served. Port 0 picks a free port; a
    port in use raises `EmulatorStartError`.
    """
    if emulator is None:
        emulator = SentinelOneEmulator.from_samples()
    with serve_app_in_thread(
        create_app(emulator),
        label="SentinelOne",
        host=host,
        port=port,
        startup_timeout=startup_timeout,
    ) as url:
        yield RunningSentinelOneEmulator(url=url, emulator=emulator)


def run(
    emulator: SentinelOneEmulator,
    host: str = "127.0.0.1",
    port: int = 8090,
    *,
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve the emulator in the foreground until interrupted.

    ``on_listening`` gets the base url once the port is bound.
    """
    run_app(
        create_app(emulator),
        host=host,
        port=port,
        label="SentinelOne",
        on_listening=on_listening,
    )
