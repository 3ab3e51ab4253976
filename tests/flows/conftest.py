"""Fixtures for running flows against the Autotask emulator."""

import json
import os

import pytest

from s1_autotask.emulators.autotask import AutotaskEmulator, serve_in_thread

USERNAME = "api-user@example.com"
SECRET = "flow-test-secret-0123456789"
INTEGRATION_CODE = "FLOW-TEST-CODE-0123456789"


@pytest.fixture
def emulator():
    """A fresh emulated tenant, with the bundled seed, on a loopback port."""
    state = AutotaskEmulator.from_seed(
        username=USERNAME, secret=SECRET, integration_code=INTEGRATION_CODE
    )
    with serve_in_thread(state) as running:
        yield running


@pytest.fixture
def configured(emulator, monkeypatch, prefect_harness, tmp_path):
    """Settings pointing at the emulator, read afresh by the tasks."""
    from tasks._runtime import current_settings

    for key in [k for k in os.environ if k.startswith("S1AT_")]:
        monkeypatch.delenv(key)
    values = {
        "S1AT_AUTOTASK__USERNAME": USERNAME,
        "S1AT_AUTOTASK__SECRET": SECRET,
        "S1AT_AUTOTASK__INTEGRATION_CODE": INTEGRATION_CODE,
        "S1AT_AUTOTASK__ZONE_URL": (
            f"{emulator.url}/atservicesrest/v1.0/zoneInformation"
        ),
        "S1AT_MAPPING__COMPANIES": json.dumps({"1592057602649133141": 29683056}),
        "S1AT_MAPPING__FALLBACK_COMPANY_ID": "0",
        "S1AT_SENTINELONE__CONSOLE_URL": "https://console.example.invalid",
        # Lock files of the tests' own, never those of workers on this machine.
        "S1AT_LOCKS__FOLDER": str(tmp_path / "locks"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    current_settings.cache_clear()
    yield emulator
    current_settings.cache_clear()


S1_TOKEN = "flow-test-s1-token-0123456789"


@pytest.fixture
def sentinelone(configured, monkeypatch):
    """A SentinelOne emulator with the v2.1 samples, and settings pointing at it."""
    from s1_autotask.emulators.sentinelone import SentinelOneEmulator
    from s1_autotask.emulators.sentinelone import serve_in_thread as serve_s1
    from tasks._runtime import current_settings

    state = SentinelOneEmulator.from_samples(token=S1_TOKEN)
    with serve_s1(state) as running:
        monkeypatch.setenv("S1AT_SENTINELONE__API_URL", running.url)
        monkeypatch.setenv("S1AT_SENTINELONE__API_TOKEN", S1_TOKEN)
        current_settings.cache_clear()
        yield running
