"""One threat's ticket through its life: new, mitigated, resolved, back again."""

import asyncio
import copy
import json
from pathlib import Path

from s1_autotask.autotask.picklists import Picklists
from tests.conftest import SAMPLES

NOTE_FIELDS = Path(__file__).parents[2] / "s1_autotask" / "emulators" / "data"
NOTE_FIELDS /= "ticket-note-fields.json"
NOT_MITIGATED = next(p for p in SAMPLES if "suspicious-not-mitigated" in p.name)
THREAT_ID = "1112953674841025235"


def run_flow(payload=None, **kwargs):
    from flows.threat_to_ticket import threat_to_ticket

    return asyncio.run(threat_to_ticket(payload, **kwargs))


def threat(**info):
    raw = json.loads(NOT_MITIGATED.read_text(encoding="utf-8"))
    raw["threatInfo"].update(info)
    return raw


def mitigated():
    raw = threat(mitigationStatus="mitigated")
    raw["mitigationStatus"] = [
        {"action": "kill", "status": "success"},
        {"action": "quarantine", "status": "success"},
    ]
    return raw


def notes_of(emulator, ticket):
    return [n for n in emulator.emulator.ticket_notes if n["ticketID"] == ticket["id"]]


def only_ticket(emulator):
    [ticket] = [t for t in emulator.emulator.tickets if t["externalID"] == THREAT_ID]
    return ticket


def status_label(ticket):
    from tests.flows.test_threat_to_ticket import TICKET_PICKLISTS

    return TICKET_PICKLISTS.label_of("status", ticket["status"])


class TestTicketLife:
    def test_new_mitigated_resolved(self, configured):
        [created] = run_flow(threat())
        [again] = run_flow(threat())
        [update] = run_flow(mitigated())
        resolved = mitigated()
        resolved["threatInfo"]["incidentStatus"] = "resolved"
        [closed] = run_flow(resolved)

        ticket = only_ticket(configured)
        notes = notes_of(configured, ticket)
        assert [created.action, again.action, update.action, closed.action] == [
            "created",
            "unchanged",
            "updated",
            "closed",
        ]
        assert [n["title"] for n in notes] == [
            "SentinelOne update: Mitigation: not mitigated -> mitigated; "
            "Mitigation actions added: kill: success, quarantine: success",
            "Closed: SentinelOne marks the incident resolved",
        ]
        assert "- Incident status: unresolved -> resolved" in notes[1]["description"]
        assert status_label(ticket) == "Complete"

    def test_the_title_follows_the_threat_and_the_priority_is_left_to_people(
        self, configured
    ):
        [created] = run_flow(threat())
        priority = only_ticket(configured)["priority"]

        resolved = mitigated()
        resolved["threatInfo"]["incidentStatus"] = "resolved"
        [closed] = run_flow(resolved)

        ticket = only_ticket(configured)
        assert created.title.endswith("(suspicious, not mitigated)")
        assert ticket["title"].endswith("(suspicious, mitigated, resolved)")
        assert ticket["priority"] == priority
        assert (closed.title, closed.priority) == (ticket["title"], created.priority)
        [note] = notes_of(configured, ticket)
        assert (
            "which maps to priority Low; the ticket's priority is left as it is"
            in (note["description"])
        )

    def test_a_title_a_person_rewrote_is_kept(self, configured):
        run_flow(threat())
        retitled = {"id": only_ticket(configured)["id"], "title": "Phishing follow-up"}
        configured.emulator.update_ticket(retitled)

        [update] = run_flow(mitigated())

        assert only_ticket(configured)["title"] == "Phishing follow-up"
        assert update.title == "Phishing follow-up"

    def test_notes_are_internal_only(self, configured):
        run_flow(threat())

        run_flow(mitigated())

        [note] = notes_of(configured, only_ticket(configured))
        fields = Picklists.from_fields(json.loads(NOTE_FIELDS.read_text())["fields"])
        assert fields.label_of("publish", note["publish"]) == "Internal Only"

    def test_a_threat_that_comes_back_reopens_its_ticket(self, configured):
        run_flow(threat(incidentStatus="resolved"))
        assert status_label(only_ticket(configured)) == "Complete"

        [back] = run_flow(
            threat(incidentStatus="unresolved", analystVerdict="true_positive")
        )

        ticket = only_ticket(configured)
        assert back.action == "reopened"
        assert status_label(ticket) == "In Progress"
        assert notes_of(configured, ticket)[-1]["title"] == (
            "Reopened: the threat is active again in SentinelOne"
        )
        assert len(configured.emulator.tickets) == 1

    def test_a_false_positive_verdict_closes_the_ticket(self, configured):
        run_flow(threat())

        [closed] = run_flow(threat(analystVerdict="false_positive"))

        assert closed.action == "closed"
        assert status_label(only_ticket(configured)) == "Complete"

    def test_closing_can_be_turned_off(self, configured, monkeypatch):
        from tasks._runtime import current_settings

        monkeypatch.setenv("S1AT_TICKET__CLOSE_STATUS", "")
        current_settings.cache_clear()
        run_flow(threat())

        [update] = run_flow(threat(incidentStatus="resolved"))

        assert update.action == "updated"
        assert status_label(only_ticket(configured)) == "New"

    def test_a_dry_run_says_what_it_would_do_and_writes_nothing(self, configured):
        run_flow(threat())

        [dry] = run_flow(mitigated(), dry_run=True)

        assert dry.action == "would_update"
        assert notes_of(configured, only_ticket(configured)) == []

    def test_two_runs_for_one_threat_at_once_make_one_ticket(self, configured):
        from flows.threat_to_ticket import threat_to_ticket

        async def both():
            return await asyncio.gather(
                threat_to_ticket(threat()), threat_to_ticket(copy.deepcopy(threat()))
            )

        first, second = asyncio.run(both())

        assert sorted([first[0].action, second[0].action]) == ["created", "unchanged"]
        assert len(configured.emulator.tickets) == 1


