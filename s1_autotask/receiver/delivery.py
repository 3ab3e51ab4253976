"""What the store keeps about a delivery, and when a failed handoff is tried again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from s1_autotask.config import ReceiverSettings
from s1_autotask.sentinelone.intake import RequestKind

__all__ = [
    "STATUSES",
    "Delivery",
    "DeliveryStatus",
    "DeliverySummary",
    "RetryPolicy",
    "one_line",
]

DeliveryStatus = Literal["pending", "dispatching", "done", "failed", "rejected"]
STATUSES: tuple[DeliveryStatus, ...] = get_args(DeliveryStatus)

_REASON_LIMIT = 500
_RANDOM = random.SystemRandom()


class Delivery(BaseModel):
    """One request the receiver accepted or rejected, with its handoff progress."""

    model_config = ConfigDict(frozen=True)

    id: str
    received_at: datetime
    body: bytes = Field(repr=False, description="The request body, byte for byte.")
    content_type: str
    kind: RequestKind | None = Field(description="None for a rejected body.")
    threat_ids: tuple[str, ...] = ()
    status: DeliveryStatus
    attempts: int = 0
    replays: int = 0
    next_attempt_at: datetime | None = None
    claimed_at: datetime | None = None
    last_error: str | None = None
    flow_run_ids: tuple[str, ...] = ()


class DeliverySummary(BaseModel):
    """How many deliveries are in each state, and how long the oldest has waited."""

    model_config = ConfigDict(frozen=True)

    counts: dict[DeliveryStatus, int]
    oldest_waiting_at: datetime | None = Field(
        description="When the oldest pending or dispatching delivery was received."
    )

    @property
    def waiting(self) -> int:
        """Deliveries not yet handed on: pending, or being handed on now."""
        return self.counts["pending"] + self.counts["dispatching"]


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed handoff is tried again, and when the receiver gives up."""

    base_seconds: float = 5.0
    max_seconds: float = 600.0
    max_attempts: int = 50

    @classmethod
    def from_settings(cls, settings: ReceiverSettings) -> RetryPolicy:
        """The policy the receiver's settings describe."""
        return cls(
            base_seconds=settings.retry_base_seconds,
            max_seconds=settings.retry_max_seconds,
            max_attempts=settings.max_attempts,
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        ceiling = self.base_seconds * 2.0 ** min(max(attempt - 1, 0), 64)
        # Deliveries that failed together (Prefect was down) would otherwise all
        # come back in the same second; spreading them keeps the recovery gentle.
        return min(ceiling, self.max_seconds) * (0.5 + 0.5 * _RANDOM.random())


def one_line(text: str) -> str:
    """A reason fit for one log line and one table cell: no breaks, bounded."""
    flat = " ".join(text.split())
    if len(flat) <= _REASON_LIMIT:
        return flat
    return flat[: _REASON_LIMIT - 3] + "..."
