"""What an existing ticket needs when its threat is seen again."""

import pytest

from s1_autotask.attack.analysis import analyze_techniques
from s1_autotask.autotask.lifecycle import (
    MAX_LISTED,
    STATE_PREFIX,
    ThreatState,
    describe_changes,
    plan_update,
)
from s1_autotask.sentinelone.models import Threat

NEW = ThreatState(
    confidence="malicious",
    mitigation="not_mitigated",
    incident="unresolved",
    verdict="undefined",
    techniques=("T1059",),
    actions=(),
)
MITIGATED = NEW.model_copy(
    update={"mitigation": "mitigated", "actions": ("kill: success",)}
)
RESOLVED = MITIGATED.model_copy(update={"incident": "resolved"})


def plan(known, current, status="New", close="Complete", reopen="In Progress"):
    return plan_update(
        known,
        current,
        ticket_status=status,
        close_status=close,
        reopen_status=reopen,
    )


class TestStateLine:
    def test_the_state_line_reads_back_as_written(self):
        text = f"Summary\n...\n\n{MITIGATED.line()}"

        assert ThreatState.read(text) == MITIGATED

    def test_the_last_readable_line_wins_and_an_edited_one_is_skipped(self):
        text = "\n".join([NEW.line(), MITIGATED.line(), STATE_PREFIX + "{broken"])

        assert ThreatState.read(text) == MITIGATED

    def test_text_without_a_state_line_has_no_state(self):
        assert ThreatState.read("An analyst's own words") is None

    def test_a_huge_technique_list_is_kept_as_a_count_and_digest(self):
        ids = [f"T{n:04d}" for n in range(1001, 1700)]
        analysis = analyze_techniques(ids)
        threat = Threat(id="1")
        assert len(analysis.techniques) > MAX_LISTED

        state = ThreatState.of(threat, analysis)
        fewer = ThreatState.of(threat, analyze_techniques(ids[:-50]))

        assert len(state.line()) < 500
        assert state.techniques[0].startswith(f"{len(analysis.techniques)} values")
        assert describe_changes(fewer, state) == [
            f"ATT&CK techniques changed: now {len(analysis.techniques)} values"
        ]


class TestChanges:
    def test_each_change_says_from_what_to_what(self):
        changes = describe_changes(NEW, MITIGATED)

        assert changes == [
            "Mitigation: not mitigated -> mitigated",
            "Mitigation actions added: kill: success",
        ]

    def test_new_techniques_are_named(self):
        after = NEW.model_copy(update={"techniques": ("T1059", "T1486")})

        assert describe_changes(NEW, after) == ["ATT&CK techniques added: T1486"]

    def test_no_change_is_no_sentence(self):
        assert describe_changes(NEW, NEW) == []


class TestPlan:
    def test_the_same_state_again_does_nothing(self):
        assert plan(NEW, NEW).action == "unchanged"

    def test_a_change_becomes_a_note_that_ends_with_the_new_state(self):
        result = plan(NEW, MITIGATED)

        assert result.action == "updated"
        assert result.status_label is None
        assert result.note_title == (
            "SentinelOne update: Mitigation: not mitigated -> mitigated; "
            "Mitigation actions added: kill: success"
        )
        assert "- Mitigation: not mitigated -> mitigated" in result.note_text
        assert ThreatState.read(result.note_text) == MITIGATED

    def test_a_resolved_incident_closes_the_ticket_with_a_reason(self):
        result = plan(MITIGATED, RESOLVED)

        assert result.action == "closed"
        assert result.status_label == "Complete"
        assert result.note_title == ("Closed: SentinelOne marks the incident resolved")
        assert "- Incident status: unresolved -> resolved" in result.note_text

    def test_a_false_positive_verdict_closes_the_ticket(self):
        fp = NEW.model_copy(update={"verdict": "false_positive"})

        result = plan(NEW, fp)

        assert result.action == "closed"
        assert "false positive" in result.note_title

    def test_closing_can_be_turned_off(self):
        result = plan(MITIGATED, RESOLVED, close=None)

        assert (result.action, result.status_label) == ("updated", None)

    def test_a_ticket_whose_close_was_lost_is_closed_even_without_a_change(self):
        result = plan(RESOLVED, RESOLVED, status="New")

        assert (result.action, result.status_label) == ("closed", "Complete")

    def test_an_already_closed_ticket_is_left_closed(self):
        assert plan(RESOLVED, RESOLVED, status="Complete").action == "unchanged"

    def test_a_threat_that_comes_back_reopens_its_closed_ticket(self):
        back = RESOLVED.model_copy(
            update={"incident": "unresolved", "mitigation": "not_mitigated"}
        )

        result = plan(RESOLVED, back, status="Complete")

        assert (result.action, result.status_label) == ("reopened", "In Progress")
        assert result.note_title == (
            "Reopened: the threat is active again in SentinelOne"
        )

    def test_a_redelivery_never_reopens_a_ticket_closed_by_hand(self):
        assert plan(NEW, NEW, status="Complete").action == "unchanged"

    @pytest.mark.parametrize("known", [None])
    def test_a_ticket_without_state_gets_it_recorded(self, known):
        result = plan(known, NEW)

        assert result.action == "updated"
        assert ThreatState.read(result.note_text) == NEW
