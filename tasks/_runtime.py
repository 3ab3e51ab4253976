"""What every task shares: settings, the Autotask client, which failures to retry."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prefect.concurrency.asyncio import concurrency

from s1_autotask.autotask.client import AutotaskClient, AutotaskCredentials
from s1_autotask.autotask.errors import AutotaskConfigError, is_transient
from s1_autotask.config import Settings, load_settings
from s1_autotask.redaction import install_redaction

# Rising delays: Autotask's thread limit clears within seconds, its hourly threshold
# does not, and a retry storm would spend the tenant's shared budget.
RETRY_DELAYS: list[float] = [2.0, 10.0, 30.0]


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


@asynccontextmanager
async def autotask_client(settings: Settings) -> AsyncIterator[AutotaskClient]:
    """An Autotask client used while holding one slot of the global limit.

    A task's requests are sequential, so one slot held for the whole session caps
    concurrency exactly as a slot per request would, at a third of the Prefect API
    round trips (each acquisition is a lease on the server).
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
        concurrency(settings.concurrency_limit, occupy=1, strict=True),
        AutotaskClient(
            credentials,
            base_url=config.base_url,
            zone_url=config.zone_url,
            timeout=config.timeout_seconds,
        ) as client,
    ):
        yield client
