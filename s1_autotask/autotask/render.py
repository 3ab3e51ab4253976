"""Render a threat as the title and plain-text description an analyst reads in Autotask.

Autotask limits a ticket title to 255 characters and a description to 8,000, and
rejects the whole ticket when either is longer. Most of what we print is
attacker-controlled (threat names, paths, command lines, host names), so every such
value is cleaned of control and formatting characters and bounded before it is placed.
When the description does not fit, whole lines are dropped from the bottom up and a last
line says what was left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from s1_autotask.text import clean, clip_utf16, utf16_len

if TYPE_CHECKING:
    from s1_autotask.attack.analysis import AttackAnalysis, TechniqueFinding
    from s1_autotask.mapping import CompanyMatch
    from s1_autotask.sentinelone.models import Threat
    from s1_autotask.severity import SeverityAssessment

TITLE_LIMIT = 255
DESCRIPTION_LIMIT = 8000
MAX_MITIGATIONS = 5
MAX_INDICATORS = 20


def render_title(threat: Threat, *, limit: int = TITLE_LIMIT) -> str:
    """Name classification, threat, host and state in at most ``limit`` characters."""
    classification = clean(threat.classification, 40) or "Threat"
    host = clean(threat.endpoint.computer_name, 60) or "unknown host"
    state = ", ".join(
        part
        for part in (
            clean(threat.confidence_level, 20),
            _words(threat.mitigation_status),
        )
        if part
    )
    suffix = f" on {host}" + (f" ({state})" if state else "")
    prefix = f"SentinelOne {classification}: "
    room = max(limit - utf16_len(prefix) - utf16_len(suffix), 20)
    name = clean(threat.name, room) or "unnamed threat"
    return clean(prefix + name + suffix, limit)


__all__ = [
    "DESCRIPTION_LIMIT",
    "TITLE_LIMIT",
    "clean",
    "render_description",
    "render_title",
]


def render_description(
    threat: Threat,
    analysis: AttackAnalysis,
    severity: SeverityAssessment,
    company: CompanyMatch,
    *,
    console_url: str | None = None,
    limit: int = DESCRIPTION_LIMIT,
) -> str:
    """Summary, ATT&CK, recommended actions, indicators, identifiers; in that order."""
    sections = [
        ("Summary", _summary(threat, analysis, severity, company, console_url)),
        ("MITRE ATT&CK", _attack(analysis)),
        ("Recommended actions", _actions(threat, analysis)),
        ("Indicators", _indicators(threat)),
        ("Identifiers", _identifiers(threat)),
    ]
    lines: list[tuple[str, str]] = []
    for name, body in sections:
        if lines:
            lines.append((name, ""))
        lines.append((name, f"== {name} =="))
        lines.extend((name, line) for line in body)
    return _fit(lines, limit)


def _summary(
    threat: Threat,
    analysis: AttackAnalysis,
    severity: SeverityAssessment,
    company: CompanyMatch,
    console_url: str | None,
) -> list[str]:
    endpoint, scope = threat.endpoint, threat.scope
    os_text = " ".join(
        part
        for part in (clean(endpoint.os_name, 60), clean(endpoint.os_revision, 60))
        if part
    )
    lines = [
        f"Threat: {clean(threat.name, 200) or 'unnamed'} "
        f"({clean(threat.classification, 40) or 'unclassified'})",
        f"Severity: {severity.severity.value.upper()}: {severity.reason}",
        _pairs(("Furthest ATT&CK tactic reached", analysis.furthest_tactic)),
        f"Host: {clean(endpoint.computer_name, 100) or 'unknown'}"
        + (f" ({os_text})" if os_text else "")
        + (
            f", {clean(endpoint.network_status, 30)}" if endpoint.network_status else ""
        ),
        _pairs(
            ("Site", scope.site_name),
            ("Account", scope.account_name),
            ("Group", scope.group_name),
        ),
        _pairs(
            ("User", threat.process_user),
            ("Last logged-in user", endpoint.last_logged_in_user),
        ),
        _pairs(
            ("Identified", _when(threat.identified_at)),
            ("Reported", _when(threat.created_at)),
            ("Updated", _when(threat.updated_at)),
        ),
        _pairs(
            ("Confidence", threat.confidence_level),
            ("Mitigation", _words(threat.mitigation_status)),
            ("Incident", _words(threat.incident_status)),
            ("Verdict", _words(threat.analyst_verdict)),
        ),
        f"Autotask company: {clean(company.name, 100)} ({company.match}: "
        f"{clean(company.reason, 200)})",
    ]
    if console_url:
        base = console_url.rstrip("/")
        lines.append(f"SentinelOne: {base}/incidents/threats/{threat.id}/overview")
    return [line for line in lines if line]


def _attack(analysis: AttackAnalysis) -> list[str]:
    lines: list[str] = []
    reported = [finding for finding in analysis.techniques if not finding.inferred]
    if not reported and (analysis.unknown_ids or analysis.invalid_ids):
        lines.append(
            "None of the technique ids SentinelOne reported is an ATT&CK technique."
        )
    elif not reported:
        lines.append(
            "SentinelOne reported no ATT&CK techniques for this threat "
            "(common for static and custom-rule detections)."
        )
    if analysis.techniques:
        for tactic in analysis.tactics:
            lines.append(f"{tactic}:")
            for finding in analysis.techniques:
                if tactic in finding.tactics:
                    lines.append(f"  - {_technique(finding)}")
    if analysis.unknown_ids:
        ids = _listed(analysis.unknown_ids, quote=False)
        lines.append(f"Not in ATT&CK {analysis.attack_version}: {ids}")
    if analysis.invalid_ids:
        lines.append(f"Not technique ids, ignored: {_listed(analysis.invalid_ids)}")
    return lines


def _listed(values: list[str], *, quote: bool = True, shown: int = 10) -> str:
    """A short list for one line: the first few values, then how many more."""
    items = [repr(clean(v, 20)) if quote else clean(v, 20) for v in values[:shown]]
    more = len(values) - shown
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def _technique(finding: TechniqueFinding) -> str:
    text = f"{finding.id} {finding.name} {finding.url}"
    if finding.reported_id != finding.id:
        text += f" (reported as {finding.reported_id}, which ATT&CK replaced)"
    if finding.deprecated:
        text += " (deprecated in ATT&CK)"
    if finding.inferred:
        text += f" (inferred, not reported: {finding.inferred_because})"
    return text


def _actions(threat: Threat, analysis: AttackAnalysis) -> list[str]:
    mitigation = (threat.mitigation_status or "").lower()
    verdict = (threat.analyst_verdict or "").lower()
    connected = (threat.endpoint.network_status or "").lower() == "connected"
    lines = []
    if verdict == "false_positive" or mitigation == "marked_as_benign":
        lines.append("- Confirm the benign verdict and consider an exclusion.")
    elif mitigation != "mitigated":
        if connected:
            lines.append(
                "- Isolate the endpoint from the network (disconnect from network in "
                "SentinelOne) until the threat is mitigated."
            )
        elif threat.endpoint.network_status:
            lines.append(
                f"- The endpoint is {clean(threat.endpoint.network_status, 20)}: "
                "SentinelOne acts on it only when it reconnects; find the device."
            )
        lines.append("- Kill and quarantine the threat, then remediate or roll back.")
    else:
        lines.append("- Verify the mitigation completed and scan the endpoint.")
    if threat.sha256 or threat.sha1:
        lines.append("- Search other endpoints for the same hash.")
    if threat.process_user:
        lines.append("- Review the activity of the user account involved.")
    for mitigation_finding in analysis.mitigations[:MAX_MITIGATIONS]:
        covers = ", ".join(mitigation_finding.covers)
        lines.append(
            f"- ATT&CK {mitigation_finding.id} {mitigation_finding.name} "
            f"(covers {covers}) {mitigation_finding.url}"
        )
    return lines


def _indicators(threat: Threat) -> list[str]:
    # Capped so that a threat with hundreds of indicators still leaves room for the
    # identifiers below; the console has the full list.
    lines = []
    for indicator in threat.indicators[:MAX_INDICATORS]:
        category = clean(indicator.category, 60) or "Indicator"
        description = clean(indicator.description, 200)
        lines.append(f"- {category}: {description}" if description else f"- {category}")
    more = len(threat.indicators) - MAX_INDICATORS
    if more > 0:
        lines.append(f"- and {more} more indicators in the SentinelOne console")
    return lines or ["SentinelOne reported no indicators."]


def _identifiers(threat: Threat) -> list[str]:
    pairs = [
        ("Threat id", threat.id),
        ("SHA-256", threat.sha256),
        ("SHA-1", threat.sha1),
        ("MD5", threat.md5),
        ("File path", threat.file_path),
        ("Command line", threat.command_line),
        ("Originator process", threat.originator_process),
        ("Publisher", threat.publisher),
        ("Storyline", threat.storyline),
        ("Agent id", threat.endpoint.agent_id),
        ("Agent version", threat.endpoint.agent_version),
        ("Site id", threat.scope.site_id),
        ("Engines", ", ".join(threat.engines)),
    ]
    limits = {"Command line": 1000, "File path": 500}
    return [
        f"{label}: {clean(value, limits.get(label, 200))}"
        for label, value in pairs
        if value
    ]


def _fit(lines: list[tuple[str, str]], limit: int) -> str:
    text = "\n".join(line for _, line in lines)
    if utf16_len(text) <= limit:
        return text

    kept = list(lines)
    dropped: list[str] = []
    while kept:
        section, _ = kept.pop()
        if section not in dropped:
            dropped.append(section)
        note = (
            "[Shortened to fit Autotask: part of "
            + ", ".join(reversed(dropped))
            + " left out; see SentinelOne for the rest.]"
        )
        text = "\n".join([*(line for _, line in kept), note])
        if utf16_len(text) <= limit:
            return text
    return clip_utf16(text, limit)


def _pairs(*pairs: tuple[str, object]) -> str:
    shown = [f"{label}: {clean(value, 100)}" for label, value in pairs if value]
    return " | ".join(shown)


def _words(value: str | None) -> str:
    return clean(value, 40).replace("_", " ")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def join_lines(lines: Iterable[str]) -> str:
    """Join lines the way the description does, for callers that build notes."""
    return "\n".join(lines)
