"""Tasks that talk to SentinelOne: fetch threats by id or by update time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from prefect import get_run_logger, task
from pydantic import BaseModel

from s1_autotask.config import Settings
from s1_autotask.sentinelone.client import SentinelOneClient
from s1_autotask.sentinelone.errors import (
    SentinelOneError,
    ThreatPayloadError,
    is_transient,
)
from s1_autotask.sentinelone.models import Threat
from s1_autotask.sentinelone.parse import parse_threats
from tasks._runtime import RETRY_DELAYS, current_settings


class SentinelOneNotConfiguredError(SentinelOneError):
    """Threats must be fetched from SentinelOne, but its API is not configured."""


class ThreatNotFoundError(SentinelOneError):
    """SentinelOne has no threat with the id asked for, in the token's scope."""


class UnreadableThreat(BaseModel):
    """A threat the API returned that could not be read, and why."""

    threat_id: str | None
    reason: str


@asynccontextmanager
async def sentinelone_client(
    settings: Settings, *, why: str
) -> AsyncIterator[SentinelOneClient]:
    """A SentinelOne client, or a clear error saying what needs configuring."""
    config = settings.sentinelone
    base = config.api_base()
    if base is None or not config.is_configured():
        msg = (
            f"{why} needs the SentinelOne API: set S1AT_SENTINELONE__API_URL (or "
            "S1AT_SENTINELONE__CONSOLE_URL) and S1AT_SENTINELONE__API_TOKEN."
        )
        raise SentinelOneNotConfiguredError(msg)
    async with SentinelOneClient(
        base, config.api_token, timeout=config.timeout_seconds
    ) as client:
        yield client


async def retry_transient_s1(task: Any, task_run: Any, state: Any) -> bool:
    """Retry timeouts, lost connections, 429 and gateway errors; nothing else."""
    exc = await state.aresult(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)


_RETRIED: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": retry_transient_s1,
}


@task(name="fetch_threats", **_RETRIED)
async def fetch_threats(threat_ids: list[str]) -> list[Threat]:
    """Fetch threats by id; an id SentinelOne does not know is an error naming it."""
    logger = get_run_logger()
    shown = ", ".join(threat_ids[:5]) + (" ..." if len(threat_ids) > 5 else "")
    why = f"Handling threat id(s) {shown} without their data"
    async with sentinelone_client(current_settings(), why=why) as client:
        threats = await client.get_threats(threat_ids)

    found = {t.id for t in threats}
    missing = [tid for tid in threat_ids if tid not in found]
    if missing:
        msg = (
            f"SentinelOne has no threat with id {', '.join(missing[:10])} in the "
            "API token's scope."
        )
        raise ThreatNotFoundError(msg)
    logger.info("Fetched %d threat(s) from SentinelOne", len(threats))
    return threats


@task(name="fetch_updated_threats", **_RETRIED)
async def fetch_updated_threats(
    since: datetime, max_threats: int
) -> tuple[list[Threat], list[UnreadableThreat]]:
    """Threats updated at or after ``since``, oldest update first, and any unreadable.

    One malformed threat must not hide the others, so each is read on its own.
    """
    logger = get_run_logger()
    threats: list[Threat] = []
    unreadable: list[UnreadableThreat] = []
    async with sentinelone_client(current_settings(), why="Polling") as client:
        async for raw in client.iter_raw_threats(updated_since=since):
            try:
                threats += parse_threats(raw)
            except ThreatPayloadError as exc:
                unreadable.append(
                    UnreadableThreat(threat_id=exc.threat_id, reason=str(exc))
                )
            if len(threats) + len(unreadable) >= max_threats:
                break
    logger.info(
        "Fetched %d threat(s) updated since %s", len(threats), since.isoformat()
    )
    for bad in unreadable:
        logger.error(
            "SentinelOne returned a threat that cannot be read: %s", bad.reason
        )
    return threats, unreadable
