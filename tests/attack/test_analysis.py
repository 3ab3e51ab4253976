"""Tests for the ATT&CK analysis of reported technique ids, on the real v18.1 data."""

import itertools

import pytest

from s1_autotask.attack import (
    AttackAnalysis,
    analyze_techniques,
    analyze_threat,
    get_attack_data,
)
from s1_autotask.attack.analysis import MAX_MITIGATIONS


def _finding_ids(analysis: AttackAnalysis) -> list[str]:
    return [finding.id for finding in analysis.techniques]


class TestTechniqueFindings:
    """Names, links and tactics of the techniques a threat reports."""

    def test_technique_gets_its_attack_name(self) -> None:
        """T1059 is named as ATT&CK names it."""
        analysis = analyze_techniques(["T1059"])

        assert analysis.techniques[0].name == "Command and Scripting Interpreter"

    def test_sub_technique_name_includes_its_parent(self) -> None:
        """T1204.002 reads 'User Execution: Malicious File'."""
        analysis = analyze_techniques(["T1204.002"])

        assert analysis.techniques[0].name == "User Execution: Malicious File"

    def test_sub_technique_has_name_url_and_tactics_in_kill_chain_order(self) -> None:
        """T1053.005 links to its ATT&CK page and lists its three tactics."""
        analysis = analyze_techniques(["T1053.005"])

        finding = analysis.techniques[0]
        assert finding.name == "Scheduled Task/Job: Scheduled Task"
        assert finding.url == "https://attack.mitre.org/techniques/T1053/005/"
        assert finding.tactics == ["Execution", "Persistence", "Privilege Escalation"]
        assert finding.reported_id == "T1053.005"
        assert not finding.deprecated

    def test_ids_are_normalised_before_lookup(self) -> None:
        """A lower-case id with surrounding spaces is found and reported clean."""
        analysis = analyze_techniques([" t1059.001 "])

        assert _finding_ids(analysis) == ["T1059.001"]
        assert analysis.techniques[0].reported_id == "T1059.001"


