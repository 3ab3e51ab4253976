"""The MITRE ATT&CK picture of a threat, built from the technique ids SentinelOne sent.

SentinelOne sends technique ids as free text under `indicators[].tactics[]`; they
are validated, de-duplicated, mapped past revoked ids to their successors, and
enriched with names, tactics in kill-chain order and the mitigations that cover
them.

ATT&CK lists many techniques under several tactics (T1078 Valid Accounts under four),
but the tactic SentinelOne reported a technique under is what it observed. Each
technique is therefore placed under one tactic: the earliest, in kill-chain order, of
those SentinelOne reported it under, or else its earliest ATT&CK tactic. How far the
attack got is judged from reported tactics alone whenever SentinelOne reported any.

A tactic SentinelOne reported with no technique (or with none ATT&CK knows) is still
what it observed: it is kept, shown and counted for how far the attack got. A name
that is not an Enterprise tactic, such as a technique name given as a tactic, is not.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from s1_autotask.attack.data import AttackData, Tactic, Technique, get_attack_data
from s1_autotask.attack.inference import inferred_techniques

if TYPE_CHECKING:
    from s1_autotask.sentinelone.models import Threat


TECHNIQUE_ID = re.compile(r"T\d{4}(?:\.\d{3})?", re.ASCII)
# A ticket lists a handful of mitigations, not ATT&CK's whole catalogue.
MAX_MITIGATIONS = 5
# From this many techniques up, a mitigation that covers only one of them is left out
# when others cover more: it is advice about a detail, not about the threat.
_MANY_TECHNIQUES = 3

TacticBasis = Literal["reported", "attack"]


class TechniqueFinding(BaseModel):
    """One ATT&CK technique seen on a threat.

    ``tactics`` holds every tactic ATT&CK lists it under, ``reported_tactics`` those
    SentinelOne reported it under, and ``tactic`` the one the ticket shows it under.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    url: str
    tactics: list[str]
    reported_id: str
    tactic: str | None = None
    reported_tactics: list[str] = []
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
    """Techniques, tactics and mitigations of one threat, in ATT&CK terms.

    ``tactics`` are the tactics the ticket shows, in kill-chain order: those the
    techniques are shown under and ``tactics_without_techniques``, the ones SentinelOne
    reported without a technique that ATT&CK knows.
    ``furthest_tactic_basis`` says where the furthest tactic comes from: "reported"
    when SentinelOne reported it, "attack" when SentinelOne reported no tactic for any
    technique and ATT&CK's tactics of the techniques were used instead.
    ``furthest_tactic_techniques`` are the techniques that reach it.
    """

    model_config = ConfigDict(frozen=True)

    techniques: list[TechniqueFinding]
    unknown_ids: list[str]
    invalid_ids: list[str]
    tactics: list[str]
    tactics_without_techniques: list[str] = []
    furthest_tactic: str | None
    furthest_tactic_basis: TacticBasis | None = None
    furthest_tactic_techniques: list[str] = []
    mitigations: list[MitigationFinding]
    attack_version: str

    def ranked_techniques(self) -> list[TechniqueFinding]:
        """The techniques, most telling first, for a reader who sees only the top few.

        Techniques SentinelOne reported under a tactic come first, then those it
        reported without one, then inferred ones. Within each, the first technique of
        every tactic in kill-chain order comes before the second of any: a short list
        then spans every tactic reached instead of a few in depth.
        """
        rank = {tactic: index for index, tactic in enumerate(self.tactics)}
        depth: Counter[tuple[int, str | None]] = Counter()
        keys = []
        for seen, finding in enumerate(self.techniques):
            tier = 2 if finding.inferred else 0 if finding.reported_tactics else 1
            group = (tier, finding.tactic)
            tactic_rank = rank.get(finding.tactic or "", len(rank))
            keys.append((tier, depth[group], tactic_rank, seen))
            depth[group] += 1
        order = sorted(range(len(keys)), key=keys.__getitem__)
        return [self.techniques[index] for index in order]


def analyze_techniques(
    reported_ids: Iterable[str],
    *,
    reported_tactics: Iterable[tuple[str, str]] = (),
    bare_tactics: Iterable[str] = (),
    inferred: Iterable[tuple[str, str]] = (),
    data: AttackData | None = None,
) -> AttackAnalysis:
    """Analyse technique ids as reported, in the order first seen.

    ``reported_tactics`` holds (technique id, tactic name) pairs as SentinelOne
    reported them, and ``bare_tactics`` the tactic names it reported without any
    technique; names that are not Enterprise tactics are ignored. ``inferred`` holds
    (technique id, why) pairs implied by the threat rather than reported; each is
    added, marked as inferred, unless it was reported too.
    """
    if data is None:
        data = get_attack_data()
    valid_ids, invalid_ids = _split_reported(reported_ids)
    # Real exports repeat the same indicators hundreds of times: look each pair and
    # name up once.
    reported_tactics = list(dict.fromkeys(reported_tactics))

    resolved: dict[str, tuple[Technique, str]] = {}
    unknown_ids = []
    for reported_id in valid_ids:
        technique = data.resolve(reported_id)
        if technique is None:
            unknown_ids.append(reported_id)
        elif technique.id not in resolved:
            resolved[technique.id] = (technique, reported_id)
    observed = _observed_tactics(reported_tactics, data)

    findings = [
        _finding(tech, reported, observed.get(tech.id, []), data)
        for tech, reported in resolved.values()
    ]
    for technique_id, why in inferred:
        technique = data.resolve(technique_id)
        if technique is not None and technique.id not in resolved:
            resolved[technique.id] = (technique, technique_id)
            findings.append(
                _finding(technique, technique_id, [], data).model_copy(
                    update={"inferred": True, "inferred_because": why}
                )
            )

    without_techniques = _without_techniques(
        dict.fromkeys([*(name for _, name in reported_tactics), *bare_tactics]),
        findings,
        data,
    )
    tactics = _in_kill_chain_order(
        [
            *(finding.tactic for finding in findings if finding.tactic),
            *without_techniques,
        ],
        data,
    )
    furthest, basis, reaching = _furthest_tactic(findings, without_techniques, data)
    techniques = [technique for technique, _ in resolved.values()]
    return AttackAnalysis(
        techniques=findings,
        unknown_ids=unknown_ids,
        invalid_ids=invalid_ids,
        tactics=tactics,
        tactics_without_techniques=without_techniques,
        furthest_tactic=furthest,
        furthest_tactic_basis=basis,
        furthest_tactic_techniques=reaching,
        mitigations=_rank_mitigations(techniques, data),
        attack_version=data.version,
    )


