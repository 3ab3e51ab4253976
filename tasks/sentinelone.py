"""Tasks that talk to SentinelOne: fetch threats by id or by update time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import get_run_logger, task

from s1_autotask.config import SentinelOneSettings
from s1_autotask.outcome import ThreatFailure
from s1_autotask.sentinelone.client import SentinelOneClient
from s1_autotask.sentinelone.errors import (
    ThreatNotFoundError,
    ThreatPayloadError,
    is_transient,
)
from s1_autotask.sentinelone.models import Threat
from s1_autotask.sentinelone.parse import parse_threats
from tasks._runtime import RETRY_DELAYS, current_settings, retry_condition


def config() -> SentinelOneSettings:
    """This process's SentinelOne settings."""
    return current_settings().sentinelone


_RETRIED: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    # Timeouts, lost connections, 429 and server errors; nothing else.
    "retry_condition_fn": retry_condition(is_transient),
}


@task(name="fetch_threats", **_RETRIED)
async def fetch_threats(threat_ids: list[str]) -> list[Threat]:
    """Fetch threats by id; an id SentinelOne does not know is an error naming it."""
    logger = get_run_logger()
    shown = ", ".join(threat_ids[:5]) + (" ..." if len(threat_ids) > 5 else "")
    why = f"Handling threat id(s) {shown} without their data"
    async with SentinelOneClient.from_settings(config(), why=why) as client:
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
) -> tuple[list[Threat], list[ThreatFailure]]:
    """Threats updated at or after ``since``, oldest update first, and any unreadable.

    One malformed threat must not hide the others, so each is read on its own.
    """
    logger = get_run_logger()
    threats: list[Threat] = []
    unreadable: list[ThreatFailure] = []
    async with SentinelOneClient.from_settings(config(), why="Polling") as client:
        async for raw in client.iter_raw_threats(updated_since=since):
            try:
                threats += parse_threats(raw)
            except ThreatPayloadError as exc:
                unreadable.append(
                    ThreatFailure(threat_id=exc.threat_id, reason=str(exc))
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


@task(name="write_back_ticket", **_RETRIED)
async def write_back_ticket(threat_id: str, ticket_number: str) -> None:
    """Store the ticket number on the threat; setting it twice does no harm."""
    logger = get_run_logger()
    why = f"Writing ticket {ticket_number} back to threat {threat_id}"
    async with SentinelOneClient.from_settings(config(), why=why) as client:
        changed = await client.set_external_ticket_id(threat_id, ticket_number)
    if changed:
        logger.info("Threat %s now carries ticket %s", threat_id, ticket_number)
    else:
        # SentinelOne answers 0 when the id was already set, or the threat is
        # outside the token's scope; neither is worth failing over.
        logger.warning(
            "SentinelOne changed no threat when given ticket %s for threat %s",
            ticket_number,
            threat_id,
        )


# Not retried: a note whose answer was lost may have been saved, and a retry would
# add it twice. A lost note is only a convenience lost; the ticket id is kept above.
@task(name="note_threat")
async def note_threat(threat_id: str, text: str) -> None:
    """Add a note to the threat in SentinelOne."""
    why = f"Adding a note to threat {threat_id}"
    async with SentinelOneClient.from_settings(config(), why=why) as client:
        await client.add_threat_note(threat_id, text)