class TestTactics:
    """Each technique under one tactic, tactics in kill-chain order."""

    def test_tactics_span_the_kill_chain_in_order(self) -> None:
        """Unreported tactics: each technique under its earliest ATT&CK tactic."""
        analysis = analyze_techniques(["T1486", "T1082", "T1053.005", "T1566.001"])

        assert analysis.tactics == [
            "Initial Access",
            "Execution",
            "Discovery",
            "Impact",
        ]
        assert analysis.furthest_tactic == "Impact"
        assert analysis.furthest_tactic_basis == "attack"
        assert analysis.furthest_tactic_techniques == ["T1486"]

    def test_technique_is_placed_under_the_tactic_sentinelone_reported(self) -> None:
        """T1078 is in four ATT&CK tactics; reported as Persistence, it sits there."""
        analysis = analyze_techniques(
            ["T1078"], reported_tactics=[("T1078", "Persistence")]
        )

        finding = analysis.techniques[0]
        assert finding.tactic == "Persistence"
        assert finding.reported_tactics == ["Persistence"]
        assert finding.tactics == [
            "Initial Access",
            "Persistence",
            "Privilege Escalation",
            "Defense Evasion",
        ]
        assert analysis.tactics == ["Persistence"]
        assert analysis.furthest_tactic == "Persistence"
        assert analysis.furthest_tactic_basis == "reported"

    def test_several_reported_tactics_place_it_under_the_earliest(self) -> None:
        """Reported as Privilege Escalation and Persistence: shown under Persistence."""
        analysis = analyze_techniques(
            ["T1547.001"],
            reported_tactics=[
                ("T1547.001", "privilege  escalation"),
                ("t1547.001", "Persistence"),
            ],
        )

        finding = analysis.techniques[0]
        assert finding.tactic == "Persistence"
        assert finding.reported_tactics == ["Persistence", "Privilege Escalation"]
        assert analysis.furthest_tactic == "Privilege Escalation"

    def test_furthest_tactic_ignores_attack_tactics_when_some_were_reported(
        self,
    ) -> None:
        """An unreported technique's ATT&CK tactics do not push the furthest on."""
        analysis = analyze_techniques(
            ["T1566.001", "T1486"], reported_tactics=[("T1566.001", "Initial Access")]
        )

        assert analysis.tactics == ["Initial Access", "Impact"]
        assert analysis.furthest_tactic == "Initial Access"
        assert analysis.furthest_tactic_basis == "reported"
        assert analysis.furthest_tactic_techniques == ["T1566.001"]

    def test_a_reported_name_that_is_not_a_tactic_is_ignored(self) -> None:
        """'System Service Discovery' is a technique name, not a tactic."""
        analysis = analyze_techniques(
            ["T1082"], reported_tactics=[("T1082", "System Service Discovery")]
        )

        assert analysis.techniques[0].tactic == "Discovery"
        assert analysis.techniques[0].reported_tactics == []
        assert analysis.furthest_tactic_basis == "attack"

    def test_reported_tactic_follows_a_revoked_id_to_its_successor(self) -> None:
        """T1086 reported under Execution places T1059.001 under Execution."""
        analysis = analyze_techniques(
            ["T1086"], reported_tactics=[("T1086", "Execution")]
        )

        assert analysis.techniques[0].id == "T1059.001"
        assert analysis.techniques[0].reported_tactics == ["Execution"]

    def test_inferred_technique_takes_its_earliest_attack_tactic(self) -> None:
        """A keylogger's T1056.001 sits under Credential Access, before Collection."""
        analysis = analyze_techniques(
            [], inferred=[("T1056.001", "a keylogger records keystrokes")]
        )

        finding = analysis.techniques[0]
        assert finding.inferred
        assert finding.tactic == "Credential Access"
        assert analysis.furthest_tactic == "Credential Access"
        assert analysis.furthest_tactic_basis == "attack"

    def test_no_techniques_give_no_tactics(self) -> None:
        """A threat without techniques has no tactic and no furthest tactic."""
        analysis = analyze_techniques([])

        assert analysis.techniques == []
        assert analysis.tactics == []
        assert analysis.furthest_tactic is None
        assert analysis.furthest_tactic_basis is None
        assert analysis.mitigations == []
        assert analysis.attack_version == "18.1"


class TestTacticsWithoutTechniques:
    """A tactic SentinelOne reports without a technique still counts as reached."""

    def test_a_bare_tactic_is_kept_and_is_the_furthest_reached(self) -> None:
        """Lateral Movement reported alone: shown and furthest, reached by nothing."""
        analysis = analyze_techniques([], bare_tactics=["lateral  movement"])

        assert analysis.techniques == []
        assert analysis.tactics == ["Lateral Movement"]
        assert analysis.tactics_without_techniques == ["Lateral Movement"]
        assert analysis.furthest_tactic == "Lateral Movement"
        assert analysis.furthest_tactic_basis == "reported"
        assert analysis.furthest_tactic_techniques == []

    def test_a_bare_tactic_past_the_techniques_pushes_the_furthest_on(self) -> None:
        """Initial Access with a technique, Impact without: Impact is furthest."""
        analysis = analyze_techniques(
            ["T1566.001"],
            reported_tactics=[("T1566.001", "Initial Access")],
            bare_tactics=["Impact", "Execution", "Impact"],
        )

        assert analysis.tactics == ["Initial Access", "Execution", "Impact"]
        assert analysis.tactics_without_techniques == ["Execution", "Impact"]
        assert analysis.furthest_tactic == "Impact"
        assert analysis.furthest_tactic_techniques == []

    def test_a_bare_tactic_outweighs_attack_tactics_of_unplaced_techniques(
        self,
    ) -> None:
        """Reported tactics decide, so T1486's ATT&CK tactic Impact does not count."""
        analysis = analyze_techniques(["T1486"], bare_tactics=["Discovery"])

        assert analysis.techniques[0].tactic == "Impact"
        assert analysis.tactics == ["Discovery", "Impact"]
        assert analysis.furthest_tactic == "Discovery"
        assert analysis.furthest_tactic_basis == "reported"

    def test_a_tactic_also_reported_with_a_technique_is_not_bare(self) -> None:
        """Lateral Movement reported once empty and once with T1021: not bare."""
        analysis = analyze_techniques(
            ["T1021"],
            reported_tactics=[("T1021", "Lateral Movement")],
            bare_tactics=["Lateral Movement"],
        )

        assert analysis.tactics_without_techniques == []
        assert analysis.furthest_tactic_techniques == ["T1021"]

    def test_a_tactic_whose_technique_ids_are_all_bad_counts_as_bare(self) -> None:
        """Defense Evasion reported with '123' and T9999 only is still observed."""
        analysis = analyze_techniques(
            ["123", "T9999"],
            reported_tactics=[("123", "Defense Evasion"), ("T9999", "Defense Evasion")],
        )

        assert analysis.tactics_without_techniques == ["Defense Evasion"]
        assert analysis.furthest_tactic == "Defense Evasion"

    def test_a_name_that_is_not_a_tactic_is_still_ignored(self) -> None:
        """'System Service Discovery' without techniques reaches nothing."""
        analysis = analyze_techniques([], bare_tactics=["System Service Discovery"])

        assert analysis.tactics == []
        assert analysis.tactics_without_techniques == []
        assert analysis.furthest_tactic is None


