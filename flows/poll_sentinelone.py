"""The poller: the safety net that finds every threat a webhook may have lost.

Each run asks SentinelOne for threats updated since the checkpoint (a Prefect
Variable) minus an overlap window, drops updates already handled, hands the rest to the
same handling as the threat-to-ticket flow, and moves the checkpoint only past threats
that got their ticket.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from prefect import flow, get_run_logger
from prefect.variables import Variable
from pydantic import BaseModel, Field

from flows.threat_to_ticket import ThreatHandlingError, ticket_threats
from s1_autotask.outcome import ThreatFailure, TicketOutcome
from s1_autotask.sentinelone.polling import (
    MAX_RECENT,
    Checkpoint,
    advance,
    newly_parked,
    select_unseen,
    window_start,
)
from tasks.sentinelone import fetch_updated_threats

CHECKPOINT_VARIABLE = "s1_autotask_poll_checkpoint"


class PollSummary(BaseModel):
    """What one poll did."""

    since: datetime
    fetched: int
    new: int
    outcomes: list[TicketOutcome]
    checkpoint: datetime | None
    parked: list[str]


def _failure_message(
    failures: list[ThreatFailure],
    handled: int,
    unreadable: list[ThreatFailure],
    parked: list[str],
) -> str:
    parts = []
    if failures:
        parts.append(
            f"{len(failures)} of {handled} threat(s) got no ticket: "
            + "; ".join(map(str, failures))
        )
    if parked:
        parts.append(
            "Set aside after failing every poll in a row, so the checkpoint moves "
            f"past them: {', '.join(parked)}; rerun them by id once fixed."
        )
    elif failures:
        parts.append("The checkpoint stays before the first of them.")
    if unreadable:
        # Asking again cannot make a malformed threat readable, so these do not
        # hold the checkpoint back; rerun them by id once the cause is fixed.
        parts.append(
            f"{len(unreadable)} threat(s) from SentinelOne could not be read: "
            + "; ".join(bad.reason for bad in unreadable)
        )
    return " ".join(parts)


@flow(name="poll-sentinelone")
async def poll_sentinelone(
    overlap_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 10,
    first_lookback_hours: Annotated[int, Field(ge=0, le=90 * 24)] = 24,
    # Above the checkpoint's memory of recent updates, so a poll can never be
    # filled entirely with updates it has already handled and stop moving.
    max_threats: Annotated[int, Field(ge=MAX_RECENT + 10, le=5000)] = 500,
    park_after_failures: Annotated[int, Field(ge=1, le=1000)] = 6,
) -> PollSummary:
    """Handle every threat updated since the last poll.

    Args:
        overlap_minutes: how far before the checkpoint to look again, for threats
            SentinelOne indexes late.
        first_lookback_hours: how far back the very first poll looks.
        max_threats: threats fetched per run at most; the next run continues.
        park_after_failures: polls in a row a threat may fail before the checkpoint
            moves past it; at the default schedule, six is half an hour.
    """
    logger = get_run_logger()
    overlap = timedelta(minutes=overlap_minutes)
    checkpoint = Checkpoint.from_variable(
        await Variable.aget(CHECKPOINT_VARIABLE, default="")
    )
    since = window_start(
        checkpoint,
        now=datetime.now(UTC),
        overlap=overlap,
        first_lookback=timedelta(hours=first_lookback_hours),
    )

    fetched, unreadable = await fetch_updated_threats(since, max_threats)
    todo = select_unseen(fetched, checkpoint)
    logger.info(
        "%d threat update(s) fetched, %d not handled yet", len(fetched), len(todo)
    )

    outcomes, failures = await ticket_threats(todo, dry_run=False)

    moved = advance(
        checkpoint,
        todo,
        {o.threat_id for o in outcomes},
        overlap=overlap,
        park_after=park_after_failures,
    )
    await Variable.aset(CHECKPOINT_VARIABLE, moved.to_variable(), overwrite=True)
    parked = newly_parked(checkpoint, moved)

    if failures or unreadable:
        message = _failure_message(failures, len(todo), unreadable, parked)
        raise ThreatHandlingError(message, outcomes, [*failures, *unreadable])
    return PollSummary(
        since=since,
        fetched=len(fetched),
        new=len(todo),
        outcomes=outcomes,
        checkpoint=moved.updated_at,
        parked=moved.parked,
    )
