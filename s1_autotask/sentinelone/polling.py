"""The poller's memory: where the last poll stopped, and what it has already seen.

SentinelOne indexes some threats late, so each poll asks for everything updated since
the checkpoint minus an overlap window, and drops what it already handled, by
(threat id, updatedAt). The checkpoint only moves past threats that were handled: a
threat that failed is asked for again next time, with everything after it.

A threat that can never get its ticket (a site no company maps to, say) would hold
the checkpoint back forever, and once enough later updates piled up behind it the
poller would stop making progress. So a threat that fails the same number of polls
in a row is parked: the checkpoint moves past it, the poll that parks it fails
naming it, and it is handled again when SentinelOne updates it or when it is rerun
by id.

The checkpoint is small enough for a Prefect Variable (at most 5,000 characters): a
timestamp, the most recent (id, updatedAt) pairs inside the overlap window, the
update that is holding it back and for how many polls, and the last parked updates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from s1_autotask.sentinelone.models import Threat

# Keeps the serialised checkpoint well under Prefect's 5,000-character Variable limit
# (an entry is about 40 characters); a burst larger than this inside the overlap
# window is handled twice, which the ticket lookup by external id makes harmless.
MAX_RECENT = 90
MAX_PARKED = 20


class Checkpoint(BaseModel):
    """Where polling resumes, and the updates already handled near that point."""

    model_config = ConfigDict(frozen=True)

    updated_at: datetime | None = None
    recent: list[str] = Field(default_factory=list)
    blocked_by: str | None = Field(
        default=None, description="The update the checkpoint waits on."
    )
    blocked_polls: int = Field(default=0, description="Polls it has failed in a row.")
    parked: list[str] = Field(
        default_factory=list, description="Updates set aside, newest last."
    )

    def to_variable(self) -> str:
        """The JSON text stored in the Prefect Variable."""
        return self.model_dump_json()

    @classmethod
    def from_variable(cls, value: object) -> Checkpoint:
        """Read a stored checkpoint; anything unreadable starts afresh."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return cls()
        if isinstance(value, dict):
            return cls.model_validate(value)
        return cls()


def seen_key(threat: Threat) -> str:
    """The identity of one update of one threat."""
    stamp = threat.updated_at.isoformat() if threat.updated_at else "none"
    return f"{threat.id}@{stamp}"


def window_start(
    checkpoint: Checkpoint,
    *,
    now: datetime,
    overlap: timedelta,
    first_lookback: timedelta,
) -> datetime:
    """The ``updatedAt__gte`` of the next poll."""
    if checkpoint.updated_at is None:
        return now - first_lookback
    return checkpoint.updated_at - overlap


def select_unseen(threats: Iterable[Threat], checkpoint: Checkpoint) -> list[Threat]:
    """Threats not handled yet, oldest update first, each threat once (its latest)."""
    seen = set(checkpoint.recent)
    latest: dict[str, Threat] = {}
    for threat in threats:
        if seen_key(threat) in seen:
            continue
        current = latest.get(threat.id)
        if current is None or _stamp(threat) >= _stamp(current):
            latest[threat.id] = threat
    return sorted(latest.values(), key=lambda t: (_stamp(t), t.id))


def advance(
    checkpoint: Checkpoint,
    ordered: Sequence[Threat],
    handled_ids: set[str],
    *,
    overlap: timedelta,
    park_after: int,
) -> Checkpoint:
    """Move past the handled threats, stopping before the first that was not.

    That first one is parked instead, and passed, once it has failed ``park_after``
    polls in a row.
    """
    moved_to = checkpoint.updated_at
    newly_seen: list[str] = []
    parked = list(checkpoint.parked)
    blocked_by, blocked_polls = None, 0
    for threat in ordered:
        key = seen_key(threat)
        if threat.id not in handled_ids:
            polls = checkpoint.blocked_polls + 1 if key == checkpoint.blocked_by else 1
            if polls < park_after:
                blocked_by, blocked_polls = key, polls
                break
            parked.append(key)
        newly_seen.append(key)
        if threat.updated_at is not None and (
            moved_to is None or threat.updated_at > moved_to
        ):
            moved_to = threat.updated_at

    recent = [*checkpoint.recent, *newly_seen]
    if moved_to is not None:
        horizon = moved_to - overlap
        recent = [key for key in recent if _key_stamp(key) >= horizon]
    return Checkpoint(
        updated_at=moved_to,
        recent=recent[-MAX_RECENT:],
        blocked_by=blocked_by,
        blocked_polls=blocked_polls,
        parked=parked[-MAX_PARKED:],
    )


def newly_parked(before: Checkpoint, after: Checkpoint) -> list[str]:
    """Updates the last poll set aside."""
    earlier = set(before.parked)
    return [key for key in after.parked if key not in earlier]


def _stamp(threat: Threat) -> datetime:
    return threat.updated_at or datetime.min.replace(tzinfo=UTC)


def _key_stamp(key: str) -> datetime:
    stamp = key.rpartition("@")[2]
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
