"""Tests for the poller's checkpoint and de-duplication."""

from datetime import UTC, datetime, timedelta

from s1_autotask.sentinelone.models import Threat
from s1_autotask.sentinelone.polling import (
    MAX_RECENT,
    Checkpoint,
    advance,
    newly_parked,
    seen_key,
    select_unseen,
    window_start,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
OVERLAP = timedelta(minutes=10)


def step(checkpoint, ordered, handled, park_after=3):
    """One poll's move of the checkpoint."""
    return advance(checkpoint, ordered, handled, overlap=OVERLAP, park_after=park_after)


def threat(threat_id, minutes):
    return Threat(id=threat_id, updated_at=T0 + timedelta(minutes=minutes))


class TestWindow:
    """Each poll reaches back past the checkpoint by the overlap."""

    def test_first_poll_looks_back_the_configured_time(self):
        start = window_start(
            Checkpoint(), now=T0, overlap=OVERLAP, first_lookback=timedelta(hours=24)
        )

        assert start == T0 - timedelta(hours=24)

    def test_later_polls_overlap_the_checkpoint(self):
        checkpoint = Checkpoint(updated_at=T0)

        start = window_start(
            checkpoint, now=T0, overlap=OVERLAP, first_lookback=timedelta(hours=24)
        )

        assert start == T0 - OVERLAP


class TestSelectUnseen:
    """Updates already handled are dropped; each threat is handled once."""

    def test_handled_update_is_dropped_but_a_newer_update_is_kept(self):
        handled = threat("1", 0)
        checkpoint = step(Checkpoint(), [handled], {"1"})

        fresh = select_unseen([handled, threat("1", 5), threat("2", 1)], checkpoint)

        assert [(t.id, t.updated_at) for t in fresh] == [
            ("2", T0 + timedelta(minutes=1)),
            ("1", T0 + timedelta(minutes=5)),
        ]

    def test_late_indexed_threat_inside_the_overlap_is_picked_up(self):
        checkpoint = step(Checkpoint(), [threat("1", 0), threat("2", 3)], {"1", "2"})
        late = threat("3", -2)  # indexed after the poll that moved past its time

        fresh = select_unseen([threat("1", 0), threat("2", 3), late], checkpoint)

        assert [t.id for t in fresh] == ["3"]


class TestAdvance:
    """The checkpoint moves only past handled threats."""

    def test_stops_before_the_first_failed_threat(self):
        ordered = [threat("1", 1), threat("2", 2), threat("3", 3)]

        checkpoint = step(Checkpoint(), ordered, {"1", "3"})

        assert checkpoint.updated_at == T0 + timedelta(minutes=1)
        assert checkpoint.recent == [f"1@{(T0 + timedelta(minutes=1)).isoformat()}"]

    def test_nothing_handled_keeps_the_checkpoint(self):
        before = Checkpoint(updated_at=T0)

        after = step(before, [threat("1", 1)], set())

        assert after.updated_at == T0

    def test_serialised_checkpoint_fits_a_prefect_variable(self):
        ordered = [threat(str(10**18 + i), i / 100) for i in range(500)]

        checkpoint = step(Checkpoint(), ordered, {t.id for t in ordered})

        assert len(checkpoint.recent) == MAX_RECENT
        assert len(checkpoint.to_variable()) < 5000
        assert Checkpoint.from_variable(checkpoint.to_variable()) == checkpoint

    def test_unreadable_variable_starts_afresh(self):
        assert Checkpoint.from_variable("not json") == Checkpoint()


class TestParking:
    """A threat that keeps failing is set aside so the poller never stalls."""

    def test_a_threat_failing_every_poll_is_parked_and_passed(self):
        ordered = [threat("1", 1), threat("2", 2), threat("3", 3)]
        checkpoint = Checkpoint()
        for _ in range(2):
            checkpoint = step(checkpoint, ordered, {"1"})
            assert checkpoint.updated_at == T0 + timedelta(minutes=1)

        parked = step(checkpoint, ordered, {"1", "3"})

        assert parked.updated_at == T0 + timedelta(minutes=3)
        assert newly_parked(checkpoint, parked) == [seen_key(threat("2", 2))]
        assert parked.blocked_by is None

    def test_a_failure_that_clears_is_not_counted_against_the_next(self):
        ordered = [threat("1", 1), threat("2", 2)]
        first = step(Checkpoint(), ordered, {"1"}, park_after=2)

        second = step(first, ordered, {"1", "2"}, park_after=2)
        third = step(second, [threat("3", 3)], set(), park_after=2)

        assert second.parked == [] and third.parked == []
        assert third.blocked_by == seen_key(threat("3", 3))
        assert third.blocked_polls == 1

    def test_a_parked_threat_updated_again_is_tried_again(self):
        ordered = [threat("1", 1)]
        parked = step(Checkpoint(), ordered, set(), park_after=1)

        fresh = select_unseen([threat("1", 1), threat("1", 4)], parked)

        assert [(t.id, t.updated_at) for t in fresh] == [
            ("1", T0 + timedelta(minutes=4))
        ]
