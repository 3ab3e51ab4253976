"""What every task shares: settings, the Autotask client, which failures to retry."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prefect.concurrency.asyncio import concurrency

from s1_autotask.autotask.client import AutotaskClient, AutotaskCredentials
from s1_autotask.autotask.errors import AutotaskConfigError, is_transient
from s1_autotask.config import Settings, load_settings
from s1_autotask.redaction import install_redaction

# Rising delays between task retries: Autotask's thread limit clears within
# seconds, its hourly threshold does not, and a retry storm would spend the tenant's
# shared budget. Read when the tasks are defined, so S1AT_TASK_RETRY_DELAYS (for
# example "0.2,0.5,1" in tests) must be set before they are imported.
DEFAULT_RETRY_DELAYS = (2.0, 10.0, 30.0)


def _retry_delays() -> list[float]:
    raw = os.environ.get("S1AT_TASK_RETRY_DELAYS", "")
    try:
        delays = [float(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        delays = []
    if not delays or not all(0 <= d <= 3600 for d in delays):
        return list(DEFAULT_RETRY_DELAYS)
    return delays


RETRY_DELAYS: list[float] = _retry_delays()


@functools.cache
def current_settings() -> Settings:
    """Settings for this process, read once; credentials never travel as parameters."""
    settings = load_settings()
    install_redaction(settings.secret_values())
    return settings


def retry_condition(
    transient: Callable[[BaseException], bool],
) -> Callable[[Any, Any, Any], Awaitable[bool]]:
    """A retry condition for tasks: retry what ``transient`` says may pass."""

    async def condition(task: Any, task_run: Any, state: Any) -> bool:
        # Our API tasks are async, and there a state's result must be awaited.
        exc = await state.aresult(raise_on_failure=False)
        return isinstance(exc, BaseException) and transient(exc)

    return condition


# Timeouts, lost connections, 429, the thread limit and 5xx; nothing else.
retry_transient_only = retry_condition(is_transient)


# The Autotask slots the current flow run holds, as a queue its tasks share.
_HELD: contextvars.ContextVar[asyncio.Semaphore | None] = contextvars.ContextVar(
    "s1_autotask_held_slots", default=None
)


@asynccontextmanager
async def autotask_slots(settings: Settings, slots: int) -> AsyncIterator[None]:
    """Hold ``slots`` slots of the global limit for a stretch of Autotask work.

    The flow takes its slots once and its tasks share them through a queue of this
    process: Prefect hands a freed slot to a waiter a second or more late, which
    per-task acquisition pays on every ticket. Across processes and machines the
    global limit still caps the calls to Autotask's three threads.
    """
    async with concurrency(settings.concurrency_limit, occupy=slots, strict=True):
        token = _HELD.set(asyncio.Semaphore(slots))
        try:
            yield
        finally:
            _HELD.reset(token)


@asynccontextmanager
async def _slot(settings: Settings) -> AsyncIterator[None]:
    """One slot: from the flow's share when it holds one, else from Prefect."""
    held = _HELD.get()
    if held is not None:
        async with held:
            yield
        return
    async with concurrency(settings.concurrency_limit, occupy=1, strict=True):
        yield


@asynccontextmanager
async def autotask_client(settings: Settings) -> AsyncIterator[AutotaskClient]:
    """An Autotask client used while holding one Autotask slot.

    The slot comes from the share the flow run holds (`autotask_slots`), or, for a
    task run on its own, straight from the global limit. A task's requests are
    sequential, so one slot for the whole session caps concurrency exactly as a
    slot per request would.
    """
    config = settings.autotask
    missing = config.missing()
    if missing:
        msg = f"Autotask is not configured: set {', '.join(missing)}."
        raise AutotaskConfigError(msg)
    credentials = AutotaskCredentials(
        username=config.username,
        secret=config.secret,
        integration_code=config.integration_code,
    )
    async with (
        _slot(settings),
        AutotaskClient(
            credentials,
            base_url=config.base_url,
            zone_url=config.zone_url,
            timeout=config.timeout_seconds,
            retries=config.request_retries,
        ) as client,
    ):
        yield client
