"""Session-wide test setup: an isolated Prefect home, shared fixtures for flows."""

import os
import tempfile
from pathlib import Path

# Prefect reads its settings when first imported; isolate its database and result
# storage (the task cache lives there) before any test module imports it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="s1at-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"] = "ignore"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"

import pytest  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = sorted((FIXTURES / "sentinelone").glob("*.json"))


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session; starting one costs ~20 s."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def anyio_backend():
    return "asyncio"
