"""Tests for the severity matrix."""

import pytest

from s1_autotask.attack import analyze_threat
from s1_autotask.config import Severity
from s1_autotask.sentinelone.models import Indicator, IndicatorTactic, Threat
from s1_autotask.severity import assess_severity


def assess(**overrides):
    values = {
        "confidence_level": "malicious",
        "mitigation_status": "not_mitigated",
        "incident_status": "unresolved",
        "analyst_verdict": "undefined",
        "classification": "Malware",
        "furthest_tactic": None,
    }
    values.update(overrides)
    return assess_severity(**values)


class TestAssessSeverity:
    """assess_severity follows the documented matrix."""

    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({}, Severity.CRITICAL),
            ({"mitigation_status": "mitigated"}, Severity.HIGH),
            ({"confidence_level": "suspicious"}, Severity.MEDIUM),
            (
                {"confidence_level": "suspicious", "mitigation_status": "mitigated"},
                Severity.MEDIUM,
            ),
            ({"mitigation_status": "marked_as_benign"}, Severity.LOW),
            ({"analyst_verdict": "false_positive"}, Severity.LOW),
            ({"confidence_level": "n/a"}, Severity.LOW),
            ({"confidence_level": None}, Severity.LOW),
            (
                {"confidence_level": "suspicious", "classification": "Ransomware"},
                Severity.CRITICAL,
            ),
            (
                {"classification": "Ransomware", "mitigation_status": "mitigated"},
                Severity.HIGH,
            ),
        ],
    )
    def test_matrix(self, overrides, expected):
        assert assess(**overrides).severity == expected

    def test_suspicious_threat_that_reached_exfiltration_is_high(self):
        result = assess(confidence_level="suspicious", furthest_tactic="Exfiltration")

        assert result.severity == Severity.HIGH
        assert "Exfiltration" in result.reason

    def test_resolved_unmitigated_malicious_threat_is_capped_at_medium(self):
        result = assess(incident_status="resolved", analyst_verdict="true_positive")

        assert result.severity == Severity.MEDIUM
        assert "capped at medium because the incident is resolved" in result.reason

    @pytest.mark.parametrize(
        "overrides",
        [
            {"mitigation_status": "mitigated"},
            {"mitigation_status": "mitigated", "classification": "Ransomware"},
            {"mitigation_status": "mitigated", "confidence_level": "suspicious"},
        ],
    )
    def test_resolved_and_mitigated_is_low(self, overrides):
        result = assess(incident_status="resolved", **overrides)

        assert result.severity == Severity.LOW
        assert result.reason == "the incident is resolved and the threat was mitigated"

    def test_resolved_false_positive_keeps_the_false_positive_reason(self):
        result = assess(incident_status="resolved", analyst_verdict="false_positive")

        assert result.severity == Severity.LOW
        assert "false positive" in result.reason

    def test_resolved_suspicious_unmitigated_threat_stays_medium(self):
        result = assess(incident_status="resolved", confidence_level="suspicious")

        assert result.severity == Severity.MEDIUM
        assert result.reason == "suspicious, not mitigated"

    def test_late_tactic_from_attack_rather_than_sentinelone_says_so(self):
        result = assess(
            confidence_level="suspicious",
            furthest_tactic="Command and Control",
            furthest_tactic_reported=False,
        )

        assert result.severity == Severity.HIGH
        assert "reached Command and Control (per ATT&CK, not reported)" in result.reason

    def test_reason_is_one_line(self):
        for kwargs in ({}, {"analyst_verdict": "false_positive"}):
            assert "\n" not in assess(**kwargs).reason


class TestFurthestTacticFromAnalysis:
    """The furthest-tactic row sees tactics SentinelOne reported without techniques."""

    @staticmethod
    def assess_threat(tactic_name):
        threat = Threat(
            id="1373834705420286869",
            confidence_level="suspicious",
            mitigation_status="not_mitigated",
            indicators=[
                Indicator(
                    category="Lateral Movement",
                    description="Remote service created",
                    tactics=[IndicatorTactic(name=tactic_name, source="MITRE")],
                )
            ],
        )
        analysis = analyze_threat(threat)
        return assess(
            confidence_level=threat.confidence_level,
            mitigation_status=threat.mitigation_status,
            furthest_tactic=analysis.furthest_tactic,
            furthest_tactic_reported=analysis.furthest_tactic_basis != "attack",
        )

    def test_lateral_movement_reported_without_a_technique_makes_it_high(self):
        result = self.assess_threat("Lateral Movement")

        assert result.severity == Severity.HIGH
        assert result.reason == "suspicious, not mitigated, reached Lateral Movement"

    def test_a_technique_name_given_as_a_tactic_leaves_it_medium(self):
        result = self.assess_threat("System Service Discovery")

        assert result.severity == Severity.MEDIUM
        assert result.reason == "suspicious, not mitigated"
