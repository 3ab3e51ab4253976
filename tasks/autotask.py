"""Tasks that talk to Autotask: the cached reference data, and the ticket itself."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext
from pydantic import BaseModel, Field

from s1_autotask.autotask.client import AutotaskClient
from s1_autotask.autotask.errors import (
    AutotaskError,
    AutotaskRateLimitError,
    is_transient,
)
from s1_autotask.autotask.lifecycle import (
    TicketPlan,
    latest_state,
    plan_update,
    refreshed_title,
    ticket_link,
)
from s1_autotask.autotask.picklists import Picklists
from s1_autotask.autotask.ticket import TicketDraft
from s1_autotask.config import TicketSettings
from s1_autotask.locks import ThreatLockTimeoutError, threat_lock
from s1_autotask.outcome import Action
from tasks._runtime import (
    RETRY_DELAYS,
    autotask_client,
    current_settings,
    retry_condition,
    retry_transient_only,
)

# Bump when the shape of a cached value changes, so old records are not read back.
CACHE_VERSION = "v1"


def _tenant_cache_key(kind: str) -> Any:
    def key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        return f"autotask-{kind}-{parameters['tenant']}-{CACHE_VERSION}"

    return key


def _cached(kind: str) -> dict[str, Any]:
    return {
        "cache_key_fn": _tenant_cache_key(kind),
        "cache_expiration": timedelta(hours=1),
        "result_serializer": "json",
        "persist_result": True,
        "retries": len(RETRY_DELAYS),
        "retry_delay_seconds": RETRY_DELAYS,
        "retry_condition_fn": retry_transient_only,
    }


@task(name="fetch_resources", **_cached("resources"))
async def fetch_resources(tenant: str) -> list[dict[str, Any]]:
    """Active Autotask resources (users), used to resolve an assignee by email."""
    logger = get_run_logger()
    async with autotask_client(current_settings()) as client:
        resources = await client.query(
            "Resources",
            [{"op": "eq", "field": "isActive", "value": True}],
            include_fields=["id", "firstName", "lastName", "email", "userName"],
        )
    logger.info("Fetched %d active Autotask resources", len(resources))
    return resources


@task(name="fetch_companies", **_cached("companies"))
async def fetch_companies(tenant: str) -> list[dict[str, Any]]:
    """Every active Autotask company, all pages."""
    logger = get_run_logger()
    async with autotask_client(current_settings()) as client:
        companies = await client.query(
            "Companies",
            [{"op": "eq", "field": "isActive", "value": True}],
            include_fields=["id", "companyName", "isActive", "companyType"],
        )
    logger.info("Fetched %d active Autotask companies", len(companies))
    return companies


@task(name="fetch_ticket_fields", **_cached("ticket-fields"))
async def fetch_ticket_fields(tenant: str) -> list[dict[str, Any]]:
    """Ticket field metadata, picklists included; fetched once, not once per company."""
    logger = get_run_logger()
    async with autotask_client(current_settings()) as client:
        fields = await client.entity_fields("Tickets")
    logger.info("Fetched %d Autotask ticket field definitions", len(fields))
    return fields


@task(name="fetch_note_fields", **_cached("note-fields"))
async def fetch_note_fields(tenant: str) -> list[dict[str, Any]]:
    """Ticket note field metadata: the note type and publish picklists."""
    logger = get_run_logger()
    async with autotask_client(current_settings()) as client:
        fields = await client.entity_fields("TicketNotes")
    logger.info("Fetched %d Autotask ticket note field definitions", len(fields))
    return fields


# What a dry run reports for each change it did not make.
_WOULD: dict[str, Action] = {
    "updated": "would_update",
    "closed": "would_close",
    "reopened": "would_reopen",
}


class UpsertResult(BaseModel):
    """What became of a threat's ticket, the ticket as last read, and its link."""

    action: Action
    ticket: dict[str, Any]
    link: str | None = None
    priority: str | None = Field(
        default=None,
        description="An existing ticket's priority label, which people may have set.",
    )


