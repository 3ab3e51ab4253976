"""The threat-to-ticket flow, run on Prefect against the Autotask emulator."""

import asyncio
import json
import logging

import pytest

from s1_autotask.autotask.picklists import Picklists
from tests.conftest import FIXTURES, SAMPLES
from tests.flows.conftest import INTEGRATION_CODE, SECRET

# The company each sample lands in with the test configuration: "Example Site" by
# exact name, one site by its id, and redacted sites on the fallback company 0.
EXPECTED_COMPANY = {
    "v20-flat-windows-malicious-mitigated.json": (29684244, "exact"),
    "v21-linux-container-suspicious-marked-benign.json": (29683056, "explicit"),
    "v21-macos-malicious-mitigated-no-tactics.json": (0, "fallback"),
    "v21-windows-malicious-no-indicators-null-detectioninfo.json": (29684244, "exact"),
    "v21-windows-malicious-true-positive-no-whitening.json": (29684244, "exact"),
    "v21-windows-star-custom-rule-fileless.json": (0, "fallback"),
    "v21-windows-suspicious-mitre-mitigated.json": (29684244, "exact"),
    "v21-windows-suspicious-not-mitigated.json": (29684244, "exact"),
}


TICKET_PICKLISTS = Picklists.from_fields(
    json.loads((FIXTURES / "autotask" / "ticket-fields.json").read_text())["fields"]
)


def run_flow(payload, **kwargs):
    from flows.threat_to_ticket import threat_to_ticket

    return asyncio.run(threat_to_ticket(payload, **kwargs))


def run_flow_state(payload, **kwargs):
    from flows.threat_to_ticket import threat_to_ticket

    return asyncio.run(threat_to_ticket(payload, return_state=True, **kwargs))


def load(sample):
    return json.loads(sample.read_text())


def request_count(emulator):
    return emulator.emulator.threshold_information()["currentTimeframeRequestCount"]


class TestThreatToTicket:
    """Each real sample becomes one valid ticket in the right company."""

    @pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
    def test_sample_becomes_one_ticket(self, configured, sample):
        outcomes = run_flow(load(sample))

        tickets = configured.emulator.tickets
        assert len(outcomes) == 1 and len(tickets) == 1
        outcome, ticket = outcomes[0], tickets[0]
        assert outcome.action == "created"
        assert ticket["externalID"] == outcome.threat_id
        assert ticket["id"] == outcome.ticket_id
        assert ticket["title"] == outcome.title
        assert ticket["ticketNumber"] == outcome.ticket_number
        company_id, match = EXPECTED_COMPANY[sample.name]
        assert (ticket["companyID"], outcome.company.match) == (company_id, match)
        priority_label = TICKET_PICKLISTS.label_of("priority", ticket["priority"])
        assert priority_label == outcome.priority

    def test_ticket_carries_the_attack_techniques_of_the_threat(self, configured):
        sample = next(p for p in SAMPLES if "mitre-mitigated" in p.name)

        outcome = run_flow(load(sample))[0]

        ids = {t.id for t in outcome.techniques}
        assert {"T1059", "T1204.002", "T1566.001", "T1053.005"} <= ids
        description = configured.emulator.tickets[0]["description"]
        assert "T1204.002 User Execution: Malicious File" in description
        assert "https://console.example.invalid/incidents/threats/" in description

    def test_redelivered_threat_does_not_get_a_second_ticket(self, configured):
        payload = load(SAMPLES[0])
        first = run_flow(payload)[0]

        second = run_flow(payload)[0]

        assert second.action == "unchanged"
        assert second.ticket_id == first.ticket_id
        assert len(configured.emulator.tickets) == 1

    def test_reference_data_is_cached_across_flow_runs(self, configured):
        run_flow(load(SAMPLES[0]))
        before = request_count(configured)
        still_open = next(p for p in SAMPLES if "suspicious-not-mitigated" in p.name)

        run_flow(load(still_open))

        # Lookup by external id, create, read back: no companies, resources or fields.
        assert request_count(configured) - before == 3

    def test_dry_run_creates_nothing_and_returns_the_ticket(self, configured):
        outcome = run_flow(load(SAMPLES[2]), dry_run=True)[0]

        assert outcome.action == "would_create"
        assert outcome.ticket["externalID"] == outcome.threat_id
        assert outcome.ticket["companyID"] == EXPECTED_COMPANY[SAMPLES[2].name][0]
        assert configured.emulator.tickets == []

    def test_envelope_with_two_threats_gives_two_tickets(self, configured):
        payload = {"data": [load(SAMPLES[3]), load(SAMPLES[4])]}

        outcomes = run_flow(payload)

        assert [o.action for o in outcomes] == ["created", "created"]
        assert len(configured.emulator.tickets) == 2

    def test_run_creates_the_autotask_concurrency_limit(self, configured):
        from prefect.client.orchestration import get_client

        run_flow(load(SAMPLES[0]))

        async def read_limit():
            async with get_client() as client:
                return await client.read_global_concurrency_limit_by_name(
                    "autotask-api"
                )

        limit = asyncio.run(read_limit())
        assert limit.limit == 3

    def test_artifact_summarises_the_ticket(self, configured):
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        outcome = run_flow(load(SAMPLES[0]))[0]

        async def read_artifacts():
            async with get_client() as client:
                key = ArtifactFilterKey(any_=[f"s1-threat-{outcome.threat_id}"])
                return await client.read_artifacts(
                    artifact_filter=ArtifactFilter(key=key)
                )

        artifacts = asyncio.run(read_artifacts())
        assert artifacts, "no artifact was published"
        assert outcome.ticket_number in artifacts[0].data


class TestThreatToTicketFailures:
    """Bad input and bad configuration fail the run with a message that says why."""

    def test_payload_that_is_no_threat_fails_naming_the_problem(self, configured):
        state = run_flow_state({"hello": "world"})

        assert state.is_failed()
        assert "threat" in state.message.lower()
        assert configured.emulator.tickets == []

    def test_unmapped_site_without_fallback_fails_and_names_the_site(
        self, configured, monkeypatch
    ):
        from tasks._runtime import current_settings

        monkeypatch.delenv("S1AT_MAPPING__FALLBACK_COMPANY_ID")
        current_settings.cache_clear()
        sample = next(p for p in SAMPLES if "macos" in p.name)

        state = run_flow_state(load(sample))

        assert state.is_failed()
        assert "REDACTED" in state.message
        assert "FALLBACK_COMPANY_ID" in state.message
        assert configured.emulator.tickets == []

    def test_unknown_priority_label_fails_listing_the_valid_labels(
        self, configured, monkeypatch
    ):
        from tasks._runtime import current_settings

        monkeypatch.setenv("S1AT_TICKET__QUEUE", "Nonexistent Queue")
        current_settings.cache_clear()

        state = run_flow_state(load(SAMPLES[0]))

        assert state.is_failed()
        assert "Nonexistent Queue" in state.message
        assert "Security Operations" in state.message

    def test_wrong_secret_fails_without_leaking_credentials(
        self, configured, monkeypatch, caplog
    ):
        from tasks._runtime import current_settings

        wrong = "wrong-secret-that-must-not-leak-42"
        monkeypatch.setenv("S1AT_AUTOTASK__SECRET", wrong)
        current_settings.cache_clear()
        caplog.set_level(logging.DEBUG)

        state = run_flow_state(load(SAMPLES[0]))

        assert state.is_failed()
        assert "401" in state.message
        for text in (state.message, caplog.text):
            assert wrong not in text
            assert SECRET not in text
            assert INTEGRATION_CODE not in text
