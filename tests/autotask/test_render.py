"""The ticket text an analyst reads: sections, order, facts, and Autotask's limits."""

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s1_autotask.attack.analysis import analyze_threat
from s1_autotask.autotask.render import (
    DESCRIPTION_LIMIT,
    TITLE_LIMIT,
    clean,
    render_description,
    render_title,
)
from s1_autotask.mapping import CompanyMatch
from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.parse import parse_threats, parse_threats_json
from s1_autotask.severity import assess_severity
from tests.conftest import SAMPLES

SECTIONS = [
    "== Summary ==",
    "== MITRE ATT&CK ==",
    "== Recommended actions ==",
    "== Indicators ==",
    "== Identifiers ==",
]
COMPANY = CompanyMatch(id=7, name="Example Site", match="exact", reason="same name")


def render(threat, console_url="https://console.example.invalid"):
    analysis = analyze_threat(threat)
    severity = assess_severity(
        confidence_level=threat.confidence_level,
        mitigation_status=threat.mitigation_status,
        incident_status=threat.incident_status,
        analyst_verdict=threat.analyst_verdict,
        classification=threat.classification,
        furthest_tactic=analysis.furthest_tactic,
    )
    description = render_description(
        threat, analysis, severity, COMPANY, console_url=console_url
    )
    return render_title(threat), description, severity


def sample(fragment):
    path = next(p for p in SAMPLES if fragment in p.name)
    return parse_threats_json(path.read_bytes())[0]


# What an analyst must read in each sample's ticket: title parts, severity and its
# reason, and the techniques (or the plain statement that there are none).
EXPECTED = {
    "v20-flat-windows-malicious-mitigated": (
        "Ncat Netcat Portable",
        "low",
        "confidence level is missing",
        [],
    ),
    "v21-linux-container-suspicious-marked-benign": (
        "AppRun",
        "low",
        "false positive",
        [],
    ),
    "v21-macos-malicious-mitigated-no-tactics": (
        "UC232A_Windows_Setup.exe",
        "high",
        "malicious, and SentinelOne mitigated it",
        [],
    ),
    "v21-windows-malicious-no-indicators-null-detectioninfo": (
        "Unconfirmed 123490.crdownload",
        "medium",
        "resolved",
        [],
    ),
    "v21-windows-malicious-true-positive-no-whitening": (
        "mimikatz.exe",
        "high",
        "malicious and not mitigated; lowered one step because the incident is "
        "resolved",
        [],
    ),
    "v21-windows-star-custom-rule-fileless": (
        "cmd.exe (interactive session)",
        "critical",
        "malicious and not mitigated",
        [],
    ),
    "v21-windows-suspicious-mitre-mitigated": (
        "OfficeTimeline.exe",
        "medium",
        "suspicious, mitigated",
        ["T1566.001", "T1059", "T1204.002", "T1053.005", "T1547.001"],
    ),
    "v21-windows-suspicious-not-mitigated": (
        "nsh29ED.tmp",
        "medium",
        "suspicious, not mitigated",
        [],
    ),
}


class TestRenderSamples:
    """Every real sample renders as a ticket an analyst can act on."""

    @pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
    def test_sections_present_in_order(self, path):
        threat = parse_threats_json(path.read_bytes())[0]

        _, description, _ = render(threat)

        positions = [description.index(section) for section in SECTIONS]
        assert positions == sorted(positions)
        assert description.startswith("== Summary ==")

    @pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
    def test_title_and_severity_and_techniques(self, path):
        threat = parse_threats_json(path.read_bytes())[0]
        name, severity, reason, techniques = EXPECTED[path.stem]

        title, description, assessment = render(threat)

        assert name in title and threat.endpoint.computer_name in title
        assert assessment.severity.value == severity
        assert reason in assessment.reason
        assert f"Severity: {severity.upper()}: {assessment.reason}" in description
        for technique_id in techniques:
            assert f"  - {technique_id} " in description
        if not techniques:
            attack = description.split("== MITRE ATT&CK ==")[1]
            assert "no ATT&CK techniques" in attack or "None of the" in attack

    def test_tactics_follow_the_kill_chain_and_summary_names_the_furthest(self):
        _, description, _ = render(sample("mitre-mitigated"))

        attack = description.split("== MITRE ATT&CK ==")[1].split("==")[0]
        tactic_lines = [line for line in attack.splitlines() if line.endswith(":")]
        assert tactic_lines == [
            "Initial Access:",
            "Execution:",
            "Persistence:",
            "Privilege Escalation:",
            "Defense Evasion:",
        ]
        assert "Furthest ATT&CK tactic reached: Defense Evasion" in description

    def test_sub_technique_shows_its_parent_name(self):
        _, description, _ = render(sample("mitre-mitigated"))

        assert "T1053.005 Scheduled Task/Job: Scheduled Task" in description

    def test_mitigations_are_ranked_with_links(self):
        _, description, _ = render(sample("mitre-mitigated"))

        actions = description.split("== Recommended actions ==")[1]
        assert "ATT&CK M1017 User Training" in actions
        assert "https://attack.mitre.org/mitigations/M1017/" in actions

    def test_revoked_id_shows_the_successor_and_the_reported_id(self):
        threat = sample("mitre-mitigated")
        indicator = threat.indicators[0]
        tactic = indicator.tactics[0].model_copy(
            update={
                "techniques": [
                    indicator.tactics[0]
                    .techniques[0]
                    .model_copy(update={"name": "T1086"})
                ]
            }
        )
        threat = threat.model_copy(
            update={"indicators": [indicator.model_copy(update={"tactics": [tactic]})]}
        )

        _, description, _ = render(threat)

        assert "T1059.001 Command and Scripting Interpreter: PowerShell" in description
        assert "reported as T1086" in description

    def test_ransomware_classification_infers_t1486_and_says_so(self):
        threat = sample("no-tactics").model_copy(
            update={"classification": "Ransomware"}
        )

        _, description, _ = render(threat)

        assert "T1486 Data Encrypted for Impact" in description
        assert "inferred, not reported" in description
        assert "no ATT&CK techniques" in description

    def test_unmitigated_threat_on_connected_endpoint_suggests_isolation(self):
        threat = sample("suspicious-not-mitigated")

        _, description, _ = render(threat)

        assert threat.endpoint.network_status == "connected"
        assert "Isolate the endpoint" in description

    def test_console_deep_link_names_the_threat(self):
        threat = sample("mitre-mitigated")

        _, description, _ = render(threat, console_url="https://s1.example.invalid/")

        link = (
            "https://s1.example.invalid/incidents/threats/1373834705420286869/overview"
        )
        assert link in description


