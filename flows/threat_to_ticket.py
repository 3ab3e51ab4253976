"""The threat-to-ticket flow: the n8n template's graph, as Prefect tasks.

extract_threat -> (fetch_resources | fetch_companies | fetch_ticket_fields, concurrently
and cached per tenant) -> for each threat: analyze_attack -> map_company -> build_ticket
-> upsert_ticket -> an artifact for the Prefect UI. The template's fixed waits are gone:
every Autotask request holds a slot of one global concurrency limit instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from flows._limits import ensure_concurrency_limit
from s1_autotask.attack.analysis import AttackAnalysis
from s1_autotask.autotask.errors import AutotaskError
from s1_autotask.autotask.ticket import TicketDraft
from s1_autotask.config import Settings
from s1_autotask.locks import ThreatLockError
from s1_autotask.mapping import CompanyMappingError, CompanyMatch
from s1_autotask.outcome import (
    CompanySummary,
    TechniqueSummary,
    ThreatFailure,
    TicketOutcome,
)
from s1_autotask.sentinelone.intake import merge_ids
from s1_autotask.sentinelone.models import Threat
from tasks._runtime import autotask_slots, current_settings
from tasks.autotask import (
    UpsertResult,
    check_labels,
    fetch_companies,
    fetch_note_fields,
    fetch_resources,
    fetch_ticket_fields,
    upsert_ticket,
)
from tasks.sentinelone import fetch_threats, note_threat, write_back_ticket
from tasks.threat import analyze_attack, build_ticket, extract_threat, pick_company


class ThreatHandlingError(RuntimeError):
    """One or more threats of a run got no ticket; the message lists each and why.

    ``outcomes`` holds what happened to the threats that did get their ticket, and
    ``failures`` each threat that did not, so a caller can report both.
    """

    def __init__(
        self,
        message: str,
        outcomes: Sequence[TicketOutcome] = (),
        failures: Sequence[ThreatFailure] = (),
    ) -> None:
        super().__init__(message)
        self.outcomes = list(outcomes)
        self.failures = list(failures)

    def __reduce__(self) -> tuple[object, ...]:
        # Prefect pickles a flow's exception; keep what it carries across the trip.
        return (type(self), (str(self), self.outcomes, self.failures))


@flow(name="threat-to-ticket")
async def threat_to_ticket(
    payload: Any = None,
    threat_ids: list[str] | None = None,
    dry_run: bool = False,
) -> list[TicketOutcome]:
    """Turn SentinelOne threats into Autotask tickets, one per threat.

    Args:
        payload: what arrived: one threat object, a list of them, the API's
            ``{"data": [...]}``, a doorbell such as ``{"threatId": "..."}``, or a
            Unified Alert. Doorbells and alerts are fetched from the SentinelOne API.
        threat_ids: threats to fetch from the SentinelOne API and handle, for a
            rerun or a backfill; may be given with or without a payload.
        dry_run: resolve everything and look the ticket up, but create nothing.
    """
    threats = await gather_threats(payload, threat_ids or [])

    outcomes, failures = await ticket_threats(threats, dry_run=dry_run)

    if failures:
        msg = (
            f"{len(failures)} of {len(threats)} threat(s) got no ticket: "
            + "; ".join(map(str, failures))
        )
        raise ThreatHandlingError(msg, outcomes, failures)
    return outcomes


async def gather_threats(payload: Any, threat_ids: list[str]) -> list[Threat]:
    """The threats a payload carries, plus those it or ``threat_ids`` only name."""
    if payload is None and not threat_ids:
        msg = "Nothing to do: give a payload, threat_ids, or both."
        raise ValueError(msg)
    request = extract_threat(payload) if payload is not None else None
    wanted = merge_ids(request, threat_ids)

    threats = list(request.threats) if request else []
    if wanted:
        threats += await fetch_threats(wanted)
    return threats


async def ticket_threats(
    threats: list[Threat], *, dry_run: bool
) -> tuple[list[TicketOutcome], list[ThreatFailure]]:
    """Give each threat its ticket: the outcomes, and a reason per threat that failed.

    The concurrency limit and the cached reference data are only set up when there
    is a threat to handle; the run holds its share of the Autotask slots (one per
    threat, up to the limit) while it calls Autotask.
    """
    if not threats:
        return [], []
    settings = current_settings()
    limit = await ensure_concurrency_limit(
        settings.concurrency_limit, settings.concurrency_slots
    )
    slots = max(1, min(limit, settings.concurrency_slots, len(threats)))
    async with autotask_slots(settings, slots):
        reference = await reference_data(settings)
        check_labels(reference.ticket_fields, reference.note_fields, settings.ticket)

        results = await handle_threats(threats, reference, dry_run=dry_run)
    # Outside the slots: nothing below calls Autotask, and SentinelOne being slow
    # must not keep Autotask's threads from other runs.
    handled = [r for r in results if isinstance(r, Handled)]
    outcomes = list(await asyncio.gather(*(_finish(h, dry_run) for h in handled)))
    failures = [r for r in results if isinstance(r, ThreatFailure)]
    return outcomes, failures


@dataclass(frozen=True)
class ReferenceData:
    """What every threat of a run is handled against, fetched once and cached."""

    resources: list[dict[str, Any]]
    companies: list[dict[str, Any]]
    ticket_fields: list[dict[str, Any]]
    note_fields: list[dict[str, Any]]


async def reference_data(settings: Settings) -> ReferenceData:
    """Fetch resources, companies and field metadata concurrently, via the cache."""
    ttl = settings.cache_ttl_seconds
    options: dict[str, Any] = (
        {"cache_expiration": timedelta(seconds=ttl)} if ttl else {"refresh_cache": True}
    )
    tenant = settings.autotask.tenant_key()
    resources, companies, fields, note_fields = await asyncio.gather(
        fetch_resources.with_options(**options)(tenant),
        fetch_companies.with_options(**options)(tenant),
        fetch_ticket_fields.with_options(**options)(tenant),
        fetch_note_fields.with_options(**options)(tenant),
    )
    return ReferenceData(resources, companies, fields, note_fields)


@dataclass(frozen=True)
class Handled:
    """A threat whose ticket was made or brought up to date, and how."""

    threat: Threat
    analysis: AttackAnalysis
    company: CompanyMatch
    draft: TicketDraft
    result: UpsertResult


async def handle_threats(
    threats: list[Threat], reference: ReferenceData, *, dry_run: bool
) -> list[Handled | ThreatFailure]:
    """Handle threats a few at a time; a failure is a one-line reason, in order.

    The same threat twice in one batch is handled once, as its latest update, so
    two copies can never race each other to create a ticket.
    """
    latest: dict[str, Threat] = {}
    for threat in threats:
        seen = latest.get(threat.id)
        if seen is None or _newer(threat, seen):
            latest[threat.id] = threat
    # As many threats at once as the Autotask limit has slots: more would only wait
    # for a slot, and Prefect hands a waiting slot out seconds late.
    gate = asyncio.Semaphore(current_settings().concurrency_slots)

    async def one(threat: Threat) -> Handled | ThreatFailure:
        async with gate:
            try:
                return await _handle(threat, reference, dry_run=dry_run)
            except (
                AutotaskError,
                CompanyMappingError,
                ThreatLockError,
                ValueError,
            ) as exc:
                # The message is the whole story; the traceback is on the task run.
                get_run_logger().error("Threat %s got no ticket: %s", threat.id, exc)
                return ThreatFailure(threat_id=threat.id, reason=str(exc))

    return list(await asyncio.gather(*(one(t) for t in latest.values())))


def _newer(threat: Threat, than: Threat) -> bool:
    if threat.updated_at is None or than.updated_at is None:
        return threat.updated_at is not None
    return threat.updated_at > than.updated_at


async def _handle(
    threat: Threat, reference: ReferenceData, *, dry_run: bool
) -> Handled:
    analysis = analyze_attack(threat)
    company = pick_company(threat, reference.companies)
    draft = build_ticket(threat, analysis, company, reference.ticket_fields)
    result = await upsert_ticket(
        draft, reference.ticket_fields, reference.note_fields, dry_run=dry_run
    )
    return Handled(threat, analysis, company, draft, result)


async def _finish(handled: Handled, dry_run: bool) -> TicketOutcome:
    """After the ticket: write back to SentinelOne, publish the artifact, log."""
    threat, result = handled.threat, handled.result
    if not dry_run:
        await _write_back(threat, result)

    outcome = _outcome(handled)
    try:
        await _publish_artifact(outcome, handled.draft)
    except Exception as exc:  # noqa: BLE001 - the ticket is made; the UI only misses its summary
        get_run_logger().warning(
            "Threat %s: the ticket artifact was not published: %s", threat.id, exc
        )
    get_run_logger().info(
        "Threat %s: %s ticket %s in company %s",
        threat.id,
        result.action,
        outcome.ticket_number or outcome.ticket_id or "-",
        handled.company.id,
    )
    return outcome


async def _write_back(threat: Threat, result: UpsertResult) -> None:
    """Give SentinelOne the ticket number, when its API is configured.

    A new ticket also gets a threat note with its link. The number is written again
    whenever the threat does not carry it yet (an earlier write-back failed), so it
    heals itself. A failure here never fails the ticket.
    """
    number = result.ticket.get("ticketNumber")
    if not number or not current_settings().sentinelone.is_configured():
        return
    if result.action != "created" and threat.external_ticket_id == number:
        return
    try:
        await write_back_ticket(threat.id, str(number))
        if result.action == "created":
            where = f": {result.link}" if result.link else ""
            await note_threat(threat.id, f"Autotask ticket {number} was created{where}")
    except Exception as exc:  # noqa: BLE001 - the ticket stands whatever happens here
        get_run_logger().warning(
            "Threat %s: ticket %s is made, but writing it back to SentinelOne "
            "failed: %s",
            threat.id,
            number,
            exc,
        )


def _outcome(handled: Handled) -> TicketOutcome:
    threat, company, draft, result = (
        handled.threat,
        handled.company,
        handled.draft,
        handled.result,
    )
    return TicketOutcome(
        threat_id=threat.id,
        action=result.action,
        ticket_id=result.ticket.get("id"),
        ticket_number=result.ticket.get("ticketNumber"),
        ticket_url=result.link,
        # An existing ticket is reported as it stands: people may have set its
        # priority, and a title they rewrote is theirs.
        title=result.ticket.get("title") or draft.title,
        priority=result.priority or draft.labels.get("priority", ""),
        severity=draft.severity,
        company=CompanySummary(
            id=company.id, name=company.name, match=company.match, reason=company.reason
        ),
        techniques=[
            TechniqueSummary(id=t.id, name=t.name, tactics=list(t.tactics))
            for t in handled.analysis.techniques
        ],
        ticket=draft.body(),
    )


async def _publish_artifact(outcome: TicketOutcome, draft: TicketDraft) -> None:
    ticket = outcome.ticket_number or (
        f"id {outcome.ticket_id}" if outcome.ticket_id else "not created (dry run)"
    )
    techniques = ", ".join(f"{t.id} {t.name}" for t in outcome.techniques) or "none"
    markdown = "\n".join(
        [
            f"### Autotask ticket {ticket}",
            "",
            "| | |",
            "|---|---|",
            f"| Threat | `{outcome.threat_id}` |",
            f"| Action | {outcome.action} |",
            f"| Title | {_md(outcome.title)} |",
            f"| Company | {_md(outcome.company.name)} ({outcome.company.id}, "
            f"{outcome.company.match}) |",
            f"| Severity | {outcome.severity}: {_md(draft.severity_reason)} |",
            f"| Priority | {_md(outcome.priority)} |",
            f"| Techniques | {_md(techniques)} |",
            f"| Link | {outcome.ticket_url or '-'} |",
        ]
    )
    await acreate_markdown_artifact(
        key=_artifact_key(outcome.threat_id),
        markdown=markdown,
        description=f"Autotask ticket for SentinelOne threat {outcome.threat_id}",
    )


def _artifact_key(threat_id: str) -> str:
    """Prefect accepts only lowercase letters, digits and dashes in artifact keys."""
    return "s1-threat-" + re.sub(r"[^a-z0-9-]", "-", threat_id.lower())[:80]


def _md(text: str) -> str:
    """Keep attacker-influenced text from breaking the artifact's table."""
    return text.replace("|", "\\|").replace("`", "'")