@task(
    name="upsert_ticket",
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_condition(
        lambda exc: is_transient(exc) or isinstance(exc, ThreatLockTimeoutError)
    ),
)
async def upsert_ticket(
    draft: TicketDraft,
    ticket_fields: list[dict[str, Any]],
    note_fields: list[dict[str, Any]],
    dry_run: bool = False,
) -> UpsertResult:
    """Create the threat's ticket, or bring the existing one up to date.

    Everything happens under the threat's lock, so two runs for one threat (a
    webhook and the poller) take turns. A create is never retried blind: every
    attempt, the first included, looks the ticket up by ``externalID`` first, so a
    create that Autotask saved but whose answer was lost is found, not repeated.
    With ``dry_run`` the lookups still happen and nothing is written.
    """
    settings = current_settings()
    async with (
        threat_lock(draft.external_id, settings.locks),
        autotask_client(settings) as client,
    ):
        existing = await client.find_ticket_by_external_id(draft.external_id)
        if existing is None:
            result = await _create(client, draft, dry_run=dry_run)
            if draft.state.closes_ticket and not dry_run:
                # Resolved before its ticket existed: the ticket is opened and
                # closed at once, so its record and its reason are both there.
                closed = await _update(
                    client,
                    result.ticket,
                    draft,
                    ticket_fields,
                    note_fields,
                    dry_run=False,
                )
                result = result.model_copy(update={"ticket": closed.ticket})
        else:
            result = await _update(
                client, existing, draft, ticket_fields, note_fields, dry_run=dry_run
            )
        link = ticket_link(client.web_url, result.ticket.get("ticketNumber"))
    return result.model_copy(update={"link": link})


async def _create(
    client: AutotaskClient, draft: TicketDraft, *, dry_run: bool
) -> UpsertResult:
    logger = get_run_logger()
    if dry_run:
        logger.info("Dry run: would create a ticket for threat %s", draft.external_id)
        return UpsertResult(action="would_create", ticket={})

    try:
        ticket_id = await client.create("Tickets", draft.body())
    except AutotaskError as exc:
        if not _maybe_saved(exc):
            raise
        found = await _settled(client, draft.external_id)
        if found is None:
            raise
        logger.warning(
            "Creating the ticket for threat %s failed (%s), but Autotask saved it: "
            "ticket %s",
            draft.external_id,
            type(exc).__name__,
            found.get("ticketNumber") or found.get("id"),
        )
        return UpsertResult(action="created", ticket=found)
    ticket = await client.get("Tickets", ticket_id) or {
        "id": ticket_id,
        "description": draft.description,
    }
    logger.info(
        "Created Autotask ticket %s (id %s) for threat %s",
        ticket.get("ticketNumber"),
        ticket_id,
        draft.external_id,
    )
    return UpsertResult(action="created", ticket=ticket)


def _maybe_saved(exc: AutotaskError) -> bool:
    """A create failure after which the ticket may exist: no clear refusal.

    A rate limit or thread-limit answer comes before Autotask does anything; a
    validation error is a clear no. A timeout, a cut connection or an opaque server
    error can each hide a saved ticket.
    """
    return is_transient(exc) and not isinstance(exc, AutotaskRateLimitError)


async def _settled(client: AutotaskClient, external_id: str) -> dict[str, Any] | None:
    """Look again, still under the threat's lock, once a slow create had time to land.

    Leaving the lock at once would let the next run for the threat look up before
    Autotask finishes this create, and make a second ticket.
    """
    await asyncio.sleep(current_settings().autotask.settle_seconds)
    return await client.find_ticket_by_external_id(external_id)


