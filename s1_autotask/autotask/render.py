"""Render a threat as the title and plain-text description an analyst reads in Autotask.

Autotask limits a ticket title to 255 characters and a description to 8,000, and
rejects the whole ticket when either is longer. Most of what we print is
attacker-controlled (threat names, paths, command lines, host names), so every such
value is cleaned of control and formatting characters and bounded before it is placed.

Sections that grow with the threat are bounded on their own, so that none crowds out
the others: the ATT&CK section lists the most telling techniques and counts the rest,
indicators and mitigations are capped. When the description still does not fit, whole
lines are dropped from the bottom up, the Identifiers last, and a last line says what
was left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from s1_autotask.autotask._attack_section import (
    attack_section,
    furthest_line,
    listed,
)
from s1_autotask.text import clean, clip_utf16, utf16_len

if TYPE_CHECKING:
    from s1_autotask.attack.analysis import AttackAnalysis
    from s1_autotask.mapping import CompanyMatch
    from s1_autotask.sentinelone.models import Threat
    from s1_autotask.severity import SeverityAssessment

TITLE_LIMIT = 255
DESCRIPTION_LIMIT = 8000
MAX_INDICATORS = 20
MAX_INDICATOR_IDS = 20
# Mitigation lines name at most this many of the techniques they cover.
MAX_COVERED = 5
# Given up last when the description does not fit: the identifiers are what an analyst
# searches other tools by, and they and the summary are bounded by construction.
_KEPT_LAST = frozenset({"Summary", "Identifiers"})


def render_title(threat: Threat, *, limit: int = TITLE_LIMIT) -> str:
    """Name classification, threat, host and state in at most ``limit`` characters."""
    classification = clean(threat.classification, 40) or "Threat"
    host = clean(threat.endpoint.computer_name, 60) or "unknown host"
    state = ", ".join(_title_state(threat))
    suffix = f" on {host}" + (f" ({state})" if state else "")
    prefix = f"SentinelOne {classification}: "
    room = max(limit - utf16_len(prefix) - utf16_len(suffix), 20)
    name = clean(threat.name, room) or "unnamed threat"
    return clean(prefix + name + suffix, limit)


def _title_state(threat: Threat) -> list[str]:
    # An analyst's verdict outranks the detection's confidence: a false positive
    # titled "suspicious" reads as live malware in a ticket queue.
    if _lower(threat.analyst_verdict) == "false_positive":
        parts = ["false positive"]
    else:
        parts = [
            clean(threat.confidence_level, 20),
            _words(threat.mitigation_status),
        ]
    if _lower(threat.incident_status) == "resolved":
        parts.append("resolved")
    return [part for part in parts if part]


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
        ("MITRE ATT&CK", attack_section(analysis)),
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
    host = f"Host: {clean(endpoint.computer_name, 100) or 'unknown'}" + (
        f" ({os_text})" if os_text else ""
    )
    lines = [
        f"Threat: {clean(threat.name, 200) or 'unnamed'} "
        f"({clean(threat.classification, 40) or 'unclassified'})",
        f"Severity: {severity.severity.value.upper()}: {severity.reason}",
        _state(threat),
        furthest_line(analysis),
        " | ".join(
            part
            for part in (
                host,
                _pairs(("network", endpoint.network_status)),
                "agent decommissioned" if endpoint.is_decommissioned else "",
            )
            if part
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
        f"{clean(company.reason, 400)})",
    ]
    if console_url:
        base = console_url.rstrip("/")
        lines.append(f"SentinelOne: {base}/incidents/threats/{threat.id}/overview")
    return [line for line in lines if line]


def _state(threat: Threat) -> str:
    """One plain sentence on what an analyst or SentinelOne already decided."""
    verdict = _lower(threat.analyst_verdict)
    mitigation = _lower(threat.mitigation_status)
    facts = []
    if verdict == "false_positive":
        facts.append("an analyst marked this threat a false positive")
    elif mitigation == "marked_as_benign":
        facts.append("the threat was marked as benign")
    if _lower(threat.incident_status) == "resolved":
        unmitigated = not facts and mitigation != "mitigated"
        facts.append(
            "the incident is resolved"
            + (", but SentinelOne did not mitigate the threat" if unmitigated else "")
        )
    return f"State: {'; '.join(facts)}." if facts else ""


def _actions(threat: Threat, analysis: AttackAnalysis) -> list[str]:
    mitigation = _lower(threat.mitigation_status)
    verdict = _lower(threat.analyst_verdict)
    endpoint = threat.endpoint
    # A decommissioned agent no longer takes commands: advice to isolate or scan
    # through SentinelOne would send the analyst to a button that does nothing.
    agent_gone = bool(endpoint.is_decommissioned)
    scan = (
        "the agent is decommissioned, so SentinelOne cannot scan it: check it with "
        "other tools or reinstall the agent"
        if agent_gone
        else "run a full disk scan"
    )

    if verdict == "false_positive" or mitigation == "marked_as_benign":
        what = "false-positive" if verdict == "false_positive" else "benign"
        # Hunting for the hash or hardening against the techniques would treat a
        # benign file as an attack.
        return [f"- Confirm the {what} verdict and consider an exclusion."]

    lines = []
    if _lower(threat.incident_status) == "resolved":
        lines.append(
            "- The incident is resolved in SentinelOne: confirm the resolution was "
            f"deliberate and verify the endpoint is clean ({scan})."
        )
        if mitigation != "mitigated":
            lines.append(
                "- SentinelOne did not mitigate this threat: confirm how it was "
                "removed before closing the ticket."
            )
    elif mitigation != "mitigated":
        lines.extend(_containment(threat))
    else:
        lines.append(f"- Verify the mitigation completed ({scan}).")
    if threat.sha256 or threat.sha1:
        lines.append("- Search other endpoints for the same hash.")
    if threat.process_user:
        lines.append("- Review the activity of the user account involved.")
    for finding in analysis.mitigations:
        covers = listed(finding.covers, quote=False, shown=MAX_COVERED)
        lines.append(
            f"- ATT&CK {finding.id} {finding.name} (covers {covers}) {finding.url}"
        )
    return lines


def _containment(threat: Threat) -> list[str]:
    """What to do about a threat that is still active on the endpoint."""
    endpoint = threat.endpoint
    network = _lower(endpoint.network_status)
    if endpoint.is_decommissioned:
        return [
            "- The agent is decommissioned, so SentinelOne cannot isolate, kill or "
            "quarantine anything on this endpoint: contain and clean it by other "
            "means, or reinstall the agent."
        ]
    lines = []
    if network == "connected":
        lines.append(
            "- Isolate the endpoint from the network (disconnect from network in "
            "SentinelOne) until the threat is mitigated."
        )
    elif network:
        lines.append(
            f"- The endpoint is {clean(endpoint.network_status, 20)}: "
            "SentinelOne acts on it only when it reconnects; find the device."
        )
    lines.append("- Kill and quarantine the threat, then remediate or roll back.")
    return lines


def _indicators(threat: Threat) -> list[str]:
    # SentinelOne repeats indicators (the same three, hundreds of times, in real
    # exports): identical lines are shown once, in first-seen order, before the cap.
    # The cap leaves room for the identifiers below; the console has the full list.
    described: dict[tuple[str | None, str | None], None] = {}
    bare_ids: dict[int, None] = {}
    for indicator in threat.indicators:
        if indicator.category or indicator.description:
            described.setdefault((indicator.category, indicator.description), None)
        else:
            # v2.0 sends only behavioural-indicator ids, which name nothing readable.
            bare_ids.update(dict.fromkeys(indicator.ids))

    lines: list[str] = []
    pending = iter(described)
    for category, description in pending:
        line = _indicator_line(category, description)
        if line is not None and line not in lines:
            lines.append(line)
        if len(lines) == MAX_INDICATORS:
            break
    # Counted before cleaning, which costs too much to run on a hundred thousand
    # hostile indicators; two that differ only in control characters count twice.
    more = sum(1 for _ in pending)
    if more > 0:
        lines.append(f"- and {more} more indicators in the SentinelOne console")
    if bare_ids:
        label = (
            "SentinelOne v2.0 indicator ids"
            if threat.api_version == "2.0"
            else "Indicator ids without a description"
        )
        ids = listed([str(i) for i in bare_ids], quote=False, shown=MAX_INDICATOR_IDS)
        lines.append(f"{label}: {ids}")
    return lines or ["SentinelOne reported no indicators."]


def _indicator_line(category: str | None, description: str | None) -> str | None:
    shown = [part for part in (clean(category, 60), clean(description, 200)) if part]
    return f"- {': '.join(shown)}" if shown else None


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

    sections = list(dict.fromkeys(section for section, _ in lines))
    # Bottom up, but the sections that grow with the threat go before the summary and
    # the identifiers do.
    order = sorted(
        range(len(lines)), key=lambda index: (lines[index][0] in _KEPT_LAST, -index)
    )
    gone: set[int] = set()
    dropped: set[str] = set()
    for index in order:
        if index in gone:
            continue
        section = lines[index][0]
        gone.add(index)
        dropped.add(section)
        # A heading whose lines are all gone would announce a section that is not there.
        gone.update(_empty_frame(lines, gone, section))
        note = (
            "[Shortened to fit Autotask: part of "
            + ", ".join(section for section in sections if section in dropped)
            + " left out; see SentinelOne for the rest.]"
        )
        kept = (line for at, (_, line) in enumerate(lines) if at not in gone)
        text = "\n".join([*kept, note])
        if utf16_len(text) <= limit:
            return text
    return clip_utf16(text, limit)


def _empty_frame(lines: list[tuple[str, str]], gone: set[int], name: str) -> list[int]:
    """The heading and blank line of a section none of whose body is left."""
    frame = [
        at
        for at, (section, line) in enumerate(lines)
        if section == name and at not in gone
    ]
    if all(lines[at][1] == "" or lines[at][1] == f"== {name} ==" for at in frame):
        return frame
    return []


def _pairs(*pairs: tuple[str, object]) -> str:
    shown = [f"{label}: {clean(value, 100)}" for label, value in pairs if value]
    return " | ".join(shown)


def _lower(value: str | None) -> str:
    return (value or "").strip().lower()


def _words(value: str | None) -> str:
    return clean(value, 40).replace("_", " ")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def join_lines(lines: Iterable[str]) -> str:
    """Join lines the way the description does, for callers that build notes."""
    return "\n".join(lines)
