"""The MITRE ATT&CK section of the ticket description, and the furthest-tactic line.

The section is bounded on its own, so a threat reporting hundreds of techniques
cannot crowd the identifiers out of the description: it lists the most telling
techniques, each once under the tactic it was shown under, and one line names and
counts the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from s1_autotask.text import clean, utf16_len

if TYPE_CHECKING:
    from s1_autotask.attack.analysis import AttackAnalysis, TechniqueFinding

__all__ = [
    "ATTACK_BUDGET",
    "MAX_MORE_TECHNIQUES",
    "MAX_TECHNIQUES",
    "attack_section",
    "furthest_line",
    "listed",
]

# Twenty-five techniques cover every tactic of a wide attack. The budget, in UTF-16
# units for the whole ATT&CK section, lists fewer when their lines run long (each
# reported under many tactics), and with the capped indicators and mitigations leaves
# room for the summary and the identifiers.
MAX_TECHNIQUES = 25
ATTACK_BUDGET = 3600
# Ids named on the line that counts the techniques left out.
MAX_MORE_TECHNIQUES = 15


def furthest_line(analysis: AttackAnalysis) -> str:
    """The summary line naming the furthest tactic reached, and on what evidence."""
    if analysis.furthest_tactic is None:
        return ""
    by_id = {finding.id: finding for finding in analysis.techniques}
    reaching = [by_id[tid] for tid in analysis.furthest_tactic_techniques]
    if not reaching:
        return (
            f"Furthest ATT&CK tactic reached: {analysis.furthest_tactic} "
            "(as SentinelOne reported, without a technique)"
        )
    names = ", ".join(
        ("inferred " if finding.inferred else "") + f"{finding.id} {finding.name}"
        for finding in reaching[:3]
    )
    if len(reaching) > 3:
        names += f" and {len(reaching) - 3} more"
    if analysis.furthest_tactic_basis == "reported":
        why = f"as SentinelOne reported for {names}"
    else:
        why = f"SentinelOne reported no tactic; ATT&CK's tactic for {names}"
    return f"Furthest ATT&CK tactic reached: {analysis.furthest_tactic} ({why})"


def attack_section(analysis: AttackAnalysis) -> list[str]:
    """The section's lines: each technique once under its tactic, within budget."""
    ranked = analysis.ranked_techniques()
    shown = min(len(ranked), MAX_TECHNIQUES)
    lines = _attack_lines(analysis, ranked[:shown], ranked[shown:])
    # Techniques are listed most telling first; over budget, the least telling one
    # moves to the line that counts the rest, until the section fits.
    while shown > 0 and utf16_len("\n".join(lines)) > ATTACK_BUDGET:
        shown -= 1
        lines = _attack_lines(analysis, ranked[:shown], ranked[shown:])
    return lines


def _attack_lines(
    analysis: AttackAnalysis,
    shown: list[TechniqueFinding],
    left_out: list[TechniqueFinding],
) -> list[str]:
    lines: list[str] = []
    reported = [finding for finding in analysis.techniques if not finding.inferred]
    if not reported and (analysis.unknown_ids or analysis.invalid_ids):
        lines.append(
            "None of the technique ids SentinelOne reported is an ATT&CK technique."
        )
    elif not reported and not analysis.tactics_without_techniques:
        lines.append(
            "SentinelOne reported no ATT&CK techniques for this threat "
            "(common for static and custom-rule detections)."
        )
    # Each technique once, under the tactic it was shown under by the analysis; its
    # other tactics are named on its line.
    shown_ids = {finding.id for finding in shown}
    bare = set(analysis.tactics_without_techniques)
    groups: list[str | None] = [*analysis.tactics, None]
    for tactic in groups:
        members = [
            f for f in analysis.techniques if f.tactic == tactic and f.id in shown_ids
        ]
        if members:
            lines.append(_heading(tactic, bare))
            lines.extend(f"  - {_technique(finding)}" for finding in members)
        elif tactic in bare:
            lines.append(f"{tactic}: reported by SentinelOne without a technique")
    if left_out:
        lines.append(_left_out(analysis, left_out))
    if analysis.unknown_ids:
        ids = listed(analysis.unknown_ids, quote=False)
        lines.append(f"Not in ATT&CK {analysis.attack_version}: {ids}")
    if analysis.invalid_ids:
        lines.append(f"Not technique ids, ignored: {listed(analysis.invalid_ids)}")
    return lines


def _left_out(analysis: AttackAnalysis, left_out: list[TechniqueFinding]) -> str:
    """One bounded line naming the next most telling techniques and counting all."""
    # Named in the order the section lists techniques, so the ids read as a list.
    rank = {tactic: at for at, tactic in enumerate(analysis.tactics)}
    named = sorted(
        left_out[:MAX_MORE_TECHNIQUES],
        key=lambda finding: rank.get(finding.tactic or "", len(rank)),
    )
    ids = ", ".join(finding.id for finding in named)
    if len(left_out) > MAX_MORE_TECHNIQUES:
        ids += ", …"
    noun = "technique" if len(left_out) == 1 else "techniques"
    return f"- and {len(left_out)} more {noun}: {ids} (see the SentinelOne console)"


def _heading(tactic: str | None, bare: set[str]) -> str:
    if tactic is None:
        return "No ATT&CK tactic:"
    if tactic in bare:
        return f"{tactic} (also reported by SentinelOne without a technique):"
    return f"{tactic}:"


def listed(values: list[str], *, quote: bool = True, shown: int = 10) -> str:
    """A short list for one line: the first few values, then how many more."""
    items = [repr(clean(v, 20)) if quote else clean(v, 20) for v in values[:shown]]
    more = len(values) - shown
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def _technique(finding: TechniqueFinding) -> str:
    text = f"{finding.id} {finding.name} {finding.url}"
    also_reported = [t for t in finding.reported_tactics if t != finding.tactic]
    also_attack = [
        t
        for t in finding.tactics
        if t != finding.tactic and t not in finding.reported_tactics
    ]
    also = "; ".join(
        part
        for part in (
            f"also reported as {', '.join(also_reported)}" if also_reported else "",
            f"also {', '.join(also_attack)} in ATT&CK" if also_attack else "",
        )
        if part
    )
    if also:
        text += f" ({also})"
    if finding.reported_id != finding.id:
        text += f" (reported as {finding.reported_id}, which ATT&CK replaced)"
    if finding.deprecated:
        text += " (deprecated in ATT&CK)"
    if finding.inferred:
        text += f" (inferred, not reported: {finding.inferred_because})"
    return text
