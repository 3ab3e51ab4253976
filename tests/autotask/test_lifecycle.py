"""What an existing ticket needs when its threat is seen again."""

from datetime import UTC, datetime

from s1_autotask.attack.analysis import analyze_techniques
from s1_autotask.autotask.lifecycle import (
    MAX_LISTED,
    STATE_PREFIX,
    KnownState,
    ThreatState,
    describe_changes,
    latest_state,
    plan_update,
    refreshed_title,
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


def plan(
    known, current, closed=False, close="Complete", reopen="In Progress", note=True
):
    return plan_update(
        KnownState(known, from_note=note),
        current,
        ticket_closed=closed,
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
        assert result.note_title == "Closed: SentinelOne marks the incident resolved"
        assert "- Incident status: unresolved -> resolved" in result.note_text

    def test_a_false_positive_verdict_closes_the_ticket(self):
        fp = NEW.model_copy(update={"verdict": "false_positive"})

        result = plan(NEW, fp)

        assert result.action == "closed"
        assert "false positive" in result.note_title

    def test_closing_can_be_turned_off(self):
        result = plan(MITIGATED, RESOLVED, close=None)

        assert (result.action, result.status_label) == ("updated", None)

    def test_a_ticket_made_for_a_resolved_threat_is_closed_once(self):
        first = plan(RESOLVED, RESOLVED, note=False)
        after = plan(RESOLVED, RESOLVED, note=True)

        assert (first.action, first.status_label) == ("closed", "Complete")
        assert after.action == "unchanged"

    def test_a_ticket_an_analyst_reopened_stays_open_on_a_redelivery(self):
        assert plan(RESOLVED, RESOLVED, closed=False).action == "unchanged"

    def test_a_closed_ticket_whose_close_note_was_lost_gets_the_note_only(self):
        result = plan(MITIGATED, RESOLVED, closed=True)

        assert (result.action, result.status_label) == ("updated", None)
        assert "- Incident status: unresolved -> resolved" in result.note_text

    def test_a_threat_that_comes_back_reopens_its_closed_ticket(self):
        back = RESOLVED.model_copy(
            update={"incident": "unresolved", "mitigation": "not_mitigated"}
        )

        result = plan(RESOLVED, back, closed=True)

        assert (result.action, result.status_label) == ("reopened", "In Progress")
        assert result.note_title == (
            "Reopened: the threat is active again in SentinelOne"
        )

    def test_a_ticket_an_analyst_closed_is_not_reopened_by_a_mitigation(self):
        result = plan(NEW, MITIGATED, closed=True)

        assert (result.action, result.status_label) == ("updated", None)

    def test_a_ticket_without_our_state_is_never_reopened(self):
        result = plan(None, NEW, closed=True)

        assert (result.action, result.status_label) == ("updated", None)
        assert ThreatState.read(result.note_text) == NEW

    def test_a_delivery_older_than_the_ticket_knows_is_ignored(self):
        newer = MITIGATED.model_copy(
            update={"updated_at": datetime(2026, 1, 2, tzinfo=UTC)}
        )
        older = NEW.model_copy(update={"updated_at": datetime(2026, 1, 1, tzinfo=UTC)})

        assert plan(newer, older).action == "unchanged"

    def test_a_delivery_without_a_time_never_overrides_one_with(self):
        timed = MITIGATED.model_copy(
            update={"updated_at": datetime(2026, 1, 2, tzinfo=UTC)}
        )

        assert plan(timed, NEW).action == "unchanged"


class TestRemarks:
    def test_a_remark_is_told_before_the_state_line_which_stays_last(self):
        result = plan(NEW, MITIGATED).with_remarks(["Severity now HIGH."])

        lines = result.note_text.splitlines()
        assert lines[-3:-1] == ["Severity now HIGH.", ""]
        assert ThreatState.read(result.note_text) == MITIGATED

    def test_no_remark_leaves_the_note_as_it_was(self):
        result = plan(NEW, MITIGATED)

        assert result.with_remarks([]) is result


class TestTitle:
    HEAD = "SentinelOne Malware: cmd.exe (interactive) on HOST"
    OURS = f"{HEAD} (malicious, not mitigated)"

    def test_our_title_follows_the_threat_state(self):
        new = f"{self.HEAD} (malicious, mitigated)"

        assert refreshed_title(self.OURS, new) == new

    def test_a_title_a_person_rewrote_is_theirs(self):
        new = f"{self.HEAD} (malicious, mitigated)"

        assert refreshed_title("Escalated: HOST, call the client", new) is None

    def test_the_same_title_needs_no_write(self):
        assert refreshed_title(self.OURS, self.OURS) is None

    def test_a_title_without_a_state_gets_one(self):
        bare = "SentinelOne Malware: x.exe on HOST"

        assert refreshed_title(bare, bare + " (suspicious)") == bare + " (suspicious)"


class TestLatestState:
    def test_the_note_with_the_highest_id_wins_whatever_its_time_says(self):
        notes = [
            {
                "id": 2,
                "createDateTime": "2026-01-01T00:00:00.5Z",
                "description": MITIGATED.line(),
            },
            {
                "id": 1,
                "createDateTime": "2026-01-01T00:00:00.57Z",
                "description": NEW.line(),
            },
        ]

        known = latest_state(RESOLVED.line(), notes)

        assert (known.state, known.from_note) == (MITIGATED, True)

    def test_without_notes_the_description_tells(self):
        known = latest_state(f"text\n\n{NEW.line()}", [])

        assert (known.state, known.from_note) == (NEW, False)
