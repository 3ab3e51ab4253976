"""A local Autotask PSA REST emulator: the tenant state and the ways to serve it.

`AutotaskEmulator` holds one emulated tenant: the API credentials it accepts, the
seeded companies, resources and configuration items, the tickets and notes created
at run time, and the limits real tenants enforce (3 concurrent requests per
integration code and entity, an hourly request threshold). `create_app` exposes it
as the Autotask REST contract; `serve_in_thread` and `run` put it on a port.

A `FaultPlan` makes it misbehave on purpose (thread-limit and 429 refusals, opaque
500s, slow answers, dropped connections, writes whose answer is lost), so a client
can be shown to survive; `AutotaskEmulator.counters` tells what happened.

Credentials default to username "api-user@example.com", secret "emulator-secret"
and integration code "EMULATOR-CODE"; they guard nothing real.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from s1_autotask.emulators._autotask_app import create_app
from s1_autotask.emulators._autotask_faults import (
    DEFAULT_SLOW_SECONDS,
    EmulatorCounters,
    FaultKind,
    FaultPlan,
    FaultPlanError,
)
from s1_autotask.emulators._autotask_seed import EmulatorSeedError, load_seed
from s1_autotask.emulators._autotask_state import (
    DEFAULT_INTEGRATION_CODE,
    DEFAULT_SECRET,
    DEFAULT_USERNAME,
    AutotaskEmulator,
)
from s1_autotask.emulators._serving import (
    EmulatorStartError,
    run_app,
    serve_app_in_thread,
)

__all__ = [
    "DEFAULT_INTEGRATION_CODE",
    "DEFAULT_SECRET",
    "DEFAULT_SLOW_SECONDS",
    "DEFAULT_USERNAME",
    "AutotaskEmulator",
    "EmulatorCounters",
    "EmulatorSeedError",
    "EmulatorStartError",
    "FaultKind",
    "FaultPlan",
    "FaultPlanError",
    "RunningEmulator",
    "create_app",
    "load_seed",
    "run",
    "serve_in_thread",
]


@dataclass(frozen=True)
class RunningEmulator:
    """An emulator being served: its base URL and its state."""

    url: str
    emulator: AutotaskEmulator

    @property
    def state(self) -> AutotaskEmulator:
        """The served tenant state (same object as `emulator`)."""
        return self.emulator


@contextmanager
def serve_in_thread(
    emulator: AutotaskEmulator | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
) -> Iterator[RunningEmulator]:
    """Serve the emulator from a background thread for the duration of the block.

    Port 0 picks a free port; a port in use raises `EmulatorStartError`.
    """
    if emulator is None:
        emulator = AutotaskEmulator.from_seed()
    with serve_app_in_thread(
        create_app(emulator),
        label="Autotask",
        host=host,
        port=port,
        startup_timeout=startup_timeout,
    ) as url:
        yield RunningEmulator(url=url, emulator=emulator)


def run(
    emulator: AutotaskEmulator,
    host: str = "127.0.0.1",
    port: int = 8089,
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
        label="Autotask",
        on_listening=on_listening,
    )
