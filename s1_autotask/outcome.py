"""What happened to one threat: the result a flow run returns and the CLI prints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal[
    "created",
    "would_create",
    "unchanged",
    "updated",
    "would_update",
    "closed",
    "would_close",
    "reopened",
    "would_reopen",
]


class CompanySummary(BaseModel):
    """The company a ticket went to and how it was chosen."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    match: str
    reason: str


class TechniqueSummary(BaseModel):
    """One ATT&CK technique as shown in results."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    tactics: list[str]


class TicketOutcome(BaseModel):
    """The result for one threat; ``ticket`` holds the Autotask fields sent."""

    model_config = ConfigDict(frozen=True)

    threat_id: str
    action: Action
    ticket_id: int | None = None
    ticket_number: str | None = None
    ticket_url: str | None = None
    title: str
    priority: str
    severity: str
    company: CompanySummary
    techniques: list[TechniqueSummary] = Field(default_factory=list)
    ticket: dict[str, Any] = Field(default_factory=dict)

    def cli_json(self) -> dict[str, Any]:
        """The documented ``--json`` shape."""
        return {
            "threat_id": self.threat_id,
            "action": self.action,
            "ticket_id": self.ticket_id,
            "ticket_number": self.ticket_number,
            "ticket_url": self.ticket_url,
            "ticket": self.ticket,
            "company": {
                "id": self.company.id,
                "name": self.company.name,
                "match": self.company.match,
            },
            "severity": self.severity,
            "priority": self.priority,
            "techniques": [t.model_dump() for t in self.techniques],
        }


class ThreatFailure(BaseModel):
    """A threat that got no ticket, and why, in one sentence."""

    model_config = ConfigDict(frozen=True)

    threat_id: str | None
    reason: str

    def __str__(self) -> str:
        return f"threat {self.threat_id or '(no id)'}: {self.reason}"

    def cli_json(self) -> dict[str, Any]:
        """The ``--json`` entry of a threat that failed."""
        return {"threat_id": self.threat_id, "action": "failed", "error": self.reason}
