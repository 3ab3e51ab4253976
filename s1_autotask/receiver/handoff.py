"""What a delivery becomes on the Prefect side, still without importing Prefect.

Each threat of a delivery becomes one flow run. A whole threat travels as the flow's
``payload``: the threat's JSON object exactly as it was posted. A threat that is only
named (a doorbell or a Unified Alert) travels as ``threat_ids``, and the flow fetches
it from the API. Every run is started with an idempotency key, which Prefect keeps in
its database, so handing a delivery on twice returns the run it already started:

- a whole threat: ``s1:{threat id}:{updatedAt}``. A changed threat starts a new run
  (its ticket gets a note); the same version posted again does not;
- a named threat: ``s1:{threat id}:body:{first 16 hex of the body's SHA-256}``. Only
  an identical body counts as a redelivery, since a doorbell carries no version;
- a replay appends ``:replay:{n}``: replaying means starting again on purpose.

A `Dispatcher` starts the runs; the Prefect one lives with the flows.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from s1_autotask.config import ReceiverSettings
from s1_autotask.receiver._text import mask_secret
from s1_autotask.receiver.delivery import Delivery, RetryPolicy
from s1_autotask.receiver.errors import HandoffError
from s1_autotask.receiver.store import DeliveryStore
from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.intake import (
    MAX_PARAMETER_BYTES,
    ThreatRequest,
    json_size,
    read_request_json,
)
from s1_autotask.sentinelone.models import Threat
from s1_autotask.sentinelone.parse import load_json, threat_items

__all__ = [
    "Dispatcher",
    "Handoff",
    "body_digest",
    "describe_ids",
    "hand_on",
    "plan_handoffs",
]

logger = logging.getLogger(__name__)

_IDS_IN_LOG = 5


@dataclass(frozen=True)
class Handoff:
    """One flow run to start: its parameters, idempotency key and threat."""

    parameters: dict[str, Any]
    idempotency_key: str
    threat_id: str


class Dispatcher(Protocol):
    """Starts flow runs; the Prefect implementation lives outside the library."""

    async def start(self, handoff: Handoff) -> str:
        """Start the run (or find the one with this idempotency key); its id.

        Raises `HandoffError`, or any other exception, when no run was started.
        """
        ...


def plan_handoffs(
    delivery: Delivery, request: ThreatRequest, replay: int = 0
) -> list[Handoff]:
    """The flow runs a delivery asks for: one per threat, in the order posted.

    ``request`` is what the delivery's body was read as. A threat posted twice in
    one body is handed on once, in its most recently updated version.
    """
    suffix = f":replay:{replay}" if replay else ""
    if request.kind != "threats":
        digest = body_digest(delivery.body)
        return [
            Handoff(
                parameters={"threat_ids": [threat_id]},
                idempotency_key=f"s1:{threat_id}:body:{digest}{suffix}",
                threat_id=threat_id,
            )
            for threat_id in request.threat_ids
        ]

    raw = _raw_threats(delivery, len(request.threats))
    chosen: dict[str, tuple[Threat, object]] = {}
    for threat, item in zip(request.threats, raw, strict=True):
        held = chosen.get(threat.id)
        if held is None or _is_newer(threat, held[0]):
            chosen[threat.id] = (threat, item)
    return [
        Handoff(
            parameters=_threat_parameters(threat, item),
            idempotency_key=_threat_key(threat, delivery.body) + suffix,
            threat_id=threat.id,
        )
        for threat, item in chosen.values()
    ]


def _threat_parameters(threat: Threat, item: object) -> dict[str, Any]:
    """The threat itself, unless it is too large for a flow run's parameters.

    Such a threat (a command line of megabytes, say) travels by id instead, and the
    flow fetches it from the SentinelOne API.
    """
    if json_size(item) <= MAX_PARAMETER_BYTES:
        return {"payload": item}
    logger.warning(
        "Threat %s is %d bytes as JSON, too large to pass to a flow run; it is "
        "handed on by id, to be fetched from SentinelOne",
        threat.id,
        json_size(item),
    )
    return {"threat_ids": [threat.id]}


def body_digest(body: bytes) -> str:
    """The first 16 hex digits of the body's SHA-256: enough to tell bodies apart."""
    return hashlib.sha256(body).hexdigest()[:16]


def describe_ids(ids: Sequence[str]) -> str:
    """Threat ids for a log line: the first few, then how many more."""
    shown = ", ".join(ids[:_IDS_IN_LOG]) or "none"
    if len(ids) > _IDS_IN_LOG:
        shown += f" and {len(ids) - _IDS_IN_LOG} more"
    return shown