class TestRankedTechniques:
    """Which techniques a reader who sees only a few should see first."""

    def test_reported_tactics_then_attack_only_then_inferred(self) -> None:
        """First seen matters less than how SentinelOne reported a technique."""
        analysis = analyze_techniques(
            ["T1082", "T1059"],
            reported_tactics=[("T1059", "Execution")],
            inferred=[("T1486", "ransomware encrypts files")],
        )

        ranked = [finding.id for finding in analysis.ranked_techniques()]
        assert ranked == ["T1059", "T1082", "T1486"]

    def test_one_technique_per_tactic_before_a_second_of_any(self) -> None:
        """Three Execution techniques and one Impact: Impact comes second."""
        analysis = analyze_techniques(
            ["T1059", "T1203", "T1204.002", "T1486"],
            reported_tactics=[
                ("T1059", "Execution"),
                ("T1203", "Execution"),
                ("T1204.002", "Execution"),
                ("T1486", "Impact"),
            ],
        )

        ranked = [finding.id for finding in analysis.ranked_techniques()]
        assert ranked == ["T1059", "T1486", "T1203", "T1204.002"]
        assert sorted(ranked) == sorted(_finding_ids(analysis))


class TestRevokedAndDeprecated:
    """Ids that older consoles still send."""

    def test_revoked_id_is_replaced_by_its_successor(self) -> None:
        """T1086 (PowerShell) became T1059.001 and keeps the reported id."""
        analysis = analyze_techniques(["T1086"])

        finding = analysis.techniques[0]
        assert finding.id == "T1059.001"
        assert finding.reported_id == "T1086"
        assert finding.name == "Command and Scripting Interpreter: PowerShell"
        assert not finding.deprecated

    @pytest.mark.parametrize(
        ("reported", "successor"),
        [("T1193", "T1566.001"), ("T1060", "T1547.001"), ("T1088", "T1548.002")],
    )
    def test_other_revoked_ids_map_to_their_successors(
        self, reported: str, successor: str
    ) -> None:
        """Spearphishing, Run Keys and UAC bypass map to their sub-techniques."""
        analysis = analyze_techniques([reported])

        assert _finding_ids(analysis) == [successor]

    def test_revoked_successor_that_is_also_revoked_is_followed(self) -> None:
        """T1150 was revoked by T1547.011, itself revoked by T1647."""
        analysis = analyze_techniques(["T1150"])

        finding = analysis.techniques[0]
        assert finding.id == "T1647"
        assert finding.name == "Plist File Modification"
        assert finding.reported_id == "T1150"

    def test_revoked_id_and_its_successor_give_one_finding(self) -> None:
        """T1086 and T1059.001 together are one technique, first report kept."""
        analysis = analyze_techniques(["T1086", "T1059.001"])

        assert _finding_ids(analysis) == ["T1059.001"]
        assert analysis.techniques[0].reported_id == "T1086"

    def test_deprecated_id_without_successor_is_kept_and_flagged(self) -> None:
        """T1064 Scripting has no successor: it stays, marked deprecated."""
        analysis = analyze_techniques(["T1064"])

        finding = analysis.techniques[0]
        assert finding.id == "T1064"
        assert finding.name == "Scripting"
        assert finding.deprecated
        assert finding.tactics == ["Execution", "Defense Evasion"]