class TestFitting:
    """Text that does not fit is shortened from the bottom, by whole lines."""

    def test_long_description_is_cut_by_whole_lines_and_says_what_was_left_out(self):
        threat = sample("mitre-mitigated")

        analysis = analyze_threat(threat)
        severity = assess_severity(
            confidence_level="suspicious",
            mitigation_status="mitigated",
            incident_status=None,
            analyst_verdict=None,
            classification=None,
            furthest_tactic=None,
        )
        full = render_description(threat, analysis, severity, COMPANY)
        short = render_description(threat, analysis, severity, COMPANY, limit=1500)

        assert len(short) <= 1500
        assert short.startswith("== Summary ==")
        note = short.splitlines()[-1]
        assert note.startswith("[Shortened to fit Autotask")
        assert "Identifiers" in note
        kept = short.splitlines()[:-1]
        assert all(line in full.splitlines() for line in kept)

    def test_clean_removes_controls_bidi_and_bounds_length(self):
        hostile = "evil\x1b[31m\u202eexe.txt\x00\r\nnext\ud800line" + "x" * 500

        cleaned = clean(hostile, 100)

        assert len(cleaned) == 100 and cleaned.endswith("…")
        assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in cleaned)
        cleaned.encode("utf-8")


HOSTILE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=()), max_size=3000
) | st.sampled_from(["", "\x00\x1b[2J\u202e", "\n" * 50, "|`*#" * 200])
OPTIONAL = st.none() | HOSTILE_TEXT
TECHNIQUE = st.from_regex(r"T\d{4}(\.\d{3})?", fullmatch=True) | HOSTILE_TEXT


@st.composite
def raw_threats(draw):
    """A v2.1 threat with hostile values wherever SentinelOne sends free text."""
    tactics = [
        {
            "name": draw(OPTIONAL),
            "source": "MITRE",
            "techniques": [
                {"name": draw(TECHNIQUE), "link": None}
                for _ in range(draw(st.integers(0, 4)))
            ],
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    return {
        "id": str(draw(st.integers(1, 10**19))),
        "threatInfo": {
            "threatName": draw(OPTIONAL),
            "classification": draw(OPTIONAL),
            "confidenceLevel": draw(
                st.sampled_from(["malicious", "suspicious", "n/a", None])
            ),
            "mitigationStatus": draw(
                st.sampled_from(
                    ["mitigated", "not_mitigated", "marked_as_benign", None]
                )
            ),
            "analystVerdict": draw(
                st.sampled_from(["true_positive", "false_positive", "undefined", None])
            ),
            "incidentStatus": draw(
                st.sampled_from(["resolved", "unresolved", "in_progress", None])
            ),
            "filePath": draw(OPTIONAL),
            "maliciousProcessArguments": draw(OPTIONAL),
            "processUser": draw(OPTIONAL),
            "sha1": draw(OPTIONAL),
            "storyline": draw(OPTIONAL),
        },
        "agentRealtimeInfo": {
            "agentComputerName": draw(OPTIONAL),
            "siteName": draw(OPTIONAL),
            "accountName": draw(OPTIONAL),
            "agentOsName": draw(OPTIONAL),
            "agentNetworkStatus": draw(OPTIONAL),
        },
        "indicators": [
            {
                "category": draw(OPTIONAL),
                "description": draw(OPTIONAL),
                "tactics": tactics,
            }
            for _ in range(draw(st.integers(0, 30)))
        ],
    }


class TestRenderProperties:
    """Whatever SentinelOne sends, the ticket text stays within Autotask's rules."""

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(raw=raw_threats())
    def test_generated_threats_render_within_limits(self, raw):
        try:
            threat = parse_threats(raw)[0]
        except ThreatPayloadError:
            return

        title, description, _ = render(threat)

        assert 0 < len(title) <= TITLE_LIMIT
        assert len(description) <= DESCRIPTION_LIMIT
        for text in (title, description):
            text.encode("utf-8")
            assert not any(
                unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"}
                for ch in text.replace("\n", "")
            )
        assert "\n" not in title
