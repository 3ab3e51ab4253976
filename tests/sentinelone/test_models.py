"""The real SentinelOne samples normalise into the `Threat` an analyst reads."""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from s1_autotask.sentinelone import (
    ContainerInfo,
    Indicator,
    IndicatorTactic,
    IndicatorTechnique,
    MitigationAction,
    Threat,
    parse_threats,
    parse_threats_json,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sentinelone"


def _load(name: str) -> dict[str, Any]:
    threat: dict[str, Any] = json.loads(
        (FIXTURES / f"{name}.json").read_text(encoding="utf-8")
    )
    return threat


def _threat(name: str) -> Threat:
    [threat] = parse_threats_json((FIXTURES / f"{name}.json").read_bytes())
    return threat


def _analyst_view(threat: Threat) -> dict[str, object]:
    return {
        "id": threat.id,
        "name": threat.name,
        "classification": threat.classification,
        "confidence_level": threat.confidence_level,
        "mitigation_status": threat.mitigation_status,
        "incident_status": threat.incident_status,
        "host": threat.endpoint.computer_name,
        "os_type": threat.endpoint.os_type,
        "os_name": threat.endpoint.os_name,
        "site_id": threat.scope.site_id,
        "site_name": threat.scope.site_name,
        "account_id": threat.scope.account_id,
        "account_name": threat.scope.account_name,
        "technique_ids": threat.technique_ids,
        "sha1": threat.sha1,
        "sha256": threat.sha256,
        "file_path": threat.file_path,
        "api_version": threat.api_version,
    }


ANALYST_VIEWS: dict[str, dict[str, object]] = {
    "v21-windows-suspicious-mitre-mitigated": {
        "id": "1373834705420286869",
        "name": "OfficeTimeline.exe",
        "classification": "Malware",
        "confidence_level": "suspicious",
        "mitigation_status": "mitigated",
        "incident_status": "unresolved",
        "host": "host05.example.com",
        "os_type": "windows",
        "os_name": "Windows 10 Pro",
        "site_id": "1083054176741832911",
        "site_name": "Example Site",
        "account_id": "111111111111111111",
        "account_name": "REDACTED",
        "technique_ids": [
            "T1059",
            "T1203",
            "T1204.002",
            "T1566.001",
            "T1053.005",
            "T1112",
            "T1078",
            "T1547.001",
        ],
        "sha1": "5555555555555555555555555555555555555555",
        "sha256": None,
        "file_path": (
            "\\Device\\HarddiskVolume3\\testusers\\USERNAME\\Downloads"
            "\\OfficeTimeline.exe"
        ),
        "api_version": "2.1",
    },
    "v21-macos-malicious-mitigated-no-tactics": {
        "id": "2120407777501474123",
        "name": "UC232A_Windows_Setup.exe",
        "classification": "Malware",
        "confidence_level": "malicious",
        "mitigation_status": "mitigated",
        "incident_status": "unresolved",
        "host": "user01 MacBook Pro",
        "os_type": "macos",
        "os_name": "macOS",
        "site_id": "REDACTED",
        "site_name": "REDACTED",
        "account_id": "1458520677752505410",
        "account_name": "REDACTED",
        "technique_ids": [],
        "sha1": "fb212d2614de0275fc350b6c8d057525190ea8d8",
        "sha256": "49280a15191065129e434f96444b29af83aa54d85fb6912030c62ab7ad2e4440",
        "file_path": (
            "/Users/REDACTED/Downloads/uc232a_windows_setup_v1.0.084"
            "/UC232A_Windows_Setup.exe"
        ),
        "api_version": "2.1",
    },
    "v21-linux-container-suspicious-marked-benign": {
        "id": "2147115586493991494",
        "name": "AppRun",
        "classification": "Malware",
        "confidence_level": "suspicious",
        "mitigation_status": "marked_as_benign",
        "incident_status": "resolved",
        "host": "server01.example.com",
        "os_type": "linux",
        "os_name": "Linux",
        "site_id": "1592057602649133141",
        "site_name": "Linux Servers",
        "account_id": "111111111111111111",
        "account_name": "Example Corp",
        "technique_ids": [],
        "sha1": "1111111111111111111111111111111111111111",
        "sha256": "2222222222222222222222222222222222222222222222222222222222222222",
        "file_path": (
            "/opt/example/docker/overlay2/a5177084b94956bf219e726894bcdc99548d6af616"
            "000a391e921c3241861c49/merged/tmp/appimage_extracted_cc1b997abf173323ef"
            "dc82ad805a6806/AppRun"
        ),
        "api_version": "2.1",
    },
    "v21-windows-malicious-no-indicators-null-detectioninfo": {
        "id": "715718962991148224",
        "name": "Unconfirmed 123490.crdownload",
        "classification": "Malware",
        "confidence_level": "malicious",
        "mitigation_status": "mitigated",
        "incident_status": "resolved",
        "host": "EC2AMAZ-HOST01",
        "os_type": "windows",
        "os_name": "Windows Server 2016",
        "site_id": "475482421366727779",
        "site_name": "Example Site",
        "account_id": "433241117337583618",
        "account_name": "Example Account",
        "technique_ids": [],
        "sha1": "3395856ce81f2b7382dee72602f798b642f14140",
        "sha256": None,
        "file_path": (
            "\\Device\\HarddiskVolume1\\Users\\Administrator\\Downloads"
            "\\Unconfirmed 123490.crdownload"
        ),
        "api_version": "2.1",
    },
    "v21-windows-star-custom-rule-fileless": {
        "id": "123456",
        "name": "cmd.exe (interactive session)",
        "classification": "Infostealer",
        "confidence_level": "malicious",
        "mitigation_status": "not_mitigated",
        "incident_status": "in_progress",
        "host": "DESKTOP-EXAMPLE1",
        "os_type": "windows",
        "os_name": "Windows 10 Pro",
        "site_id": "123456",
        "site_name": "Default site",
        "account_id": "123456",
        "account_name": "Example Account",
        # Upstream placeholder technique names, repeated; kept raw and de-duplicated.
        "technique_ids": ["123"],
        "sha1": None,
        "sha256": None,
        "file_path": None,
        "api_version": "2.1",
    },
    "v21-windows-suspicious-not-mitigated": {
        "id": "1112953674841025235",
        "name": "nsh29ED.tmp",
        "classification": "Malware",
        "confidence_level": "suspicious",
        "mitigation_status": "not_mitigated",
        "incident_status": "unresolved",
        "host": "host07.example.com",
        "os_type": "windows",
        "os_name": "Windows 10 Pro",
        "site_id": "1107851598358168475",
        "site_name": "Example Site",
        "account_id": "222222222222222222",
        "account_name": "Example Account",
        "technique_ids": [],
        "sha1": "6666666666666666666666666666666666666666",
        "sha256": None,
        "file_path": (
            "\\Device\\HarddiskVolume2\\testusers\\testuser\\AppData\\Local\\Temp"
            "\\nsr1C3F.tmp\\nsh29ED.tmp"
        ),
        "api_version": "2.1",
    },
    "v21-windows-malicious-true-positive-no-whitening": {
        "id": "1113032189486913422",
        "name": "mimikatz.exe",
        "classification": "Infostealer",
        "confidence_level": "malicious",
        "mitigation_status": "not_mitigated",
        "incident_status": "resolved",
        "host": "host13.example.com",
        "os_type": "windows",
        "os_name": "Windows 10 Pro",
        "site_id": "1107851598358168475",
        "site_name": "Example Site",
        "account_id": "222222222222222222",
        "account_name": "Example Account",
        "technique_ids": [],
        "sha1": "dddddddddddddddddddddddddddddddddddddddd",
        "sha256": None,
        "file_path": (
            "\\Device\\HarddiskVolume2\\testusers\\testuser\\Downloads"
            "\\mimikatz_trunk\\x64\\mimikatz.exe"
        ),
        "api_version": "2.1",
    },
    "v20-flat-windows-malicious-mitigated": {
        "id": "715723437013282014",
        "name": "Ncat Netcat Portable - CHIP-Installer.exe",
        "classification": "Malware",
        # v2.0 had no confidence level; nothing is invented for it.
        "confidence_level": None,
        "mitigation_status": "mitigated",
        "incident_status": "resolved",
        "host": "EC2AMAZ-HOST01",
        "os_type": "windows",
        "os_name": None,
        "site_id": "475482421366727779",
        "site_name": "Example Site",
        "account_id": "433241117337583618",
        "account_name": "Example Account",
        "technique_ids": [],
        "sha1": "d8757a0396d05a1d532422827a70a7966c361366",
        "sha256": None,
        "file_path": (
            "\\Device\\HarddiskVolume1\\Users\\Administrator\\Downloads"
            "\\Ncat Netcat Portable - CHIP-Installer.exe"
        ),
        "api_version": "2.0",
    },
}


class TestSamples:
    """Every saved sample gives the analyst the values that are in the file."""

    def test_every_fixture_file_has_expected_values(self) -> None:
        """A sample added without expectations would go untested."""
        names = {path.stem for path in FIXTURES.glob("*.json")}

        assert names == set(ANALYST_VIEWS)

    @pytest.mark.parametrize("name", sorted(ANALYST_VIEWS))
    def test_sample_gives_the_analyst_fields(self, name: str) -> None:
        threat = _threat(name)

        assert _analyst_view(threat) == ANALYST_VIEWS[name]

    @pytest.mark.parametrize("name", sorted(ANALYST_VIEWS))
    def test_sample_round_trips_through_json(self, name: str) -> None:
        threat = _threat(name)

        again = Threat.model_validate(threat.model_dump(mode="json"))

        assert again == threat
        assert Threat.model_validate_json(threat.model_dump_json()) == threat

    @pytest.mark.parametrize("name", sorted(ANALYST_VIEWS))
    def test_sample_timestamps_are_utc(self, name: str) -> None:
        threat = _threat(name)

        stamps = [threat.created_at, threat.updated_at, threat.identified_at]

        assert all(
            stamp is not None and stamp.utcoffset() == timedelta(0) for stamp in stamps
        )

    @pytest.mark.parametrize("name", sorted(ANALYST_VIEWS))
    def test_sample_parses_the_same_from_json_text_and_from_a_dict(
        self, name: str
    ) -> None:
        from_text = _threat(name)

        [from_dict] = parse_threats(_load(name))

        assert from_dict == from_text


class TestWindowsMitreSample:
    """The Behavioral AI sample with real MITRE techniques and two mitigations."""

    NAME = "v21-windows-suspicious-mitre-mitigated"

    def test_details_for_the_ticket_are_read(self) -> None:
        threat = _threat(self.NAME)

        assert threat.classification_source == "Static"
        assert threat.analyst_verdict == "undefined"
        assert threat.detection_type == "dynamic"
        assert threat.engines == ["DBT - Executables"]
        assert threat.initiated_by == "agent_policy"
        assert threat.command_line == (
            '"C:\\testusers\\USERNAME\\Downloads\\OfficeTimeline.exe"'
        )
        assert threat.process_user == "example.com\\USERNAME"
        assert threat.originator_process == "chrome.exe"
        assert threat.storyline == "BB74E569F93D579E"
        assert threat.publisher == "OFFICE TIMELINE, LLC"
        assert threat.certificate_id == "OFFICE TIMELINE, LLC"
        assert threat.file_size == 65517824
        assert threat.is_fileless is False
        assert threat.external_ticket_id is None
        assert threat.md5 is None

    def test_timestamps_keep_their_microseconds(self) -> None:
        threat = _threat(self.NAME)

        assert threat.created_at == datetime(2022, 3, 11, 12, 44, 19, 192413, UTC)
        assert threat.updated_at == datetime(2022, 3, 11, 12, 44, 33, 501615, UTC)
        assert threat.identified_at == datetime(2022, 3, 11, 12, 44, 16, 158000, UTC)

    def test_endpoint_comes_from_realtime_and_detection_info(self) -> None:
        endpoint = _threat(self.NAME).endpoint

        assert endpoint.agent_id == "1088377752722254024"
        assert endpoint.agent_uuid == "5e4482b45d134ae8bf4901cb52b65e88"
        assert endpoint.agent_version == "21.7.5.1080"
        assert endpoint.os_revision == "19044"
        assert endpoint.domain == "example.com"
        assert endpoint.machine_type == "laptop"
        assert endpoint.network_status == "connected"
        assert endpoint.mitigation_mode == "protect"
        assert endpoint.last_logged_in_user == "USERNAME"
        assert endpoint.ipv4 == ["192.168.56.1", "10.4.4.69"]
        assert endpoint.external_ip == "198.51.100.10"
        assert endpoint.is_active is True
        assert endpoint.is_decommissioned is False

    def test_group_is_part_of_the_scope(self) -> None:
        scope = _threat(self.NAME).scope

        assert (scope.group_id, scope.group_name) == (
            "1083054176758610128",
            "Default Group",
        )

    def test_mitigation_actions_keep_their_times(self) -> None:
        threat = _threat(self.NAME)

        assert threat.mitigation_actions == [
            MitigationAction(
                action="quarantine",
                status="success",
                started_at=datetime(2022, 3, 11, 12, 44, 18, 331000, UTC),
                ended_at=datetime(2022, 3, 11, 12, 44, 32, 875000, UTC),
            ),
            MitigationAction(
                action="kill",
                status="success",
                started_at=datetime(2022, 3, 11, 12, 44, 17, 111000, UTC),
                ended_at=datetime(2022, 3, 11, 12, 44, 17, 112000, UTC),
            ),
        ]

    def test_technique_under_two_tactics_is_kept_under_both(self) -> None:
        threat = _threat(self.NAME)

        autorun = threat.indicators[-1]

        assert autorun == Indicator(
            category="Persistence",
            description=(
                "Application registered itself to become persistent via an autorun"
            ),
            ids=[199],
            tactics=[
                IndicatorTactic(
                    name=tactic,
                    source="MITRE",
                    techniques=[
                        IndicatorTechnique(
                            name="T1547.001",
                            link="https://attack.mitre.org/techniques/T1547/001/",
                        )
                    ],
                )
                for tactic in ("Persistence", "Privilege Escalation")
            ],
        )
        assert threat.technique_ids.count("T1547.001") == 1

    def test_indicator_without_tactics_is_kept(self) -> None:
        threat = _threat(self.NAME)

        injection = threat.indicators[3]

        assert (injection.category, injection.ids, injection.tactics) == (
            "Injection",
            [126],
            [],
        )

    def test_all_null_container_info_means_no_container(self) -> None:
        threat = _threat(self.NAME)

        assert threat.container is None


class TestQuirkySamples:
    """The payload hazards the real samples carry are absorbed, not fatal."""

    def test_boolean_decommission_time_reads_as_unknown(self) -> None:
        endpoint = _threat(
            "v21-windows-malicious-no-indicators-null-detectioninfo"
        ).endpoint

        assert endpoint.is_decommissioned is True
        assert endpoint.decommissioned_at is None

    def test_null_detection_info_falls_back_to_current_interfaces(self) -> None:
        threat = _threat("v21-windows-malicious-no-indicators-null-detectioninfo")

        assert threat.endpoint.ipv4 == ["203.0.113.50"]
        assert threat.endpoint.last_logged_in_user is None
        assert threat.indicators == []
        assert threat.mitigation_actions == [
            MitigationAction(action="kill", status="success"),
            MitigationAction(action="quarantine", status="success"),
        ]

    def test_empty_strings_for_fileless_threat_become_none(self) -> None:
        threat = _threat("v21-windows-star-custom-rule-fileless")

        assert threat.is_fileless is True
        assert threat.initiated_by == "star_active"
        assert threat.analyst_verdict == "true_positive"
        assert (threat.file_path, threat.sha1, threat.command_line) == (None,) * 3
        assert (threat.publisher, threat.certificate_id) == (None, None)

    def test_identified_at_without_fraction_is_read(self) -> None:
        threat = _threat("v21-macos-malicious-mitigated-no-tactics")

        assert threat.identified_at == datetime(2025, 1, 4, 14, 31, 43, tzinfo=UTC)

    def test_top_level_id_wins_over_a_different_threat_info_id(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The macOS sample's threatInfo.threatId was redacted upstream."""
        threat = _threat("v21-macos-malicious-mitigated-no-tactics")

        assert threat.id == "2120407777501474123"
        assert "'REDACTED'" in caplog.text

    def test_long_ipv6_list_does_not_leak_into_ipv4(self) -> None:
        endpoint = _threat("v21-macos-malicious-mitigated-no-tactics").endpoint

        assert endpoint.ipv4 == ["192.168.100.226", "10.251.20.65", "127.0.0.1"]

    def test_macos_sample_lists_three_mitigation_actions_with_no_tactics(
        self,
    ) -> None:
        threat = _threat("v21-macos-malicious-mitigated-no-tactics")

        assert [a.action for a in threat.mitigation_actions] == [
            "remediate",
            "quarantine",
            "kill",
        ]
        assert len(threat.indicators) == 5
        assert all(indicator.tactics == [] for indicator in threat.indicators)

    def test_container_details_are_read(self) -> None:
        threat = _threat("v21-linux-container-suspicious-marked-benign")

        assert threat.container is not None
        assert threat.container.id == (
            "b4fe7878d50485166dd5b29c43fe64df7e82b31c19701d7fa4be25d925d4656c"
        )
        assert threat.container.image == (
            "registry.example.com/docker-infra-stable/app-dash:1.0.112"
        )
        assert threat.container.name == "appops_app-dash_1"
        assert len(threat.container.labels) == 11
        assert (
            threat.container.labels[0] == 'MAINTAINER:"ExampleOps <info@example.com>"'
        )

    def test_realtime_group_wins_over_detection_group(self) -> None:
        """The agent moved to the Docker group after the detection."""
        scope = _threat("v21-linux-container-suspicious-marked-benign").scope

        assert (scope.group_id, scope.group_name) == ("1604948594358127522", "Docker")

    def test_empty_last_logged_in_user_and_process_user_become_none(self) -> None:
        threat = _threat("v21-linux-container-suspicious-marked-benign")

        assert threat.endpoint.last_logged_in_user is None
        assert threat.process_user is None
        assert threat.endpoint.ipv4 == ["192.0.2.1", "192.0.2.2", "192.0.2.10"]

    def test_missing_whitening_options_and_empty_mitigations_are_fine(self) -> None:
        threat = _threat("v21-windows-malicious-true-positive-no-whitening")

        assert threat.mitigation_actions == []
        assert threat.endpoint.is_active is False
        assert threat.endpoint.network_status == "connected"

    def test_detect_mode_agent_is_reported(self) -> None:
        threat = _threat("v21-windows-suspicious-not-mitigated")

        assert threat.endpoint.mitigation_mode == "detect"
        assert threat.mitigation_actions == []
        assert [indicator.ids for indicator in threat.indicators] == [[29], [24], [12]]


class TestV20Sample:
    """The legacy flat shape maps onto the same attributes as v2.1."""

    NAME = "v20-flat-windows-malicious-mitigated"

    def test_integer_indicators_become_indicators_with_ids(self) -> None:
        threat = _threat(self.NAME)

        assert threat.indicators == [Indicator(ids=[n]) for n in (25, 24, 23, 6)]

    def test_mitigation_report_lists_only_actions_taken(self) -> None:
        threat = _threat(self.NAME)

        assert threat.mitigation_actions == [
            MitigationAction(action="kill", status="success"),
            MitigationAction(action="quarantine", status="success"),
        ]

    def test_legacy_names_map_to_their_v21_meaning(self) -> None:
        threat = _threat(self.NAME)

        assert threat.initiated_by == "agent_policy"
        assert threat.storyline == "8BF4207AFA583317"
        assert threat.process_user == "EC2AMAZ-HOST01\\Administrator"
        assert threat.publisher == "CHIP DIGITAL GMBH"
        assert threat.certificate_id == "CHIP DIGITAL GMBH"
        assert threat.engines == ["pre_execution"]
        assert threat.identified_at == datetime(2019, 9, 15, 12, 14, 41, 260000, UTC)
        assert threat.created_at == datetime(2019, 9, 15, 12, 14, 42, 440985, UTC)

    def test_agent_fields_come_from_the_top_level(self) -> None:
        endpoint = _threat(self.NAME).endpoint

        assert endpoint.agent_id == "657613730168123595"
        assert endpoint.agent_version == "3.1.3.38"
        assert endpoint.domain == "WORKGROUP"
        assert endpoint.machine_type == "server"
        assert endpoint.mitigation_mode == "protect"
        assert endpoint.ipv4 == ["203.0.113.42"]
        assert endpoint.is_decommissioned is True

    def test_unresolved_flag_gives_unresolved_status(self) -> None:
        payload = _load(self.NAME) | {"resolved": False}

        [threat] = parse_threats(payload)

        assert threat.incident_status == "unresolved"


class TestThreatModel:
    """The public model keeps its invariants however it is built."""

    def test_technique_ids_are_deduplicated_in_first_seen_order(self) -> None:
        def tactic(*names: str) -> IndicatorTactic:
            return IndicatorTactic(
                techniques=[IndicatorTechnique(name=name) for name in names]
            )

        threat = Threat(
            id="1",
            indicators=[
                Indicator(tactics=[tactic("T1059", "T1112"), tactic("T1112")]),
                Indicator(tactics=[tactic("T7", "T1059", "T1003.001")]),
            ],
        )

        assert threat.technique_ids == ["T1059", "T1112", "T7", "T1003.001"]

    def test_threat_is_frozen(self) -> None:
        threat = Threat(id="1")

        with pytest.raises(ValidationError):
            threat.name = "changed"  # type: ignore[misc]

    def test_blank_text_becomes_none_when_built_directly(self) -> None:
        threat = Threat(id="1", sha1="", file_path="   ", md5=None)

        assert (threat.sha1, threat.file_path, threat.md5) == (None, None, None)

    def test_datetimes_are_converted_to_utc(self) -> None:
        paris = timezone(timedelta(hours=2))

        threat = Threat(
            id="1",
            created_at=datetime(2024, 5, 1, 14, 0, tzinfo=paris),
            updated_at=datetime(2024, 5, 1, 12, 0),
        )

        assert threat.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        assert threat.created_at is not None
        assert threat.created_at.tzinfo is UTC
        assert threat.updated_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def test_empty_id_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            Threat(id="")

    def test_unknown_attribute_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            Threat(id="1", severity="high")  # type: ignore[call-arg]

    def test_container_round_trips(self) -> None:
        threat = Threat(id="1", container=ContainerInfo(id="abc", labels=['a:"b"']))

        again = Threat.model_validate(threat.model_dump(mode="json"))

        assert again == threat
