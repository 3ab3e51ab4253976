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
        furthest_tactic_reported=analysis.furthest_tactic_basis != "attack",
    )
    description = render_description(
        threat, analysis, severity, COMPANY, console_url=console_url
    )
    return render_title(threat), description, severity


def sample(fragment):
    path = next(p for p in SAMPLES if fragment in p.name)
    return parse_threats_json(path.read_bytes())[0]


def _section(description, name):
    """The lines of one description section, without its heading or blank lines."""
    body = description.split(f"== {name} ==\n", 1)[1].split("\n== ", 1)[0]
    return [line for line in body.splitlines() if line]


def _tactic_of_each_technique(attack_lines):
    under, tactic = {}, None
    for line in attack_lines:
        if line.endswith(":") and not line.startswith(" "):
            tactic = line[:-1]
        elif line.startswith("  - "):
            under[line.split()[1]] = tactic
    return under


def _with_techniques(threat, pairs):
    """The threat with one indicator reporting each (tactic, technique) pair."""
    indicator = threat.indicators[0]
    tactic = indicator.tactics[0]
    technique = tactic.techniques[0]
    tactics = [
        tactic.model_copy(
            update={
                "name": tactic_name,
                "techniques": [technique.model_copy(update={"name": technique_id})],
            }
        )
        for tactic_name, technique_id in pairs
    ]
    return threat.model_copy(
        update={"indicators": [indicator.model_copy(update={"tactics": tactics})]}
    )