class TestReportedIdProblems:
    """Ids that are malformed, unknown or repeated."""

    def test_malformed_id_is_listed_as_invalid(self) -> None:
        """The placeholder '123' from a real sample is reported, not looked up."""
        analysis = analyze_techniques(["123", "T7", "T1059"])

        assert analysis.invalid_ids == ["123", "T7"]
        assert _finding_ids(analysis) == ["T1059"]

    def test_well_formed_id_missing_from_attack_is_listed_as_unknown(self) -> None:
        """T9999 and T1059.999 look right but ATT&CK has neither."""
        analysis = analyze_techniques(["T9999", "T1059.999"])

        assert analysis.unknown_ids == ["T9999", "T1059.999"]
        assert analysis.techniques == []

    def test_duplicates_are_removed_in_first_seen_order(self) -> None:
        """Repeats across tactics and indicators give one finding each."""
        analysis = analyze_techniques(
            ["T1204.002", "T1059", "t1204.002", "T1059", "123", "123", "T9999", "T9999"]
        )

        assert _finding_ids(analysis) == ["T1204.002", "T1059"]
        assert analysis.invalid_ids == ["123"]
        assert analysis.unknown_ids == ["T9999"]

    def test_blank_names_are_ignored(self) -> None:
        """An empty technique name is neither a finding nor an invalid id."""
        analysis = analyze_techniques(["", "  ", "T1059"])

        assert analysis.invalid_ids == []
        assert _finding_ids(analysis) == ["T1059"]


class TestMitigations:
    """Mitigations that cover the threat's techniques, most useful first."""

    def test_execution_prevention_covers_malicious_file(self) -> None:
        """ATT&CK maps M1038 Execution Prevention to T1204.002."""
        analysis = analyze_techniques(["T1204.002"])

        by_id = {mitigation.id: mitigation for mitigation in analysis.mitigations}
        assert by_id["M1038"].name == "Execution Prevention"
        assert by_id["M1038"].url == "https://attack.mitre.org/mitigations/M1038/"
        assert by_id["M1038"].covers == ["T1204.002"]

    def test_mitigations_are_ranked_by_techniques_covered_then_id(self) -> None:
        """M1038 covers all three techniques and leads; the rest follow by coverage."""
        analysis = analyze_techniques(["T1059", "T1204.002", "T1059.001"])

        ranking = [len(m.covers) for m in analysis.mitigations]
        assert analysis.mitigations[0].id == "M1038"
        assert analysis.mitigations[0].covers == ["T1059", "T1204.002", "T1059.001"]
        assert ranking == sorted(ranking, reverse=True)
        assert len({m.id for m in analysis.mitigations}) == len(ranking)

    def test_ties_go_to_the_mitigation_attack_maps_to_fewer_techniques(self) -> None:
        """Equal coverage: the more specific mitigation comes first, not M1018."""
        data = get_attack_data()
        analysis = analyze_techniques(
            ["T1566.001", "T1053.005", "T1078", "T1059"], data=data
        )

        for better, worse in itertools.pairwise(analysis.mitigations):
            assert len(better.covers) >= len(worse.covers)
            if len(better.covers) == len(worse.covers):
                assert data.mitigation_reach(better.id) <= data.mitigation_reach(
                    worse.id
                )
        ids = [m.id for m in analysis.mitigations]
        # M1018 User Account Management maps to the most techniques in ATT&CK.
        assert ids.index("M1018") > ids.index("M1026")

    def test_a_many_technique_threat_gets_a_few_mitigations_covering_several(
        self,
    ) -> None:
        """Eight techniques: at most five mitigations, none covering just one."""
        analysis = analyze_techniques(
            [
                "T1059",
                "T1203",
                "T1204.002",
                "T1566.001",
                "T1053.005",
                "T1112",
                "T1078",
                "T1547.001",
            ]
        )

        assert 3 <= len(analysis.mitigations) <= MAX_MITIGATIONS
        assert all(len(m.covers) > 1 for m in analysis.mitigations)
        assert "M1021" not in {m.id for m in analysis.mitigations}

    def test_sub_technique_without_mitigations_uses_its_parents(self) -> None:
        """T1027.001 has none of its own, so T1027's apply, credited to the sub."""
        analysis = analyze_techniques(["T1027.001"])

        # All cover the one technique: the most specific comes first.
        assert [m.id for m in analysis.mitigations] == [
            "M1049",
            "M1040",
            "M1017",
            "M1047",
        ]
        assert analysis.mitigations[0].covers == ["T1027.001"]

    def test_sub_technique_with_mitigations_does_not_inherit_its_parents(self) -> None:
        """T1204.002 has its own, so M1021 (mapped only to T1204) stays out."""
        analysis = analyze_techniques(["T1204.002"])

        assert "M1021" not in {m.id for m in analysis.mitigations}


