"""Derive a threat's severity, because SentinelOne's v2.1 threat has no severity field.

The matrix, first rule that applies wins:

| condition                                                      | severity |
|----------------------------------------------------------------|----------|
| analyst verdict false_positive, or mitigation marked_as_benign | low      |
| incident resolved, threat mitigated                            | low      |
| classification Ransomware, not mitigated                       | critical |
| malicious, not mitigated                                       | critical |
| Ransomware or malicious, mitigated                             | high     |
| suspicious, not mitigated, reached Lateral Movement or later   | high     |
| suspicious (or true_positive verdict on a non-malicious threat)| medium   |
| anything else (confidence n/a or missing)                      | low      |

The furthest tactic is the ATT&CK analysis's: a tactic SentinelOne reported counts
even when it gave no technique for it, since the tactic is what it observed.

Then an incident resolved while the threat is not mitigated is capped at medium: the
rows above may call it critical or high, but someone has already closed it, and what
is left is to confirm that it was removed, not to contain an attack in progress.
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
_RANK = {
    Severity.LOW: 0,
    Severity.MEDIUM: 1,
    Severity.HIGH: 2,
    Severity.CRITICAL: 3,
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
    furthest_tactic_reported: bool = True,
) -> SeverityAssessment:
    """Apply the matrix in the module docstring.

    ``furthest_tactic_reported`` is False when the tactic is ATT&CK's for techniques
    SentinelOne gave no tactic for; the reason then says so.
    """
    resolved = (incident_status or "").lower() == "resolved"
    severity, reason = _matrix_row(
        confidence=(confidence_level or "").lower(),
        mitigation=(mitigation_status or "").lower(),
        verdict=(analyst_verdict or "").lower(),
        resolved=resolved,
        is_ransomware=(classification or "").lower() == "ransomware",
        furthest_tactic=furthest_tactic,
        tactic_note="" if furthest_tactic_reported else " (per ATT&CK, not reported)",
    )

    if resolved and _RANK[severity] > _RANK[Severity.MEDIUM]:
        severity = Severity.MEDIUM
        reason += "; capped at medium because the incident is resolved"
    return SeverityAssessment(severity=severity, reason=reason)


def _matrix_row(
    *,
    confidence: str,
    mitigation: str,
    verdict: str,
    resolved: bool,
    is_ransomware: bool,
    furthest_tactic: str | None,
    tactic_note: str,
) -> tuple[Severity, str]:
    mitigated = mitigation == "mitigated"
    if verdict == "false_positive":
        return Severity.LOW, "an analyst marked the threat a false positive"
    if mitigation == "marked_as_benign":
        return Severity.LOW, "the threat was marked as benign"
    if resolved and mitigated:
        return Severity.LOW, "the incident is resolved and the threat was mitigated"
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
        return (
            Severity.HIGH,
            f"suspicious, not mitigated, reached {furthest_tactic}{tactic_note}",
        )
    if confidence == "suspicious":
        state = "mitigated" if mitigated else "not mitigated"
        return Severity.MEDIUM, f"suspicious, {state}"
    if verdict == "true_positive":
        return Severity.MEDIUM, "an analyst confirmed it as a true positive"
    shown = clean(confidence, 20) or "missing"
    return Severity.LOW, f"confidence level is {shown}"