# What an analyst must read in each sample's ticket: title parts, severity and its
# reason, and the techniques (or the plain statement that there are none).
EXPECTED = {
    "v20-flat-windows-malicious-mitigated": (
        "Ncat Netcat Portable",
        "low",
        "the incident is resolved and the threat was mitigated",
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
        "low",
        "the incident is resolved and the threat was mitigated",
        [],
    ),
    "v21-windows-malicious-true-positive-no-whitening": (
        "mimikatz.exe",
        "medium",
        "malicious and not mitigated; capped at medium because the incident is "
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
        [
            "T1566.001",
            "T1059",
            "T1203",
            "T1204.002",
            "T1053.005",
            "T1078",
            "T1547.001",
            "T1112",
        ],
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

        attack = _section(description, "MITRE ATT&CK")
        tactic_lines = [line for line in attack if line.endswith(":")]
        assert tactic_lines == [
            "Initial Access:",
            "Execution:",
            "Persistence:",
            "Defense Evasion:",
        ]
        # The sample's "Suspicious registry key was created" indicator reports
        # T1112 under Defense Evasion: the furthest tactic SentinelOne observed.
        assert (
            "Furthest ATT&CK tactic reached: Defense Evasion "
            "(as SentinelOne reported for T1112 Modify Registry)"
        ) in description

    def test_each_technique_is_listed_once_under_its_reported_tactic(self):
        _, description, _ = render(sample("mitre-mitigated"))

        attack = _section(description, "MITRE ATT&CK")
        technique_lines = [line for line in attack if line.startswith("  - ")]
        ids = [line.split()[1] for line in technique_lines]
        assert len(ids) == len(set(ids)) == 8
        under = _tactic_of_each_technique(attack)
        assert under["T1078"] == "Persistence"
        assert under["T1053.005"] == "Persistence"
        assert under["T1547.001"] == "Persistence"
        valid_accounts = next(line for line in technique_lines if "T1078 " in line)
        assert (
            "(also Initial Access, Privilege Escalation, Defense Evasion in ATT&CK)"
        ) in valid_accounts
        run_keys = next(line for line in technique_lines if "T1547.001 " in line)
        assert "(also reported as Privilege Escalation)" in run_keys

    def test_furthest_tactic_is_the_reported_one_not_every_attack_tactic(self):
        # T1078 Valid Accounts is in four ATT&CK tactics up to Defense Evasion, but
        # SentinelOne saw it only as Initial Access.
        threat = _with_techniques(
            sample("mitre-mitigated"), [("Initial Access", "T1078")]
        )

        _, description, _ = render(threat)

        assert "Furthest ATT&CK tactic reached: Initial Access (as SentinelOne" in (
            description
        )
        under = _tactic_of_each_technique(_section(description, "MITRE ATT&CK"))
        assert under == {"T1078": "Initial Access"}

    def test_furthest_tactic_of_inferred_techniques_says_it_was_not_reported(self):
        threat = sample("no-tactics").model_copy(
            update={"classification": "Ransomware"}
        )

        _, description, _ = render(threat)

        assert (
            "Furthest ATT&CK tactic reached: Impact (SentinelOne reported no tactic; "
            "ATT&CK's tactic for inferred T1486 Data Encrypted for Impact)"
        ) in description

    def test_sub_technique_shows_its_parent_name(self):
        _, description, _ = render(sample("mitre-mitigated"))

        assert "T1053.005 Scheduled Task/Job: Scheduled Task" in description

    def test_mitigations_are_few_specific_and_linked(self):
        _, description, _ = render(sample("mitre-mitigated"))

        actions = _section(description, "Recommended actions")
        shown = [line for line in actions if line.startswith("- ATT&CK M")]
        assert 3 <= len(shown) <= 5
        assert "https://attack.mitre.org/mitigations/M1017/" in shown[0]
        # Covering two of the eight techniques, like M1049, but mapped to more of
        # ATT&CK: it loses the tie and falls below the cut.
        assert not any("M1021 Restrict Web-Based Content" in line for line in shown)
        assert all(", " in line.split("(covers ")[1] for line in shown)

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

    def test_resolved_incident_gets_confirmation_advice_not_isolation(self):
        threat = sample("true-positive-no-whitening")

        title, description, assessment = render(threat)

        assert threat.incident_status == "resolved"
        assert threat.mitigation_status == "not_mitigated"
        assert title.endswith("(malicious, not mitigated, resolved)")
        assert assessment.severity.value == "medium"
        actions = "\n".join(_section(description, "Recommended actions"))
        assert "Isolate" not in actions and "Kill and quarantine" not in actions
        assert "confirm the resolution" in actions
        assert "verify the endpoint is clean" in actions
        assert "State: the incident is resolved, but SentinelOne did not" in description

    def test_false_positive_says_so_in_title_summary_and_actions(self):
        threat = sample("marked-benign")

        title, description, _ = render(threat)

        assert threat.analyst_verdict == "false_positive"
        assert title.endswith("(false positive, resolved)")
        assert "suspicious" not in title
        assert "State: an analyst marked this threat a false positive" in description
        actions = _section(description, "Recommended actions")
        assert actions == [
            "- Confirm the false-positive verdict and consider an exclusion."
        ]

    def test_host_line_names_network_status_and_decommissioned_agent(self):
        threat = sample("v20-flat")

        _, description, _ = render(threat)

        assert threat.endpoint.is_decommissioned
        assert (
            "Host: EC2AMAZ-HOST01 | network: connecting | agent decommissioned"
            in description.splitlines()
        )
        actions = "\n".join(_section(description, "Recommended actions"))
        assert "SentinelOne cannot scan it" in actions
        assert "full disk scan" not in actions

    def test_decommissioned_agent_with_active_threat_is_not_told_to_isolate(self):
        threat = sample("suspicious-not-mitigated")
        endpoint = threat.endpoint.model_copy(update={"is_decommissioned": True})

        _, description, _ = render(threat.model_copy(update={"endpoint": endpoint}))

        actions = "\n".join(_section(description, "Recommended actions"))
        assert "Isolate" not in actions and "Kill and quarantine" not in actions
        assert "The agent is decommissioned, so SentinelOne cannot" in actions

    def test_unmitigated_threat_on_connected_endpoint_suggests_isolation(self):
        threat = sample("suspicious-not-mitigated")

        _, description, _ = render(threat)

        assert threat.endpoint.network_status == "connected"
        assert "Isolate the endpoint" in description

    def test_v20_indicator_ids_are_listed_on_one_line(self):
        threat = sample("v20-flat")

        _, description, _ = render(threat)

        assert _section(description, "Indicators") == [
            "SentinelOne v2.0 indicator ids: 25, 24, 23, 6"
        ]

    def test_repeated_indicators_are_shown_once_in_first_seen_order(self):
        threat = sample("true-positive-no-whitening")
        distinct = threat.indicators[:3]
        threat = threat.model_copy(update={"indicators": distinct * 200})

        _, description, _ = render(threat)

        shown = _section(description, "Indicators")
        assert shown == [
            f"- {indicator.category}: {indicator.description}" for indicator in distinct
        ]

    def test_distinct_indicators_past_the_cap_are_counted_once(self):
        threat = sample("true-positive-no-whitening")
        indicator = threat.indicators[0]
        distinct = [
            indicator.model_copy(update={"description": f"behaviour {n}"})
            for n in range(25)
        ]
        threat = threat.model_copy(update={"indicators": distinct * 3})

        _, description, _ = render(threat)

        shown = _section(description, "Indicators")
        assert len(shown) == 21
        assert shown[-1] == "- and 5 more indicators in the SentinelOne console"

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
