"""Doorbells and reruns by id: the flow fetches the threat from SentinelOne."""

import asyncio
import json

import pytest

from tests.conftest import FIXTURES

MITRE_ID = "1373834705420286869"
ALERT = FIXTURES / "unified-alert" / "edr-alert-graphql.json"


def run_flow(payload=None, **kwargs):
    from flows.threat_to_ticket import threat_to_ticket

    return asyncio.run(threat_to_ticket(payload, **kwargs))


class TestDoorbells:
    def test_a_threat_id_doorbell_becomes_the_fetched_threats_ticket(self, sentinelone):
        outcomes = run_flow({"threatId": MITRE_ID})

        assert [o.threat_id for o in outcomes] == [MITRE_ID]
        assert outcomes[0].action == "created"
        assert "OfficeTimeline.exe" in outcomes[0].title

    def test_a_unified_alert_becomes_its_threats_ticket(self, sentinelone, configured):
        alert = json.loads(ALERT.read_text(encoding="utf-8"))

        outcomes = run_flow(alert)

        tickets = configured.emulator.tickets
        assert [t["externalID"] for t in tickets] == [MITRE_ID]
        assert "T1204.002" in tickets[0]["description"]
        assert outcomes[0].company.name == "Example Site"

    def test_a_rerun_by_threat_ids_handles_each_once(self, sentinelone, configured):
        outcomes = run_flow(threat_ids=[MITRE_ID, "1113032189486913422", MITRE_ID])

        assert sorted(o.threat_id for o in outcomes) == sorted(
            [MITRE_ID, "1113032189486913422"]
        )
        assert len(configured.emulator.tickets) == 2

    def test_an_unknown_threat_id_fails_the_run_naming_it(self, sentinelone):
        from s1_autotask.sentinelone.errors import ThreatNotFoundError

        with pytest.raises(ThreatNotFoundError, match="no threat with id 999"):
            run_flow({"threatId": "999"})

    def test_a_doorbell_without_sentinelone_configured_says_what_to_set(
        self, configured
    ):
        from s1_autotask.sentinelone.errors import SentinelOneNotConfiguredError

        with pytest.raises(SentinelOneNotConfiguredError) as caught:
            run_flow({"threatId": MITRE_ID})

        assert "S1AT_SENTINELONE__API_TOKEN" in str(caught.value)
        assert not configured.emulator.tickets

    def test_a_wrong_token_is_an_auth_error_without_the_token(
        self, sentinelone, monkeypatch
    ):
        from s1_autotask.sentinelone.errors import SentinelOneAuthError
        from tasks._runtime import current_settings

        monkeypatch.setenv("S1AT_SENTINELONE__API_TOKEN", "wrong-token-4242424242")
        current_settings.cache_clear()

        with pytest.raises(SentinelOneAuthError) as caught:
            run_flow({"threatId": MITRE_ID})

        assert "wrong-token-4242424242" not in str(caught.value)

    def test_nothing_to_do_is_a_clear_error(self, configured):
        with pytest.raises(ValueError, match="give a payload, threat_ids, or both"):
            run_flow()
