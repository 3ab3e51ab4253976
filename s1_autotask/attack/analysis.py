"""The MITRE ATT&CK picture of a threat, built from the technique ids SentinelOne sent.

SentinelOne sends technique ids as free text under `indicators[].tactics[]`; they
are validated, de-duplicated, mapped past revoked ids to their successors, and
enriched with names, tactics in kill-chain order and the mitigations that cover
them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from s1_autotask.attack.data import AttackData, Technique, get_attack_data
from s1_autotask.attack.inference import inferred_techniques

if TYPE_CHECKING:
    from s1_autotask.sentinelone.models import Threat


TECHNIQUE_ID = re.compile(r"T\d{4}(?:\.\d{3})?", re.ASCII)


class TechniqueFinding(BaseModel):
    """One ATT&CK technique seen on a threat."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    url: str
    tactics: list[str]
    reported_id: str
    inferred: bool = False
    inferred_because: str | None = None
    deprecated: bool = False


class MitigationFinding(BaseModel):
    """An ATT&CK mitigation and the threat's technique ids that it covers."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    url: str
    covers: list[str]


class AttackAnalysis(BaseModel):
    """Techniques, tactics and mitigations of one threat, in ATT&CK terms."""

    model_config = ConfigDict(frozen=True)

    techniques: list[TechniqueFinding]
    unknown_ids: list[str]
    invalid_ids: list[str]
    tactics: list[str]
    furthest_tactic: str | None
    mitigations: list[MitigationFinding]
    attack_version: str


def analyze_techniques(
    reported_ids: Iterable[str],
    *,
    inferred: Iterable[tuple[str, str]] = (),
    data: AttackData | None = None,
) -> AttackAnalysis:
    """Analyse technique ids as reported, in the order first seen.

    ``inferred`` holds (technique id, why) pairs implied by the threat rather than
    reported; each is added, marked as inferred, unless it was reported too.
    """
    if data is None:
        data = get_attack_data()
    valid_ids, invalid_ids = _split_reported(reported_ids)

    resolved: dict[str, tuple[Technique, str]] = {}
    unknown_ids = []
    for reported_id in valid_ids:
        technique = data.resolve(reported_id)
        if technique is None:
            unknown_ids.append(reported_id)
        elif technique.id not in resolved:
            resolved[technique.id] = (technique, reported_id)

    findings = [_finding(tech, reported) for tech, reported in resolved.values()]
    for technique_id, why in inferred:
        technique = data.resolve(technique_id)
        if technique is not None and technique.id not in resolved:
            resolved[technique.id] = (technique, technique_id)
            findings.append(
                _finding(technique, technique_id).model_copy(
                    update={"inferred": True, "inferred_because": why}
                )
            )

    techniques = [technique for technique, _ in resolved.values()]
    tactics = [
        tactic.name
        for tactic in data.order_tactics(t for tech in techniques for t in tech.tactics)
    ]
    return AttackAnalysis(
        techniques=findings,
        unknown_ids=unknown_ids,
        invalid_ids=invalid_ids,
        tactics=tactics,
        furthest_tactic=tactics[-1] if tactics else None,
        mitigations=_rank_mitigations(techniques, data),
        attack_version=data.version,
    )


def analyze_threat(threat: Threat, data: AttackData | None = None) -> AttackAnalysis:
    """Analyse the technique ids of a SentinelOne threat's indicators."""
    # Unknown and invalid ids are reported by the caller, which knows where its logs
    # are read (the flow run's log in the Prefect UI).
    rules = inferred_techniques(threat.classification)
    return analyze_techniques(
        threat.technique_ids,
        inferred=[(rule.technique_id, rule.why) for rule in rules],
        data=data,
    )


def _split_reported(reported_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    valid: dict[str, None] = {}
    invalid: dict[str, None] = {}
    for raw in reported_ids:
        candidate = raw.strip().upper()
        # An empty name carries no id worth reporting back to anyone.
        if not candidate:
            continue
        if TECHNIQUE_ID.fullmatch(candidate):
            valid[candidate] = None
        else:
            invalid[raw.strip()] = None
    return list(valid), list(invalid)


def _finding(technique: Technique, reported_id: str) -> TechniqueFinding:
    return TechniqueFinding(
        id=technique.id,
        name=technique.name,
        url=technique.url,
        tactics=[tactic.name for tactic in technique.tactics],
        reported_id=reported_id,
        deprecated=technique.deprecated or technique.revoked,
    )


def _rank_mitigations(
    techniques: list[Technique], data: AttackData
) -> list[MitigationFinding]:
    mitigations = {}
    covers: dict[str, list[str]] = {}
    for technique in techniques:
        found = data.mitigations_for(technique.id)
        # ATT&CK maps many mitigations only to the parent; use them as a fallback.
        if not found and technique.parent_id is not None:
            found = data.mitigations_for(technique.parent_id)
        for mitigation in found:
            mitigations[mitigation.id] = mitigation
            covers.setdefault(mitigation.id, []).append(technique.id)

    ranked = sorted(mitigations, key=lambda mid: (-len(covers[mid]), mid))
    return [
        MitigationFinding(
            id=mid,
            name=mitigations[mid].name,
            url=mitigations[mid].url,
            covers=covers[mid],
        )
        for mid in ranked
    ]
