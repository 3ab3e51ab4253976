"""The ticket text an analyst reads: sections, order, facts, and Autotask's limits."""

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s1_autotask.attack import get_attack_data
from s1_autotask.attack.analysis import analyze_threat
from s1_autotask.autotask._attack_section import (
    ATTACK_BUDGET,
    MAX_MORE_TECHNIQUES,
    MAX_TECHNIQUES,
)
from s1_autotask.autotask.render import (
    DESCRIPTION_LIMIT,
    TITLE_LIMIT,
    clean,
    render_description,
    render_title,
)
from s1_autotask.mapping import CompanyMatch
from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.models import IndicatorTactic
from s1_autotask.sentinelone.parse import parse_threats, parse_threats_json
from s1_autotask.severity import assess_severity
from s1_autotask.text import utf16_len
from tests.conftest import SAMPLES

SECTIONS = [
    "== Summary ==",
    "== MITRE ATT&CK ==",
    "== Recommended actions ==",
    "== Indicators ==",
    "== Identifiers ==",
]
COMPANY = CompanyMatch(id=7, name="Example Site", match="exact", reason="same name")


def render(
    threat,
    console_url="https://console.example.invalid",
    *,
    company=COMPANY,
    limit=DESCRIPTION_LIMIT,
):
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
        threat, analysis, severity, company, console_url=console_url, limit=limit
    )
    return render_title(threat), description, severity


def _identifiers_in_full(threat, **kwargs):
    """The Identifiers section as it reads when nothing has to be left out."""
    _, unbounded, _ = render(threat, limit=10**7, **kwargs)
    return _section(unbounded, "Identifiers")


def _longest(threat):
    """The threat with every free-text field far longer than any line allows."""
    text = "\U0001d54f\u202e" + "x" * 5000

    def longer(model, **extra):
        fields = {
            name: text
            for name, field in type(model).model_fields.items()
            if field.annotation in (str, str | None) and name != "id"
        }
        return model.model_copy(update={**fields, **extra})

    return longer(
        threat,
        engines=[text] * 100,
        endpoint=longer(threat.endpoint),
        scope=longer(threat.scope),
    )


def sample(fragment):
    path = next(p for p in SAMPLES if fragment in p.name)
    return parse_threats_json(path.read_bytes())[0]


def _section(description, name):
    """The lines of one description section, without its heading or blank lines."""
    body = description.split(f"== {name} ==\n", 1)[1].split("\n== ", 1)[0]
    return [
        line
        for line in body.splitlines()
        if line and not line.startswith("[Shortened to fit Autotask")
    ]


def _tactic_of_each_technique(attack_lines):
    under, tactic = {}, None
    for line in attack_lines:
        if line.endswith(":") and not line.startswith(" "):
            tactic = line[:-1]
        elif line.startswith("  - "):
            under[line.split()[1]] = tactic
    return under


def _with_techniques(threat, pairs):
    """The threat with one indicator reporting each (tactic, technique) pair.

    A technique of None reports the tactic with an empty technique list.
    """
    indicator = threat.indicators[0]
    tactic = indicator.tactics[0]
    technique = tactic.techniques[0]
    tactics = [
        tactic.model_copy(
            update={
                "name": tactic_name,
                "techniques": []
                if technique_id is None
                else [technique.model_copy(update={"name": technique_id})],
            }
        )
        for tactic_name, technique_id in pairs
    ]
    return threat.model_copy(
        update={"indicators": [indicator.model_copy(update={"tactics": tactics})]}
    )


def _with_bare_tactic(threat, name):
    """The threat with a tactic of this name, without techniques, on an indicator."""
    indicator = threat.indicators[0]
    bare = IndicatorTactic(name=name, source="MITRE", techniques=[])
    tactics = [*indicator.tactics, bare]
    indicators = [indicator.model_copy(update={"tactics": tactics})]
    return threat.model_copy(
        update={"indicators": [*indicators, *threat.indicators[1:]]}
    )


