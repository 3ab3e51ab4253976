"""The command line as a user meets it: output, exit codes, and refusals."""

import json
import os

import pytest
from typer.testing import CliRunner

from s1_autotask.cli import app
from s1_autotask.cli._app import quiet_prefect
from tests.conftest import SAMPLES

MITRE = next(p for p in SAMPLES if "mitre-mitigated" in p.name)
MITRE_ID = "1373834705420286869"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def threat(sample=MITRE, **changes):
    raw = json.loads(sample.read_text(encoding="utf-8"))
    for key, value in changes.items():
        raw[key] = value
    return raw


def write(tmp_path, payload, name="payload.json"):
    path = tmp_path / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.fixture
def one_unmappable(configured, tmp_path, monkeypatch):
    """A payload file with a threat no company takes, then one that maps."""
    from tasks._runtime import current_settings

    monkeypatch.delenv("S1AT_MAPPING__FALLBACK_COMPANY_ID")
    current_settings.cache_clear()
    lost = threat(id="9000000000000000001")
    lost["agentRealtimeInfo"]["siteName"] = "Nowhere Ltd"
    lost["agentRealtimeInfo"]["siteId"] = "1"
    lost["threatInfo"]["threatId"] = "9000000000000000001"
    return write(tmp_path, {"data": [lost, threat()]})


class TestRun:
    def test_a_dry_run_prints_the_ticket_as_json_and_creates_nothing(
        self, configured, tmp_path
    ):
        result = invoke("run", MITRE, "--dry-run", "--json")

        assert result.exit_code == 0, result.stderr
        [entry] = json.loads(result.stdout)
        assert entry["action"] == "would_create"
        assert entry["threat_id"] == MITRE_ID
        assert entry["ticket"]["externalID"] == MITRE_ID
        assert entry["company"]["match"] == "exact"
        assert not configured.emulator.tickets

    def test_a_failed_threat_does_not_hide_the_tickets_that_were_made(
        self, configured, one_unmappable
    ):
        result = invoke("run", one_unmappable)

        assert result.exit_code == 1
        assert result.stdout.startswith(f"created      threat {MITRE_ID}")
        assert "FAILED payload.json: 1 of 2 threat(s) got no ticket" in result.stderr
        assert "threat 9000000000000000001" in result.stderr
        assert [t["externalID"] for t in configured.emulator.tickets] == [MITRE_ID]

    def test_json_lists_each_failed_threat_beside_the_tickets_made(
        self, configured, one_unmappable
    ):
        result = invoke("run", one_unmappable, "--json")

        assert result.exit_code == 1
        created, failed = json.loads(result.stdout)
        assert (created["action"], created["threat_id"]) == ("created", MITRE_ID)
        assert failed["action"] == "failed"
        assert failed["threat_id"] == "9000000000000000001"
        assert "Nowhere Ltd" in failed["error"]

    def test_a_payload_too_large_for_one_flow_run_is_run_in_parts(
        self, configured, tmp_path
    ):
        threats = []
        for n in range(3):
            raw = threat(id=str(10**18 + n))
            raw["threatInfo"]["threatId"] = raw["id"]
            raw["threatInfo"]["maliciousProcessArguments"] = "A" * 180_000
            threats.append(raw)
        path = write(tmp_path, {"data": threats})

        result = invoke("run", path, "--json")

        assert result.exit_code == 0, result.stderr
        assert len(json.loads(result.stdout)) == 3
        assert len(configured.emulator.tickets) == 3

    def test_a_rerun_by_threat_id_fetches_it_from_sentinelone(self, sentinelone):
        result = invoke("run", "--threat-id", MITRE_ID, "--json")

        assert result.exit_code == 0, result.stderr
        assert [e["threat_id"] for e in json.loads(result.stdout)] == [MITRE_ID]


