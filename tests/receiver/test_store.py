"""The delivery store: durable records, atomic claims, backoff and replay resets."""

import sqlite3
import threading
from datetime import timedelta

import pytest

from s1_autotask.receiver import DeliveryNotFoundError, DeliveryStore, ReplayError
from s1_autotask.receiver.errors import StoreError
from s1_autotask.receiver.store import CLAIM_LEASE_SECONDS, RetryPolicy

RETRY = RetryPolicy(base_seconds=5.0, max_seconds=600.0, max_attempts=3)


def add(store: DeliveryStore, threat_id: str = "42", body: bytes | None = None):
    return store.add(
        body or f'{{"threatId": "{threat_id}"}}'.encode(),
        content_type="application/json",
        kind="threat_ids",
        threat_ids=[threat_id],
    )


class TestRecords:
    def test_a_delivery_is_kept_byte_for_byte_across_reopening(self, tmp_path):
        body = b'{"threatId": "42", "note": "caf\xc3\xa9"}  \n'
        added = add(DeliveryStore(tmp_path), body=body)

        reopened = DeliveryStore(tmp_path).get(added.id)

        assert reopened == added
        assert reopened.body == body
        assert reopened.status == "pending"
        assert reopened.next_attempt_at == reopened.received_at

    def test_an_unknown_id_is_not_found(self, store):
        with pytest.raises(DeliveryNotFoundError, match="no delivery 'nope'"):
            store.get("nope")

    def test_deliveries_are_listed_newest_first_and_by_status(self, store):
        first, second, third = add(store, "1"), add(store, "2"), add(store, "3")
        rejected = store.add_rejected(b"{}", content_type="text/plain", reason="x")

        newest = store.recent(limit=3)
        pending = store.recent(status="pending")

        assert [d.id for d in newest] == [rejected.id, third.id, second.id]
        assert [d.id for d in pending] == [third.id, second.id, first.id]

    def test_an_unknown_status_is_refused(self, store):
        with pytest.raises(ValueError, match="Unknown delivery status 'lost'"):
            store.recent(status="lost")

    def test_a_reason_is_kept_on_one_bounded_line(self, store):
        add(store)
        [claim] = store.claim_due()

        failed = store.mark_attempt_failed(claim, "line\n" * 400, retry=RETRY)

        assert "\n" not in failed.last_error
        assert len(failed.last_error) == 500
        assert failed.last_error.endswith("...")

    def test_a_store_written_by_a_newer_version_is_refused(self, tmp_path, store):
        with sqlite3.connect(store.path) as conn:
            conn.execute("PRAGMA user_version = 2")

        with pytest.raises(StoreError, match="written by a newer version"):
            DeliveryStore(store.path.parent)

    def test_a_folder_that_cannot_be_made_is_a_store_error(self, tmp_path):
        (tmp_path / "file").write_text("")

        with pytest.raises(StoreError, match="cannot be created"):
            DeliveryStore(tmp_path / "file" / "data")