class TestAnalyzeThreat:
    """The wrapper over a parsed SentinelOne threat."""

    def test_threat_indicators_are_analysed_and_bad_ids_reported(self) -> None:
        """Techniques from every indicator tactic are analysed once each."""
        models = pytest.importorskip("s1_autotask.sentinelone.models")
        threat = models.Threat(
            id="1373834705420286869",
            classification="Malware",
            indicators=[
                models.Indicator(
                    tactics=[
                        models.IndicatorTactic(
                            name="Persistence",
                            techniques=[models.IndicatorTechnique(name="T1547.001")],
                        ),
                        models.IndicatorTactic(
                            name="Privilege Escalation",
                            techniques=[models.IndicatorTechnique(name="T1547.001")],
                        ),
                    ]
                ),
                models.Indicator(
                    tactics=[
                        models.IndicatorTactic(
                            name="Defense Evasion",
                            techniques=[
                                models.IndicatorTechnique(name="123"),
                                models.IndicatorTechnique(name="T1566.001"),
                            ],
                        )
                    ]
                ),
            ],
        )

        analysis = analyze_threat(threat)

        assert _finding_ids(analysis) == ["T1547.001", "T1566.001"]
        assert analysis.invalid_ids == ["123"]
        # SentinelOne's own tactics decide, even one ATT&CK does not list for the
        # technique: T1566.001 was reported under Defense Evasion.
        assert analysis.furthest_tactic == "Defense Evasion"
        assert analysis.furthest_tactic_basis == "reported"
        assert analysis.techniques[0].reported_tactics == [
            "Persistence",
            "Privilege Escalation",
        ]
        assert analysis.techniques[1].tactic == "Defense Evasion"

    def test_a_tactic_without_techniques_on_the_threat_is_reported(self) -> None:
        """A tactic object with an empty technique list reaches its tactic."""
        models = pytest.importorskip("s1_autotask.sentinelone.models")
        threat = models.Threat(
            id="1373834705420286869",
            indicators=[
                models.Indicator(
                    tactics=[
                        models.IndicatorTactic(name="Lateral Movement"),
                        models.IndicatorTactic(name="System Service Discovery"),
                    ]
                )
            ],
        )

        analysis = analyze_threat(threat)

        assert analysis.tactics_without_techniques == ["Lateral Movement"]
        assert analysis.furthest_tactic == "Lateral Movement"
