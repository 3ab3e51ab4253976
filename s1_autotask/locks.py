"""One threat at a time: a lock per threat id around everything that writes its ticket.

A webhook and the poller can carry the same threat at the same moment, and two runs
that both find no ticket would both create one. So the lookup by external id and
every write that follows it run under a lock named after the threat:

- by default a lock file (``filelock``, an OS-level ``flock``): any number of
  processes on one machine, freed by the operating system if its holder dies;
- with ``S1AT_LOCKS__REDIS_URL``, a Redis lock (``redis-py``), for workers on several
  machines; it expires after a hold time, so a holder that died cannot keep it.

A run that cannot get the lock in time fails with `ThreatLockTimeoutError`, which
counts as transient: the task is retried.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from filelock import AsyncFileLock
from filelock import Timeout as FileLockTimeout
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from s1_autotask.config import LockSettings

__all__ = ["ThreatLockError", "ThreatLockTimeoutError", "threat_lock"]

_KEY_SAFE = re.compile(r"[^0-9A-Za-z-]")


class ThreatLockError(RuntimeError):
    """The lock store could not be used: the lock folder, or Redis, failed."""


class ThreatLockTimeoutError(ThreatLockError, TimeoutError):
    """Another run held the threat's lock for longer than we were willing to wait."""


@asynccontextmanager
async def threat_lock(threat_id: str, settings: LockSettings) -> AsyncIterator[None]:
    """Hold the lock of ``threat_id`` for the duration of the block."""
    name = "s1-autotask-threat-" + _KEY_SAFE.sub("-", threat_id)[:80]
    url = settings.redis_url.get_secret_value()
    locked = _redis_lock(name, url, settings) if url else _file_lock(name, settings)
    async with locked:
        yield


@asynccontextmanager
async def _file_lock(name: str, settings: LockSettings) -> AsyncIterator[None]:
    try:
        settings.folder.mkdir(parents=True, exist_ok=True)
        lock = AsyncFileLock(settings.folder / f"{name}.lock")
        await lock.acquire(timeout=settings.wait_seconds, poll_interval=0.05)
    except FileLockTimeout as exc:
        raise ThreatLockTimeoutError(_busy(name, settings)) from exc
    except OSError as exc:
        msg = f"The lock folder {settings.folder} cannot be used: {exc.strerror}."
        raise ThreatLockError(msg) from exc
    try:
        yield
    finally:
        await lock.release()


@asynccontextmanager
async def _redis_lock(
    name: str, url: str, settings: LockSettings
) -> AsyncIterator[None]:
    try:
        client = Redis.from_url(url)
    except ValueError as exc:
        # The URL may carry a password: say what is wrong, never the URL.
        msg = "S1AT_LOCKS__REDIS_URL is not a Redis URL (redis://host:6379/0)."
        raise ThreatLockError(msg) from exc
    lock = client.lock(
        f"lock:{name}",
        timeout=settings.hold_seconds,
        blocking_timeout=settings.wait_seconds,
    )
    try:
        acquired = await lock.acquire()
    except RedisError as exc:
        await client.aclose()
        # The URL may carry a password: name the failure, never the URL.
        msg = f"Redis refused the threat lock: {type(exc).__name__}."
        raise ThreatLockError(msg) from exc
    if not acquired:
        await client.aclose()
        raise ThreatLockTimeoutError(_busy(name, settings))
    try:
        yield
    finally:
        try:
            await lock.release()
        except LockError:
            # It expired while held; whoever holds it now is not ours to free.
            pass
        finally:
            await client.aclose()


def _busy(name: str, settings: LockSettings) -> str:
    threat = name.removeprefix("s1-autotask-threat-")
    return (
        f"Threat {threat} is being handled by another run; its lock was not free "
        f"within {settings.wait_seconds:g} s."
    )