def _reported_as_in_attack(count):
    """``count`` (tactic, technique id) pairs, each id under its earliest tactic.

    Real ATT&CK techniques come first, in id order; past the ~700 that ATT&CK has,
    well-formed ids it does not know make up the number.
    """
    data = get_attack_data()
    pairs = {}
    for number in range(1001, 1700):
        for technique_id in (
            f"T{number}",
            *(f"T{number}.{sub:03}" for sub in range(1, 20)),
        ):
            technique = data.resolve(technique_id)
            if technique is None or technique.id in pairs or not technique.tactics:
                continue
            tactic = data.order_tactics(technique.tactics)[0]
            pairs[technique.id] = tactic.name
    real = [(tactic, technique_id) for technique_id, tactic in pairs.items()]
    unknown = [
        ("Impact", f"T{9000 + n // 1000}.{n % 1000:03}")
        for n in range(max(count - len(real), 0))
    ]
    return (real + unknown)[:count]


def _with_indicators(threat, count, length=200):
    """The threat with ``count`` distinct indicators of ``length``-character text."""
    indicator = threat.indicators[0]
    indicators = [
        indicator.model_copy(
            update={
                "description": f"behaviour {n} ".ljust(length, "x"),
                "tactics": [],
            }
        )
        for n in range(count)
    ]
    return threat.model_copy(update={"indicators": [*threat.indicators, *indicators]})


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


class TestTacticsWithoutTechniques:
    """A tactic SentinelOne reports without a technique is still what it observed."""

    def test_reported_tactic_is_shown_counted_and_raises_the_severity(self):
        threat = _with_bare_tactic(
            sample("suspicious-not-mitigated"), "Lateral Movement"
        )

        _, description, assessment = render(threat)

        assert _section(description, "MITRE ATT&CK") == [
            "Lateral Movement: reported by SentinelOne without a technique"
        ]
        assert (
            "Furthest ATT&CK tactic reached: Lateral Movement "
            "(as SentinelOne reported, without a technique)"
        ) in description.splitlines()
        assert assessment.severity.value == "high"
        assert (
            assessment.reason == "suspicious, not mitigated, reached Lateral Movement"
        )

    def test_a_technique_name_given_as_a_tactic_is_still_ignored(self):
        threat = _with_bare_tactic(
            sample("suspicious-not-mitigated"), "System Service Discovery"
        )

        _, description, assessment = render(threat)

        assert _section(description, "MITRE ATT&CK") == [
            "SentinelOne reported no ATT&CK techniques for this threat "
            "(common for static and custom-rule detections)."
        ]
        assert "Furthest ATT&CK tactic" not in description
        assert assessment.reason == "suspicious, not mitigated"

    def test_it_sits_in_kill_chain_order_among_the_techniques(self):
        threat = _with_techniques(
            sample("mitre-mitigated"),
            [
                ("Lateral Movement", None),
                ("Execution", "T1059"),
                ("Reconnaissance", None),
                ("Initial Access", "T1566.001"),
            ],
        )

        _, description, _ = render(threat)

        assert _section(description, "MITRE ATT&CK") == [
            "Reconnaissance: reported by SentinelOne without a technique",
            "Initial Access:",
            "  - T1566.001 Phishing: Spearphishing Attachment "
            "https://attack.mitre.org/techniques/T1566/001/",
            "Execution:",
            "  - T1059 Command and Scripting Interpreter "
            "https://attack.mitre.org/techniques/T1059/",
            "Lateral Movement: reported by SentinelOne without a technique",
        ]
        assert "Furthest ATT&CK tactic reached: Lateral Movement (" in description

    def test_a_technique_placed_by_attack_under_it_keeps_the_report_visible(self):
        # T1486 comes with no real tactic, so ATT&CK places it under Impact, which
        # SentinelOne also reported on its own.
        threat = _with_techniques(
            sample("mitre-mitigated"),
            [("System Service Discovery", "T1486"), ("Impact", None)],
        )

        _, description, _ = render(threat)

        assert _section(description, "MITRE ATT&CK") == [
            "Impact (also reported by SentinelOne without a technique):",
            "  - T1486 Data Encrypted for Impact "
            "https://attack.mitre.org/techniques/T1486/",
        ]
        assert (
            "Furthest ATT&CK tactic reached: Impact "
            "(as SentinelOne reported, without a technique)"
        ) in description.splitlines()

    def test_a_tactic_whose_only_technique_id_is_malformed_is_kept(self):
        # The sample reports Defense Evasion with the placeholder technique "123".
        _, description, _ = render(sample("custom-rule-fileless"))

        assert _section(description, "MITRE ATT&CK") == [
            "None of the technique ids SentinelOne reported is an ATT&CK technique.",
            "Defense Evasion: reported by SentinelOne without a technique",
            "Not technique ids, ignored: '123'",
        ]


