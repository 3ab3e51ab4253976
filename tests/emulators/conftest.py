"""Fixtures for the emulator tests: the bundled seed and a served emulator."""

from collections.abc import Iterator
from typing import Any

import pytest

from s1_autotask.emulators.autotask import (
    AutotaskEmulator,
    RunningEmulator,
    load_seed,
    serve_in_thread,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def bundled_seed() -> dict[str, Any]:
    """The bundled seed, read once (each emulator copies the records it keeps)."""
    return load_seed()


@pytest.fixture(scope="session")
def shared_server(bundled_seed: dict[str, Any]) -> Iterator[RunningEmulator]:
    """One emulator on the bundled seed, listening on a free loopback port."""
    with serve_in_thread(AutotaskEmulator(bundled_seed)) as server:
        yield server


@pytest.fixture
def served(shared_server: RunningEmulator) -> RunningEmulator:
    """The shared emulator, reset to its seed so every test starts alike."""
    shared_server.emulator.reset()
    return shared_server
