"""The per-threat lock: one holder at a time, across tasks, processes and machines."""

import asyncio
import subprocess
import sys
import time
import uuid

import pytest
from pydantic import SecretStr

from s1_autotask.config import LockSettings
from s1_autotask.locks import ThreatLockTimeoutError, threat_lock

pytestmark = pytest.mark.anyio
REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["files", "redis"])
def settings(request, tmp_path):
    redis_url = REDIS_URL if request.param == "redis" else ""
    return LockSettings(
        folder=tmp_path / "locks", redis_url=SecretStr(redis_url), wait_seconds=5
    )


def threat_id():
    # Redis outlives a test; a fresh id keeps runs from meeting each other's locks.
    return str(uuid.uuid4().int)[:18]


async def hold(tid, settings, events, name, seconds=0.2):
    async with threat_lock(tid, settings):
        events.append(f"{name} in")
        await asyncio.sleep(seconds)
        events.append(f"{name} out")


class TestThreatLock:
    async def test_holders_of_one_threat_take_turns(self, settings):
        tid, events = threat_id(), []

        await asyncio.gather(*(hold(tid, settings, events, n) for n in "abcd"))

        pairs = list(zip(events[::2], events[1::2], strict=True))
        assert all(a.split()[0] == b.split()[0] for a, b in pairs)
        assert len(pairs) == 4

    async def test_different_threats_do_not_wait_for_each_other(self, settings):
        events = []
        started = time.monotonic()

        await asyncio.gather(
            *(hold(threat_id(), settings, events, n, 0.5) for n in "abcd")
        )

        assert time.monotonic() - started < 1.5
        assert sorted(events[:4]) == ["a in", "b in", "c in", "d in"]

    async def test_a_lock_held_too_long_times_out_naming_the_threat(self, settings):
        tid = threat_id()
        quick = settings.model_copy(update={"wait_seconds": 1.0})

        with pytest.raises(ThreatLockTimeoutError) as caught:
            await asyncio.gather(
                hold(tid, settings, [], "slow", seconds=3),
                _late(hold(tid, quick, [], "late")),
            )

        assert str(caught.value) == (
            f"Threat {tid} is being handled by another run; its lock was not free "
            "within 1 s."
        )


class TestAcrossProcesses:
    def test_a_lock_file_held_by_another_process_is_waited_for_and_freed_on_death(
        self, tmp_path
    ):
        settings = LockSettings(folder=tmp_path, wait_seconds=1)
        tid = threat_id()
        holder = subprocess.Popen(  # noqa: S603 - our interpreter, our own code
            [sys.executable, "-c", _HOLD_FOREVER, str(tmp_path), tid],
            stdout=subprocess.PIPE,
        )
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"holding"

        with pytest.raises(ThreatLockTimeoutError):
            asyncio.run(hold(tid, settings, [], "second"))

        holder.kill()
        holder.wait()
        events = []
        asyncio.run(hold(tid, settings, events, "after"))
        assert events == ["after in", "after out"]


async def _late(coroutine):
    await asyncio.sleep(0.2)
    await coroutine


_HOLD_FOREVER = """
import asyncio, sys
from pathlib import Path
from s1_autotask.config import LockSettings
from s1_autotask.locks import threat_lock

async def main():
    async with threat_lock(sys.argv[2], LockSettings(folder=Path(sys.argv[1]))):
        print("holding", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""