async def _update(
    client: AutotaskClient,
    ticket: dict[str, Any],
    draft: TicketDraft,
    ticket_fields: list[dict[str, Any]],
    note_fields: list[dict[str, Any]],
    *,
    dry_run: bool,
) -> UpsertResult:
    """Compare the threat with what its ticket last said, and write what changed."""
    logger = get_run_logger()
    settings = current_settings().ticket
    statuses = Picklists.from_fields(ticket_fields)
    notes = await client.query(
        "TicketNotes",
        [{"op": "eq", "field": "ticketID", "value": ticket["id"]}],
        include_fields=["id", "description", "createDateTime"],
    )
    # Compared as picklist ids: labels are matched without regard to case.
    close = settings.close_status
    close_id = statuses.resolve("status", close) if close else None
    plan = plan_update(
        latest_state(ticket.get("description"), notes),
        draft.state,
        ticket_closed=str(ticket.get("status")) == str(close_id),
        close_status=close,
        reopen_status=settings.reopen_status,
    )
    number = ticket.get("ticketNumber") or ticket.get("id")
    # Never written after the create, so what it is now it stays.
    priority = _priority_of(ticket, statuses)

    if plan.action == "unchanged":
        logger.info("Threat %s: ticket %s is up to date", draft.external_id, number)
        return UpsertResult(action="unchanged", ticket=ticket, priority=priority)
    if dry_run:
        logger.info("Dry run: ticket %s would be %s", number, plan.action)
        would = _WOULD[plan.action]
        return UpsertResult(action=would, ticket=ticket, priority=priority)

    # The fields first, then the note that tells them: a note always means its
    # status change happened. If the note is lost, the next attempt still sees the
    # change in the threat and writes it; the repeated PATCH changes nothing.
    fields = _refreshed_fields(ticket, draft, plan, statuses)
    if fields:
        await client.update("Tickets", {"id": ticket["id"], **fields})
        ticket = {**ticket, **fields}
    plan = plan.with_remarks(_priority_remark(ticket, draft))
    await client.create_ticket_note(ticket["id"], _note_body(plan, note_fields))
    logger.info(
        "Threat %s: ticket %s %s (%s)",
        draft.external_id,
        number,
        plan.action,
        "; ".join(plan.changes) or "status only",
    )
    return UpsertResult(action=plan.action, ticket=ticket, priority=priority)


def _refreshed_fields(
    ticket: dict[str, Any], draft: TicketDraft, plan: TicketPlan, statuses: Picklists
) -> dict[str, Any]:
    """The status the plan sets, and the title when it is still ours to keep current.

    A queue of titles saying "not mitigated" for threats long resolved misleads
    whoever triages it; a title a person rewrote is left as they wrote it.
    """
    fields: dict[str, Any] = {}
    if plan.status_label:
        fields["status"] = statuses.resolve("status", plan.status_label)
    title = refreshed_title(ticket.get("title"), draft.title)
    if title is not None:
        fields["title"] = title
    return fields


def _priority_of(ticket: dict[str, Any], picklists: Picklists) -> str | None:
    value = ticket.get("priority")
    return picklists.label_of("priority", value) if value is not None else None


def _priority_remark(ticket: dict[str, Any], draft: TicketDraft) -> list[str]:
    """Say so when the threat now calls for another priority; never set it.

    The priority is a triage decision people make and revise on the ticket.
    """
    suggested = draft.fields.get("priority")
    if suggested is None or str(ticket.get("priority")) == str(suggested):
        return []
    label = draft.labels.get("priority", "")
    return [
        f"Severity now {draft.severity.upper()} ({draft.severity_reason}), "
        f"which maps to priority {label}; the ticket's priority is left as it is."
    ]


def _note_body(plan: TicketPlan, note_fields: list[dict[str, Any]]) -> dict[str, Any]:
    """An internal note: never published to the client portal."""
    settings = current_settings().ticket
    picklists = Picklists.from_fields(note_fields)
    return {
        "title": plan.note_title,
        "description": plan.note_text,
        "noteType": picklists.resolve("noteType", settings.note_type),
        "publish": picklists.resolve("publish", settings.note_publish),
    }


def check_labels(
    ticket_fields: list[dict[str, Any]],
    note_fields: list[dict[str, Any]],
    settings: TicketSettings,
) -> None:
    """Fail at once, with the valid labels, when a life-cycle label does not exist.

    Closing and note labels are otherwise first used weeks later, on the first
    update, where a typo would fail that update instead of the set-up.
    """
    statuses = Picklists.from_fields(ticket_fields)
    for label in (settings.close_status, settings.reopen_status):
        if label:
            statuses.resolve("status", label)
    notes = Picklists.from_fields(note_fields)
    notes.resolve("noteType", settings.note_type)
    notes.resolve("publish", settings.note_publish)
