"""Tests for the severity matrix."""

import pytest

from s1_autotask.config import Severity
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

    def test_resolved_incident_is_lowered_one_step_and_says_so(self):
        result = assess(incident_status="resolved")

        assert result.severity == Severity.HIGH
        assert "resolved" in result.reason

    def test_reason_is_one_line(self):
        for kwargs in ({}, {"analyst_verdict": "false_positive"}):
            assert "\n" not in assess(**kwargs).reason