def analyze_threat(threat: Threat, data: AttackData | None = None) -> AttackAnalysis:
    """Analyse the technique ids of a SentinelOne threat's indicators."""
    # Unknown and invalid ids are reported by the caller, which knows where its logs
    # are read (the flow run's log in the Prefect UI).
    rules = inferred_techniques(threat.classification)
    reported_tactics = [
        (technique.name, tactic.name)
        for indicator in threat.indicators
        for tactic in indicator.tactics
        if tactic.name
        for technique in tactic.techniques
    ]
    bare_tactics = [
        tactic.name
        for indicator in threat.indicators
        for tactic in indicator.tactics
        if tactic.name and not tactic.techniques
    ]
    return analyze_techniques(
        threat.technique_ids,
        reported_tactics=reported_tactics,
        bare_tactics=bare_tactics,
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


def _observed_tactics(
    pairs: Iterable[tuple[str, str]], data: AttackData
) -> dict[str, list[Tactic]]:
    """The Enterprise tactics SentinelOne reported each technique under, by its id."""
    observed: dict[str, list[Tactic]] = {}
    for technique_id, tactic_name in pairs:
        technique = data.resolve(technique_id)
        # Free text such as a technique name given as a tactic is not an
        # observation of a tactic; the technique then falls back to ATT&CK's.
        tactic = data.tactic_named(tactic_name)
        if technique is not None and tactic is not None:
            observed.setdefault(technique.id, []).append(tactic)
    return {
        technique_id: data.order_tactics(tactics)
        for technique_id, tactics in observed.items()
    }


def _without_techniques(
    names: Iterable[str], findings: list[TechniqueFinding], data: AttackData
) -> list[str]:
    """Reported Enterprise tactics that no reported technique was placed under."""
    # A tactic whose techniques were all malformed or unknown ids counts here too:
    # the tactic is still what SentinelOne observed.
    placed = {tactic for finding in findings for tactic in finding.reported_tactics}
    reported = _in_kill_chain_order(names, data)
    return [tactic for tactic in reported if tactic not in placed]


def _finding(
    technique: Technique,
    reported_id: str,
    reported_tactics: list[Tactic],
    data: AttackData,
) -> TechniqueFinding:
    attack_tactics = data.order_tactics(technique.tactics)
    candidates = reported_tactics or attack_tactics
    shown_under = candidates[0] if candidates else None
    return TechniqueFinding(
        id=technique.id,
        name=technique.name,
        url=technique.url,
        tactics=[tactic.name for tactic in attack_tactics],
        reported_id=reported_id,
        tactic=shown_under.name if shown_under else None,
        reported_tactics=[tactic.name for tactic in reported_tactics],
        deprecated=technique.deprecated or technique.revoked,
    )


def _in_kill_chain_order(names: Iterable[str], data: AttackData) -> list[str]:
    tactics = (data.tactic_named(name) for name in names)
    return [tactic.name for tactic in data.order_tactics(t for t in tactics if t)]


def _furthest_tactic(
    findings: list[TechniqueFinding], without_techniques: list[str], data: AttackData
) -> tuple[str | None, TacticBasis | None, list[str]]:
    """The latest kill-chain tactic reached, where that comes from, and who reached it.

    Reported tactics decide when there are any, with or without a technique; ATT&CK
    lists nearly every persistence technique under Privilege Escalation too, and
    taking every tactic it allows would claim more than was observed. Without
    reported tactics, each technique counts under the one tactic it is shown under,
    its earliest in ATT&CK. No technique reaches a tactic reported without one.
    """
    basis: TacticBasis = "reported"
    reach = {finding.id: finding.reported_tactics for finding in findings}
    if not any(reach.values()) and not without_techniques:
        basis = "attack"
        reach = {finding.id: [finding.tactic] for finding in findings if finding.tactic}
    reached = _in_kill_chain_order(
        [*(t for ts in reach.values() for t in ts), *without_techniques], data
    )
    if not reached:
        return None, None, []
    furthest = reached[-1]
    reaching = [tid for tid, tactics in reach.items() if furthest in tactics]
    return furthest, basis, reaching


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

    # Most of the threat's techniques covered first. Among equals, the mitigation
    # ATT&CK maps to fewer techniques overall comes first: User Training or Audit
    # apply to almost anything and tell the analyst little about this threat.
    ranked = sorted(
        mitigations,
        key=lambda mid: (-len(covers[mid]), data.mitigation_reach(mid), mid),
    )
    if len(techniques) >= _MANY_TECHNIQUES and any(len(c) > 1 for c in covers.values()):
        ranked = [mid for mid in ranked if len(covers[mid]) > 1]
    return [
        MitigationFinding(
            id=mid,
            name=mitigations[mid].name,
            url=mitigations[mid].url,
            covers=covers[mid],
        )
        for mid in ranked[:MAX_MITIGATIONS]
    ]