class TestSectionBounds:
    """No section crowds out the others, however many techniques or indicators."""

    @pytest.mark.parametrize("count", [10, 60, 500, 10_000])
    def test_identifiers_survive_any_number_of_techniques(self, count):
        threat = _with_techniques(
            sample("mitre-mitigated"), _reported_as_in_attack(count)
        )

        _, description, _ = render(threat)

        assert len(description) <= DESCRIPTION_LIMIT
        assert _section(description, "Identifiers") == _identifiers_in_full(threat)
        # The section's own bound keeps it short, not the last-resort cut.
        assert "[Shortened" not in description
        assert [s for s in SECTIONS if s in description] == SECTIONS
        attack = _section(description, "MITRE ATT&CK")
        listed = [line for line in attack if line.startswith("  - ")]
        assert len(listed) == min(count, MAX_TECHNIQUES)

    @pytest.mark.parametrize("count", [60, 500, 10_000])
    def test_techniques_past_the_cap_are_counted_on_one_bounded_line(self, count):
        threat = _with_techniques(
            sample("mitre-mitigated"), _reported_as_in_attack(count)
        )
        analysis = analyze_threat(threat)

        _, description, _ = render(threat)

        attack = _section(description, "MITRE ATT&CK")
        more = [line for line in attack if line.startswith("- and ")]
        hidden = len(analysis.techniques) - MAX_TECHNIQUES
        assert len(more) == 1
        assert more[0].startswith(f"- and {hidden} more techniques: T")
        assert more[0].endswith(", … (see the SentinelOne console)")
        assert more[0].count(", ") == MAX_MORE_TECHNIQUES
        assert len(more[0]) < 250

    def test_long_technique_lines_list_fewer_within_the_section_budget(self):
        # Each technique reported under every tactic: every line names thirteen more.
        data = get_attack_data()
        pairs = [
            (tactic.name, technique_id)
            for _, technique_id in _reported_as_in_attack(60)
            for tactic in data.tactics
        ]
        threat = _with_techniques(sample("mitre-mitigated"), pairs)

        _, description, _ = render(threat)

        attack = _section(description, "MITRE ATT&CK")
        listed = [line for line in attack if line.startswith("  - ")]
        assert utf16_len("\n".join(attack)) <= ATTACK_BUDGET
        assert 0 < len(listed) < MAX_TECHNIQUES
        assert attack[-1].startswith(f"- and {60 - len(listed)} more techniques: ")
        assert "[Shortened" not in description

    def test_shown_techniques_span_every_tactic_in_kill_chain_order(self):
        pairs = _reported_as_in_attack(600)[::10]
        threat = _with_techniques(sample("mitre-mitigated"), pairs)
        analysis = analyze_threat(threat)

        _, description, _ = render(threat)

        headings = [
            line[:-1]
            for line in _section(description, "MITRE ATT&CK")
            if line.endswith(":")
        ]
        assert len(pairs) == 60
        assert headings == analysis.tactics
        assert len(headings) >= 10

    def test_techniques_reported_under_a_tactic_come_before_attack_only_ones(self):
        # The first fifty are reported under a name that is no tactic, so only
        # ATT&CK places them; the last ten SentinelOne reported under their tactic.
        pairs = _reported_as_in_attack(60)
        attack_only = [("System Service Discovery", tid) for _, tid in pairs[:50]]
        threat = _with_techniques(sample("mitre-mitigated"), attack_only + pairs[50:])

        _, description, _ = render(threat)

        under = _tactic_of_each_technique(_section(description, "MITRE ATT&CK"))
        assert len(under) == MAX_TECHNIQUES
        assert {tid for _, tid in pairs[50:]} <= under.keys()

    def test_mitigations_name_a_few_of_the_techniques_they_cover(self):
        threat = _with_techniques(
            sample("mitre-mitigated"), _reported_as_in_attack(500)
        )

        _, description, _ = render(threat)

        shown = [
            line
            for line in _section(description, "Recommended actions")
            if line.startswith("- ATT&CK M")
        ]
        assert shown
        assert all(" more) https://attack.mitre.org/" in line for line in shown)
        assert all(len(line) < 250 for line in shown)

    def test_identifiers_survive_ten_thousand_indicators(self):
        threat = _with_indicators(sample("mitre-mitigated"), 10_000)

        _, description, _ = render(threat)

        assert len(description) <= DESCRIPTION_LIMIT
        assert _section(description, "Identifiers") == _identifiers_in_full(threat)
        indicators = _section(description, "Indicators")
        assert indicators
        assert indicators[-1].endswith("more indicators in the SentinelOne console")

    def test_identifiers_survive_a_threat_with_every_field_at_its_longest(self):
        threat = _longest(
            _with_indicators(
                _with_techniques(
                    sample("mitre-mitigated"), _reported_as_in_attack(10_000)
                ),
                10_000,
            )
        )
        company = CompanyMatch(id=7, name="n" * 5000, match="fuzzy", reason="r" * 5000)

        _, description, _ = render(threat, company=company)

        assert len(description) <= DESCRIPTION_LIMIT
        identifiers = _identifiers_in_full(threat, company=company)
        assert identifiers[0] == "Threat id: 1373834705420286869"
        assert _section(description, "Identifiers") == identifiers
        assert "== Summary ==" in description
        note = description.splitlines()[-1]
        assert note.startswith("[Shortened to fit Autotask")
        assert "Identifiers" not in note


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
        assert note == (
            "[Shortened to fit Autotask: part of MITRE ATT&CK, Recommended actions, "
            "Indicators left out; see SentinelOne for the rest.]"
        )
        kept = short.splitlines()[:-1]
        assert all(line in full.splitlines() for line in kept)
        # The sections that grow with the threat give way first; the identifiers
        # an analyst searches by are kept whole.
        assert _section(short, "Identifiers") == _section(full, "Identifiers")
        assert "== Indicators ==" not in short

    def test_identifiers_go_too_when_nothing_else_is_left_to_cut(self):
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

        short = render_description(threat, analysis, severity, COMPANY, limit=700)

        assert len(short) <= 700
        assert short.startswith("== Summary ==")
        assert "== Identifiers ==" not in short
        assert short.splitlines()[-1] == (
            "[Shortened to fit Autotask: part of Summary, MITRE ATT&CK, Recommended "
            "actions, Indicators, Identifiers left out; see SentinelOne for the rest.]"
        )

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
# Real tactics, and a technique name a vendor sample gives as a tactic.
TACTIC_NAME = st.sampled_from(
    ["Lateral Movement", "Impact", "Execution", "System Service Discovery"]
)
TECHNIQUE = st.from_regex(r"T\d{4}(\.\d{3})?", fullmatch=True) | HOSTILE_TEXT


@st.composite
def raw_threats(draw):
    """A v2.1 threat with hostile values wherever SentinelOne sends free text."""
    tactics = [
        {
            "name": draw(OPTIONAL | TACTIC_NAME),
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
        assert _section(description, "Identifiers") == _identifiers_in_full(threat)
        attack = _section(description, "MITRE ATT&CK")
        assert utf16_len("\n".join(attack)) <= ATTACK_BUDGET
        for text in (title, description):
            text.encode("utf-8")
            assert not any(
                unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"}
                for ch in text.replace("\n", "")
            )
        assert "\n" not in title