class TestWhateverFails:
    def test_a_close_label_in_another_case_closes_once(self, configured, monkeypatch):
        from tasks._runtime import current_settings

        monkeypatch.setenv("S1AT_TICKET__CLOSE_STATUS", "complete")
        current_settings.cache_clear()
        run_flow(threat())
        resolved = threat(incidentStatus="resolved")

        [closed] = run_flow(resolved)
        [again] = run_flow(resolved)

        ticket = only_ticket(configured)
        assert (closed.action, again.action) == ("closed", "unchanged")
        assert status_label(ticket) == "Complete"
        assert len(notes_of(configured, ticket)) == 1

    def test_a_status_change_whose_answer_was_lost_is_told_once(self, configured):
        from s1_autotask.emulators.autotask import FaultPlan

        run_flow(threat())
        configured.emulator.faults = FaultPlan(lost_answer=1.0, methods={"PATCH"})

        run_flow(threat(incidentStatus="resolved"))

        configured.emulator.faults = None
        ticket = only_ticket(configured)
        [note] = notes_of(configured, ticket)
        assert status_label(ticket) == "Complete"
        assert "- Incident status: unresolved -> resolved" in note["description"]

    def test_a_run_arriving_during_a_slow_create_finds_the_ticket(
        self, configured, monkeypatch
    ):
        from flows.threat_to_ticket import threat_to_ticket
        from s1_autotask.emulators.autotask import FaultPlan
        from tasks._runtime import current_settings

        monkeypatch.setenv("S1AT_AUTOTASK__TIMEOUT_SECONDS", "1")
        monkeypatch.setenv("S1AT_AUTOTASK__SETTLE_SECONDS", "3")
        current_settings.cache_clear()
        configured.emulator.faults = FaultPlan(
            slow=1.0, methods={"POST"}, paths={"tickets"}, slow_seconds=2
        )

        async def both():
            return await asyncio.gather(
                threat_to_ticket(threat()), threat_to_ticket(threat())
            )

        first, second = asyncio.run(both())

        configured.emulator.faults = None
        assert sorted([first[0].action, second[0].action]) == ["created", "unchanged"]
        assert len(configured.emulator.tickets) == 1


class TestWriteBack:
    def test_a_new_ticket_is_written_back_to_sentinelone(self, sentinelone):
        [created] = run_flow(threat_ids=[THREAT_ID])

        state = sentinelone.state
        assert state.external_ticket_id(THREAT_ID) == created.ticket_number
        [note] = state.notes(THREAT_ID)
        assert note["text"].startswith(
            f"Autotask ticket {created.ticket_number} was created: http"
        )
        assert "TicketNumber=" + created.ticket_number in note["text"]

    def test_a_failed_write_back_never_fails_the_ticket(self, configured, monkeypatch):
        from tasks._runtime import current_settings

        monkeypatch.setenv("S1AT_SENTINELONE__API_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("S1AT_SENTINELONE__API_TOKEN", "token-for-nothing-123")
        current_settings.cache_clear()

        [created] = run_flow(threat())

        assert created.action == "created"
        assert len(configured.emulator.tickets) == 1

    def test_an_unchanged_threat_that_carries_its_ticket_writes_nothing(
        self, sentinelone
    ):
        run_flow(threat_ids=[THREAT_ID])
        # Each write-back moves updatedAt in the emulator, as it likely does in
        # SentinelOne; an unmoved one proves nothing was written.
        stamp = sentinelone.state.threat(THREAT_ID)["threatInfo"]["updatedAt"]

        [again] = run_flow(threat_ids=[THREAT_ID])

        assert again.action == "unchanged"
        assert sentinelone.state.threat(THREAT_ID)["threatInfo"]["updatedAt"] == stamp
        assert len(sentinelone.state.notes(THREAT_ID)) == 1
