"""Tasks that work on the threat itself: read it, analyse it, place it, write it up."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from s1_autotask.attack.analysis import AttackAnalysis, analyze_threat
from s1_autotask.autotask.picklists import Picklists
from s1_autotask.autotask.ticket import TicketDraft, build_ticket_draft
from s1_autotask.mapping import CompanyMatch, SiteIdentity, map_company
from s1_autotask.sentinelone.intake import ThreatRequest, read_request
from s1_autotask.sentinelone.models import Threat
from s1_autotask.text import quoted
from tasks._runtime import current_settings


@task(name="extract_threat")
def extract_threat(payload: Any) -> ThreatRequest:
    """Read what a payload carries: whole threats, or the ids of threats to fetch."""
    request = read_request(payload)
    logger = get_run_logger()
    if request.threats:
        logger.info(
            "Extracted %d threat(s): %s",
            len(request.threats),
            ", ".join(t.id for t in request.threats),
        )
    if request.threat_ids:
        logger.info(
            "The payload (%s) names threat(s) to fetch: %s",
            request.kind.replace("_", " "),
            ", ".join(request.threat_ids),
        )
    return request


@task(name="analyze_attack")
def analyze_attack(threat: Threat) -> AttackAnalysis:
    """Map the threat's reported techniques onto ATT&CK."""
    analysis = analyze_threat(threat)
    logger = get_run_logger()
    logger.info(
        "Threat %s: %d ATT&CK technique(s), furthest tactic %s",
        threat.id,
        len(analysis.techniques),
        analysis.furthest_tactic or "none",
    )
    if analysis.unknown_ids or analysis.invalid_ids:
        odd = [*analysis.unknown_ids, *analysis.invalid_ids]
        logger.warning(
            "Threat %s reported %d technique id(s) not found in ATT&CK: %s",
            threat.id,
            len(odd),
            ", ".join(quoted(value, 20) for value in odd[:10]),
        )
    return analysis


@task(name="map_company")
def pick_company(threat: Threat, companies: list[dict[str, Any]]) -> CompanyMatch:
    """Choose the Autotask company for the threat's site or account."""
    mapping = current_settings().mapping
    scope = threat.scope
    identity = SiteIdentity(
        site_id=scope.site_id,
        site_name=scope.site_name,
        account_id=scope.account_id,
        account_name=scope.account_name,
    )
    match = map_company(
        identity,
        companies,
        explicit=mapping.companies,
        fallback_company_id=mapping.fallback_company_id,
    )
    log = (
        get_run_logger().warning if match.match == "fallback" else get_run_logger().info
    )
    log(
        "Threat %s goes to company %s (%s): %s",
        threat.id,
        match.id,
        match.match,
        match.reason,
    )
    return match


@task(name="build_ticket")
def build_ticket(
    threat: Threat,
    analysis: AttackAnalysis,
    company: CompanyMatch,
    ticket_fields: list[dict[str, Any]],
) -> TicketDraft:
    """Render the ticket and resolve its labels to this tenant's picklist ids."""
    settings = current_settings()
    draft = build_ticket_draft(
        threat,
        analysis,
        company,
        Picklists.from_fields(ticket_fields),
        settings.ticket,
        console_url=settings.sentinelone.console_url,
    )
    get_run_logger().info(
        "Threat %s: %s severity (%s), priority %s",
        threat.id,
        draft.severity,
        draft.severity_reason,
        draft.labels.get("priority"),
    )
    return draft