async def hand_on(
    store: DeliveryStore,
    claim: Delivery,
    dispatcher: Dispatcher,
    settings: ReceiverSettings,
) -> Delivery:
    """Hand a claimed delivery on, one flow run per threat, and record the outcome.

    A failed handoff is recorded on the delivery (to be retried after a backoff, or
    failed), not raised. Returns the delivery as stored afterwards; only
    `StoreError` escapes.
    """
    failure = _Failure(store, claim, settings)
    try:
        handoffs = plan_handoffs(claim, read_request_json(claim.body), claim.replays)
    except (ThreatPayloadError, HandoffError) as exc:
        # The body was read when it arrived; if this version cannot read it, a
        # retry will not either.
        reason = f"The stored body cannot be handed on: {exc}"
        return await failure.record(reason, permanent=True)

    run_ids: list[str] = []
    for handoff in handoffs:
        try:
            timeout = settings.handoff_timeout_seconds
            run_ids.append(await _start(dispatcher, handoff, timeout))
        except HandoffError as exc:
            return await failure.record(str(exc))
        if not await asyncio.to_thread(store.extend_claim, claim):
            return await _claim_lost(store, claim)

    done = await asyncio.to_thread(store.mark_done, claim, run_ids)
    if done is None:
        return await _claim_lost(store, claim)
    logger.info(
        "Handed delivery %s on as %d flow run(s): %s",
        claim.id,
        len(run_ids),
        describe_ids(run_ids),
    )
    return done


async def _start(dispatcher: Dispatcher, handoff: Handoff, timeout: float) -> str:
    """The flow run's id, or `HandoffError` saying why none was started."""
    subject = f"Starting the flow run for threat {handoff.threat_id}"
    try:
        async with asyncio.timeout(timeout):
            return await dispatcher.start(handoff)
    except TimeoutError as exc:
        msg = f"{subject} timed out after {timeout:g} s."
        raise HandoffError(msg) from exc
    except HandoffError as exc:
        msg = f"{subject} failed: {exc}"
        raise HandoffError(msg) from exc
    except Exception as exc:
        # The dispatcher is foreign code (the Prefect client); whatever it raises
        # must become a retry of this delivery, not the end of the retry loop.
        msg = f"{subject} failed: {type(exc).__name__}: {exc}"
        raise HandoffError(msg) from exc


class _Failure:
    """Records a failed attempt of one claim, with the secret masked."""

    def __init__(
        self, store: DeliveryStore, claim: Delivery, settings: ReceiverSettings
    ) -> None:
        self._store = store
        self._claim = claim
        self._retry = RetryPolicy.from_settings(settings)
        self._secret = settings.secret.get_secret_value()

    async def record(self, reason: str, *, permanent: bool = False) -> Delivery:
        # Nothing sends the webhook secret on, but an exception text is foreign
        # and ends up in the store, the CLI and the logs.
        reason = mask_secret(reason, self._secret)
        stored = await asyncio.to_thread(
            self._store.mark_attempt_failed,
            self._claim,
            reason,
            retry=self._retry,
            permanent=permanent,
        )
        if stored is None:
            return await _claim_lost(self._store, self._claim)

        due = stored.next_attempt_at
        outcome = "marked failed"
        if stored.status == "pending" and due is not None:
            outcome = f"next attempt at {due:%Y-%m-%d %H:%M:%S} UTC"
        logger.warning(
            "Delivery %s was not handed on (attempt %d, %s): %s",
            self._claim.id,
            self._claim.attempts,
            outcome,
            stored.last_error,
        )
        return stored


async def _claim_lost(store: DeliveryStore, claim: Delivery) -> Delivery:
    # Taken over after the lease or replayed meanwhile: the other holder records
    # the outcome, and idempotency keys keep the runs started here from doubling.
    logger.info("Delivery %s was claimed elsewhere while being handed on", claim.id)
    return await asyncio.to_thread(store.get, claim.id)


def _raw_threats(delivery: Delivery, count: int) -> list[object]:
    """Each threat's JSON object from the stored body, in the order posted.

    They are the very items the parser read the threats from, so the object a
    flow run gets is the threat its key and the 202 named.
    """
    items = [item for _, item in threat_items(load_json(delivery.body))]
    if len(items) != count:
        msg = (
            f"Delivery {delivery.id} holds {len(items)} threat objects, but "
            f"{count} threats were read from it."
        )
        raise HandoffError(msg)
    return items


def _threat_key(threat: Threat, body: bytes) -> str:
    if threat.updated_at is None:
        # Without a version, only an identical body is known to be the same.
        return f"s1:{threat.id}:body:{body_digest(body)}"
    return f"s1:{threat.id}:{threat.updated_at.isoformat()}"


def _is_newer(threat: Threat, than: Threat) -> bool:
    if threat.updated_at is None:
        return False
    return than.updated_at is None or threat.updated_at > than.updated_at