class TestClaims:
    def test_claims_from_many_threads_never_take_one_delivery_twice(self, tmp_path):
        ids = {add(DeliveryStore(tmp_path), str(n)).id for n in range(60)}
        claimed: list[str] = []
        lock = threading.Lock()

        def claim_until_empty() -> None:
            own = DeliveryStore(tmp_path)
            while batch := own.claim_due(limit=3):
                with lock:
                    claimed.extend(d.id for d in batch)

        threads = [threading.Thread(target=claim_until_empty) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(claimed) == sorted(ids)

    def test_a_claim_is_an_attempt_in_dispatching(self, store):
        delivery = add(store)

        [claim] = store.claim_due()

        assert claim.id == delivery.id
        assert claim.status == "dispatching"
        assert claim.attempts == 1
        assert store.claim_due() == []

    def test_a_claim_older_than_the_lease_is_taken_over(self, store):
        add(store)
        [stale] = store.claim_due()
        later = stale.claimed_at + timedelta(seconds=CLAIM_LEASE_SECONDS + 1)

        [fresh] = store.claim_due(now=later)

        assert fresh.attempts == 2
        assert store.mark_done(stale, ["run-old"]) is None
        assert store.mark_done(fresh, ["run-new"]).flow_run_ids == ("run-new",)

    def test_a_renewed_claim_is_not_taken_over(self, store):
        add(store)
        [claim] = store.claim_due()
        renewed = store.extend_claim(claim)
        before_lease = store.get(claim.id).claimed_at + timedelta(
            seconds=CLAIM_LEASE_SECONDS - 1
        )

        assert renewed
        assert store.claim_due(now=before_lease) == []

    def test_a_failed_attempt_waits_for_its_backoff(self, store):
        add(store)
        [claim] = store.claim_due()

        pending = store.mark_attempt_failed(claim, "Prefect is down", retry=RETRY)

        assert pending.status == "pending"
        assert pending.last_error == "Prefect is down"
        assert store.claim_due() == []
        assert [d.id for d in store.claim_due(now=pending.next_attempt_at)] == [
            claim.id
        ]

    def test_a_delivery_is_failed_after_the_last_attempt(self, store):
        add(store)
        far = store.recent()[0].received_at + timedelta(days=1)
        outcomes = []

        for _ in range(RETRY.max_attempts):
            [claim] = store.claim_due(now=far)
            outcomes.append(store.mark_attempt_failed(claim, "down", retry=RETRY))

        assert [d.status for d in outcomes] == ["pending", "pending", "failed"]
        assert outcomes[-1].attempts == 3
        assert outcomes[-1].next_attempt_at is None
        assert store.claim_due(now=far + timedelta(days=1)) == []

    @pytest.mark.parametrize(
        ("attempt", "ceiling"),
        [(1, 5), (2, 10), (3, 20), (7, 320), (8, 600), (40, 600)],
    )
    def test_backoff_doubles_up_to_its_maximum_with_jitter(self, attempt, ceiling):
        delays = [RETRY.delay(attempt) for _ in range(200)]

        assert ceiling / 2 <= min(delays)
        assert max(delays) <= ceiling
        assert max(delays) - min(delays) > 0


class TestReplayClaims:
    def test_a_done_delivery_is_claimed_again_with_its_replay_counted(self, store):
        add(store)
        [claim] = store.claim_due()
        store.mark_done(claim, ["run-1"])

        replay = store.claim_for_replay(claim.id)

        assert replay.status == "dispatching"
        assert replay.replays == 1
        assert replay.attempts == 1
        assert store.claim_due() == []

    def test_a_delivery_being_handed_on_is_not_claimed_for_replay(self, store):
        add(store)
        [claim] = store.claim_due()

        with pytest.raises(ReplayError) as caught:
            store.claim_for_replay(claim.id)

        assert str(caught.value) == (
            f"Delivery {claim.id} is being handed on right now; try again when it "
            "is done."
        )
        assert store.get(claim.id) == claim
        assert store.mark_done(claim, ["run-1"]).status == "done"

    def test_a_claim_older_than_the_lease_is_taken_over_by_a_replay(self, store):
        add(store)
        [stale] = store.claim_due()
        later = stale.claimed_at + timedelta(seconds=CLAIM_LEASE_SECONDS + 1)

        replay = store.claim_for_replay(stale.id, now=later)

        assert replay.replays == 1
        assert store.mark_done(stale, ["run-old"]) is None
        assert store.mark_done(replay, ["run-new"]).flow_run_ids == ("run-new",)

    def test_replays_from_many_threads_claim_a_delivery_once(self, tmp_path):
        delivery = add(DeliveryStore(tmp_path))
        claims: list[int] = []
        refusals: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(8)

        def replay() -> None:
            own = DeliveryStore(tmp_path)
            start.wait()
            try:
                claim = own.claim_for_replay(delivery.id)
            except ReplayError as exc:
                with lock:
                    refusals.append(str(exc))
            else:
                with lock:
                    claims.append(claim.replays)

        threads = [threading.Thread(target=replay) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert claims == [1]
        assert len(refusals) == 7
        assert all("is being handed on right now" in text for text in refusals)
        assert DeliveryStore(tmp_path).get(delivery.id).replays == 1

    def test_a_rejected_delivery_without_threats_cannot_be_claimed(self, store):
        rejected = store.add_rejected(
            b"{}", content_type="application/json", reason="No threat in it."
        )

        with pytest.raises(ReplayError, match="holds no threats.*No threat in it"):
            store.claim_for_replay(rejected.id)

        assert store.get(rejected.id).status == "rejected"

    def test_a_rejected_delivery_read_anew_is_claimed(self, store):
        rejected = store.add_rejected(
            b'{"threatId": "7"}', content_type="text/plain", reason="Not JSON."
        )

        claim = store.claim_for_replay(rejected.id, kind="threat_ids", threat_ids=["7"])

        assert claim.status == "dispatching"
        assert claim.kind == "threat_ids"
        assert claim.threat_ids == ("7",)
        assert claim.last_error is None

    def test_an_unknown_delivery_cannot_be_claimed_for_replay(self, store):
        with pytest.raises(DeliveryNotFoundError, match="no delivery 'nope'"):
            store.claim_for_replay("nope")
