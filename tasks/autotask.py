"""Tasks that talk to Autotask: the cached reference data, and the ticket itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.context import TaskRunContext

from s1_autotask.autotask.ticket import TicketDraft
from s1_autotask.outcome import Action
from tasks._runtime import (
    RETRY_DELAYS,
    autotask_client,
    current_settings,
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


@task(
    name="upsert_ticket",
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=retry_transient_only,
)
async def upsert_ticket(
    draft: TicketDraft, dry_run: bool = False
) -> tuple[Action, dict[str, Any]]:
    """Create the threat's ticket unless one with its external id exists already.

    With ``dry_run`` the lookup still happens, so the answer is "exists" or
    "would_create", and nothing is written.

    A create is never retried blind: every attempt, the first included, looks the
    ticket up by ``externalID`` before it creates, so a create that Autotask saved but
    whose answer was lost is found on the retry instead of being made twice.
    """
    logger = get_run_logger()
    async with autotask_client(current_settings()) as client:
        existing = await client.find_ticket_by_external_id(draft.external_id)
        if existing is not None:
            logger.info(
                "Threat %s already has Autotask ticket %s",
                draft.external_id,
                existing.get("ticketNumber") or existing.get("id"),
            )
            return "exists", existing
        if dry_run:
            logger.info(
                "Dry run: would create a ticket for threat %s", draft.external_id
            )
            return "would_create", {}

        ticket_id = await client.create("Tickets", draft.body())
        ticket = await client.get("Tickets", ticket_id) or {"id": ticket_id}
    logger.info(
        "Created Autotask ticket %s (id %s) for threat %s",
        ticket.get("ticketNumber"),
        ticket_id,
        draft.external_id,
    )
    return "created", ticket
