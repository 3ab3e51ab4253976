"""The ticket we would send for a threat: its text and its tenant-resolved field ids."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from s1_autotask.autotask.lifecycle import ThreatState
from s1_autotask.autotask.render import (
    DESCRIPTION_LIMIT,
    render_description,
    render_title,
)
from s1_autotask.config import TicketSettings
from s1_autotask.severity import assess_severity
from s1_autotask.text import utf16_len

if TYPE_CHECKING:
    from s1_autotask.attack.analysis import AttackAnalysis
    from s1_autotask.autotask.picklists import Picklists
    from s1_autotask.mapping import CompanyMatch
    from s1_autotask.sentinelone.models import Threat

EXTERNAL_ID_LIMIT = 50


class TicketDraft(BaseModel):
    """A ticket ready to send: Autotask field values plus the labels they came from."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    title: str
    description: str
    company_id: int
    severity: str
    severity_reason: str
    fields: dict[str, Any]
    labels: dict[str, str]
    state: ThreatState

    def body(self) -> dict[str, Any]:
        """The JSON body for ``POST Tickets``."""
        return {
            "companyID": self.company_id,
            "title": self.title,
            "description": self.description,
            "externalID": self.external_id,
            **self.fields,
        }


def build_ticket_draft(
    threat: Threat,
    analysis: AttackAnalysis,
    company: CompanyMatch,
    picklists: Picklists,
    settings: TicketSettings,
    *,
    console_url: str | None = None,
) -> TicketDraft:
    """Resolve labels to this tenant's ids and render the text.

    Raises:
        PicklistError: a configured label does not exist or is inactive in this tenant.
        ValueError: the threat id does not fit Autotask's external id field.
    """
    if len(threat.id) > EXTERNAL_ID_LIMIT:
        msg = (
            f"Threat id {threat.id[:60]!r} is longer than Autotask's externalID "
            f"({EXTERNAL_ID_LIMIT} characters)."
        )
        raise ValueError(msg)

    assessment = assess_severity(
        confidence_level=threat.confidence_level,
        mitigation_status=threat.mitigation_status,
        incident_status=threat.incident_status,
        analyst_verdict=threat.analyst_verdict,
        classification=threat.classification,
        furthest_tactic=analysis.furthest_tactic,
        furthest_tactic_reported=analysis.furthest_tactic_basis != "attack",
    )
    labels = _labels(threat, settings, assessment.severity)
    fields = _resolve(labels, picklists)
    state = ThreatState.of(threat, analysis)
    # The state line ends the description whatever else is shortened: the next
    # update of the threat is compared with it.
    state_line = state.line()
    text = render_description(
        threat,
        analysis,
        assessment,
        company,
        console_url=console_url,
        limit=DESCRIPTION_LIMIT - utf16_len(state_line) - 2,
    )

    return TicketDraft(
        external_id=threat.id,
        title=render_title(threat),
        description=f"{text}\n\n{state_line}",
        company_id=company.id,
        severity=assessment.severity.value,
        severity_reason=assessment.reason,
        fields=fields,
        labels=labels,
        state=state,
    )


def _labels(threat: Threat, settings: TicketSettings, severity: Any) -> dict[str, str]:
    malicious = (threat.confidence_level or "").lower() == "malicious"
    sub_issue = (
        settings.sub_issue_type_malicious
        if malicious
        else settings.sub_issue_type_suspicious
    )
    wanted = {
        "status": settings.status,
        "priority": settings.priorities[severity],
        "queueID": settings.queue,
        "issueType": settings.issue_type,
        "subIssueType": sub_issue if settings.issue_type else None,
        "source": settings.source,
        "ticketType": settings.ticket_type,
        "ticketCategory": settings.ticket_category,
    }
    return {field: label for field, label in wanted.items() if label}


def _resolve(labels: dict[str, str], picklists: Picklists) -> dict[str, int]:
    resolved: dict[str, int] = {}
    for field, label in labels.items():
        parent = resolved.get("issueType") if field == "subIssueType" else None
        resolved[field] = picklists.resolve(field, label, parent_value=parent)
    return resolved
