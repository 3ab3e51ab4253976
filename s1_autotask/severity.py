"""Derive a threat's severity, because SentinelOne's v2.1 threat has no severity field.

The matrix, first rule that applies wins:

| condition                                                     | severity |
|---------------------------------------------------------------|----------|
| analyst verdict false_positive, or mitigation marked_as_benign | low      |
| classification Ransomware, not mitigated                       | critical |
| malicious, not mitigated                                       | critical |
| Ransomware or malicious, mitigated                             | high     |
| suspicious, not mitigated, reached Lateral Movement or later   | high     |
| suspicious (or true_positive verdict on a non-malicious threat)| medium   |
| anything else (confidence n/a or missing)                      | low      |

Then an incident already resolved is lowered one step (never below low), because the
ticket records work that is done rather than work to do.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from s1_autotask.config import Severity
from s1_autotask.text import clean

# Tactics past which a threat has left the first host or acts on the business; a
# suspicious detection that got this far deserves more than a medium ticket.
_LATE_TACTICS = frozenset(
    {
        "Lateral Movement",
        "Collection",
        "Command and Control",
        "Exfiltration",
        "Impact",
    }
)
_LOWER = {
    Severity.CRITICAL: Severity.HIGH,
    Severity.HIGH: Severity.MEDIUM,
    Severity.MEDIUM: Severity.LOW,
    Severity.LOW: Severity.LOW,
}


class SeverityAssessment(BaseModel):
    """A severity and the one-line reason for it."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    reason: str


def assess_severity(
    *,
    confidence_level: str | None,
    mitigation_status: str | None,
    incident_status: str | None,
    analyst_verdict: str | None,
    classification: str | None,
    furthest_tactic: str | None,
) -> SeverityAssessment:
    """Apply the matrix in the module docstring."""
    confidence = (confidence_level or "").lower()
    mitigation = (mitigation_status or "").lower()
    verdict = (analyst_verdict or "").lower()
    is_ransomware = (classification or "").lower() == "ransomware"
    mitigated = mitigation == "mitigated"

    severity, reason = _base_severity(
        confidence, mitigation, verdict, is_ransomware, mitigated, furthest_tactic
    )

    if (incident_status or "").lower() == "resolved" and severity != Severity.LOW:
        severity = _LOWER[severity]
        reason += "; lowered one step because the incident is resolved"
    return SeverityAssessment(severity=severity, reason=reason)


def _base_severity(
    confidence: str,
    mitigation: str,
    verdict: str,
    is_ransomware: bool,
    mitigated: bool,
    furthest_tactic: str | None,
) -> tuple[Severity, str]:
    if verdict == "false_positive":
        return Severity.LOW, "an analyst marked the threat a false positive"
    if mitigation == "marked_as_benign":
        return Severity.LOW, "the threat was marked as benign"
    if is_ransomware and not mitigated:
        return Severity.CRITICAL, "ransomware that is not mitigated"
    if confidence == "malicious" and not mitigated:
        return Severity.CRITICAL, "malicious and not mitigated"
    if is_ransomware or confidence == "malicious":
        what = "ransomware" if is_ransomware else "malicious"
        return Severity.HIGH, f"{what}, and SentinelOne mitigated it"
    if (
        confidence == "suspicious"
        and not mitigated
        and furthest_tactic in _LATE_TACTICS
    ):
        return Severity.HIGH, f"suspicious, not mitigated, reached {furthest_tactic}"
    if confidence == "suspicious":
        state = "mitigated" if mitigated else "not mitigated"
        return Severity.MEDIUM, f"suspicious, {state}"
    if verdict == "true_positive":
        return Severity.MEDIUM, "an analyst confirmed it as a true positive"
    shown = clean(confidence, 20) or "missing"
    return Severity.LOW, f"confidence level is {shown}"