class TestRefusals:
    def test_missing_credentials_are_named_before_anything_starts(
        self, configured, monkeypatch
    ):
        monkeypatch.delenv("S1AT_AUTOTASK__SECRET")
        monkeypatch.delenv("S1AT_AUTOTASK__INTEGRATION_CODE")

        result = invoke("run", MITRE, "--dry-run")

        assert result.exit_code == 2
        assert result.stderr == (
            "error: Autotask is not configured: set S1AT_AUTOTASK__SECRET, "
            "S1AT_AUTOTASK__INTEGRATION_CODE\n"
        )

    @pytest.mark.parametrize("special", ["/dev/zero", "."])
    def test_a_device_or_folder_is_refused_without_reading_it(self, special):
        result = invoke("run", special)

        assert result.exit_code == 2
        assert "not a regular file" in result.stderr

    def test_a_hostile_key_cannot_reach_the_terminal_raw(self, tmp_path):
        payload = {"classification": "Malware", "id": "1", "mitigationReport": {}}
        payload["mitigationReport"]["kill\x1b[31mRED\nFORGED\u202e"] = 5
        path = write(tmp_path, payload)

        result = invoke("run", path)

        assert result.exit_code == 2
        assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
        assert result.stderr.count("\n") == 1

    def test_broken_json_names_the_file_line_and_column(self, tmp_path):
        path = tmp_path / "broken.json"
        path.write_text('{"threatId": ')

        result = invoke("run", path)

        assert result.exit_code == 2
        assert f"error: {path}: Threat payload is not valid JSON" in result.stderr
        assert "line 1, column 14" in result.stderr

    def test_nothing_to_run_is_refused(self):
        result = invoke("run")

        assert result.exit_code == 2
        assert "give a payload file, --threat-id, or both" in result.stderr


class TestPrefectDefaults:
    TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"

    def test_the_ephemeral_server_gets_time_to_start_on_a_busy_machine(
        self, monkeypatch
    ):
        monkeypatch.delenv(self.TIMEOUT, raising=False)

        quiet_prefect(verbose=False)

        assert int(os.environ[self.TIMEOUT]) >= 60

    def test_a_timeout_the_user_chose_is_kept(self, monkeypatch):
        monkeypatch.setenv(self.TIMEOUT, "7")

        quiet_prefect(verbose=False)

        assert os.environ[self.TIMEOUT] == "7"


class TestDemo:
    def test_demo_on_a_payload_file_creates_its_ticket_and_exits_0(
        self, prefect_harness, monkeypatch
    ):
        for key in [k for k in os.environ if k.startswith("S1AT_")]:
            monkeypatch.delenv(key)

        result = invoke("demo", MITRE)

        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith(f"created      threat {MITRE_ID}  ticket T")
        assert "'Example Site' (exact)" in result.stdout


class TestDeliveries:
    def test_a_folder_without_a_store_says_where_it_looked(self, tmp_path, monkeypatch):
        monkeypatch.setenv("S1AT_RECEIVER__DATA_DIR", str(tmp_path))

        result = invoke("deliveries", "list")

        assert result.exit_code == 2
        assert f"There is no delivery store in {tmp_path}" in result.stderr
        assert not (tmp_path / "deliveries.sqlite3").exists()

    def test_an_empty_store_says_so(self, tmp_path, monkeypatch):
        from s1_autotask.receiver import DeliveryStore

        DeliveryStore(tmp_path)
        monkeypatch.setenv("S1AT_RECEIVER__DATA_DIR", str(tmp_path))

        result = invoke("deliveries", "list")

        assert result.exit_code == 0
        assert result.stdout == "no deliveries\n"


class TestBackfill:
    def test_backfill_makes_a_ticket_for_each_threat_of_the_period(
        self, sentinelone, configured
    ):
        result = invoke("backfill", "--since", "2021-01-01", "--batch-size", "4")

        assert result.exit_code == 0, result.stderr
        created = [line for line in result.stdout.splitlines() if line]
        assert len(created) == 6
        assert all(line.startswith("created") for line in created)
        assert "Threats" in result.stderr and "6/6" in result.stderr
        assert len(configured.emulator.tickets) == 6

    def test_a_second_backfill_finds_every_ticket_made(self, sentinelone, configured):
        invoke("backfill", "--since", "2021-01-01")

        result = invoke("backfill", "--since", "2021-01-01", "--json")

        assert result.exit_code == 0, result.stderr
        assert {e["action"] for e in json.loads(result.stdout)} == {"unchanged"}
        assert len(configured.emulator.tickets) == 6

    def test_backfill_without_sentinelone_says_what_to_set(self, configured):
        result = invoke("backfill", "--since", "2021-01-01")

        assert result.exit_code == 2
        assert "S1AT_SENTINELONE__API_TOKEN" in result.stderr
