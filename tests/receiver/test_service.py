"""What the command line calls: serve, list deliveries, replay one."""

import asyncio
import json
import socket

import pytest
from pydantic import SecretStr

from s1_autotask.receiver import (
    DeliveryNotFoundError,
    DeliveryStore,
    ReceiverConfigError,
    ReplayError,
    list_deliveries,
    open_store,
    replay,
    serve,
    service,
)
from s1_autotask.receiver.store import RetryPolicy
from tests.receiver.conftest import (
    MACOS,
    MITRE,
    MITRE_ID,
    SECRET,
    BlockingDispatcher,
    FailingDispatcher,
    RecordingDispatcher,
    threat,
)

MITRE_KEY = f"s1:{MITRE_ID}:2022-03-11T12:44:33.501615+00:00"


def handed_on(store, dispatcher, settings):
    """A delivery of the MITRE threat, already handed on once by ``dispatcher``."""
    delivery = store.add(
        MITRE.read_bytes(),
        content_type="application/json",
        kind="threats",
        threat_ids=[MITRE_ID],
    )
    [claim] = store.claim_due()
    store.mark_done(claim, [dispatcher.runs.setdefault(MITRE_KEY, "run-1")])
    return delivery


async def settled(tasks, count, timeout=5.0):
    """Wait until ``count`` of ``tasks`` are done, or the timeout passes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while sum(task.done() for task in tasks) < count:
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.01)


class TestReplay:
    @pytest.mark.anyio
    async def test_a_done_delivery_is_handed_on_again_as_a_new_run(
        self, store, settings, dispatcher
    ):
        delivery = handed_on(store, dispatcher, settings)

        replayed = await replay(store, delivery.id, dispatcher, settings=settings)

        assert replayed.status == "done"
        assert replayed.replays == 1
        assert replayed.flow_run_ids == ("run-2",)
        assert [h.idempotency_key for h in dispatcher.calls] == [
            f"{MITRE_KEY}:replay:1"
        ]

    @pytest.mark.anyio
    async def test_each_replay_starts_its_own_run(self, store, settings, dispatcher):
        delivery = handed_on(store, dispatcher, settings)
        await replay(store, delivery.id, dispatcher, settings=settings)

        again = await replay(store, delivery.id, dispatcher, settings=settings)

        assert again.flow_run_ids == ("run-3",)
        assert dispatcher.calls[-1].idempotency_key == f"{MITRE_KEY}:replay:2"

    @pytest.mark.anyio
    async def test_a_failed_delivery_is_handed_on_by_a_replay(
        self, store, settings, dispatcher
    ):
        delivery = store.add(
            b'{"threatId": "42"}',
            content_type="application/json",
            kind="threat_ids",
            threat_ids=["42"],
        )
        [claim] = store.claim_due()
        store.mark_attempt_failed(claim, "down", retry=RetryPolicy(), permanent=True)

        replayed = await replay(store, delivery.id, dispatcher, settings=settings)

        assert replayed.status == "done"
        assert replayed.last_error is None
        assert [h.parameters for h in dispatcher.calls] == [{"threat_ids": ["42"]}]

    @pytest.mark.anyio
    async def test_a_replay_that_fails_says_why_and_stays_pending(
        self, store, settings, dispatcher
    ):
        delivery = handed_on(store, dispatcher, settings)

        replayed = await replay(
            store, delivery.id, FailingDispatcher(), settings=settings
        )

        assert replayed.status == "pending"
        assert replayed.attempts == 1
        assert "Prefect API at http://prefect:4200 is down" in replayed.last_error

    @pytest.mark.anyio
    async def test_a_rejected_body_that_is_now_usable_is_handed_on(
        self, store, settings, dispatcher
    ):
        rejected = store.add_rejected(
            b'{"threatId": "42"}',
            content_type="text/plain",
            reason="The Content-Type 'text/plain' is not JSON.",
        )

        replayed = await replay(store, rejected.id, dispatcher, settings=settings)

        assert replayed.status == "done"
        assert replayed.kind == "threat_ids"
        assert replayed.threat_ids == ("42",)

    @pytest.mark.anyio
    async def test_a_rejected_body_still_unusable_is_refused(
        self, store, settings, dispatcher
    ):
        rejected = store.add_rejected(
            b'{"hello": "world"}', content_type="application/json", reason="No."
        )

        with pytest.raises(ReplayError, match="still unusable: Threat payload is"):
            await replay(store, rejected.id, dispatcher, settings=settings)

        assert store.get(rejected.id).status == "rejected"
        assert dispatcher.calls == []

    @pytest.mark.anyio
    async def test_an_unknown_delivery_cannot_be_replayed(self, store, dispatcher):
        with pytest.raises(DeliveryNotFoundError, match="no delivery 'f00d'"):
            await replay(store, "f00d", dispatcher)

    @pytest.mark.anyio
    async def test_concurrent_replays_start_each_run_once_and_record_it(
        self, store, settings
    ):
        three = [threat(MITRE), threat(MACOS), {"id": "42", "classification": "x"}]
        delivery = store.add(
            json.dumps(three).encode(),
            content_type="application/json",
            kind="threats",
            threat_ids=[MITRE_ID, "2120407777501474123", "42"],
        )
        [claim] = store.claim_due()
        store.mark_done(claim, ["run-0"])
        dispatcher = BlockingDispatcher()

        replays = [
            asyncio.create_task(
                replay(store, delivery.id, dispatcher, settings=settings)
            )
            for _ in range(10)
        ]
        await asyncio.wait_for(dispatcher.entered.wait(), 5)
        # Every replay but the one handing on is answered while it still is.
        await settled(replays, 9)
        dispatcher.release.set()
        outcomes = await asyncio.gather(*replays, return_exceptions=True)

        records = [o for o in outcomes if not isinstance(o, BaseException)]
        refusals = [o for o in outcomes if isinstance(o, BaseException)]
        [record] = records
        assert len(dispatcher.calls) == 3
        assert all(h.idempotency_key.endswith(":replay:1") for h in dispatcher.calls)
        assert record.flow_run_ids == tuple(dispatcher.runs.values())
        assert store.get(delivery.id) == record
        assert {str(r) for r in refusals} == {
            f"Delivery {delivery.id} is being handed on right now; try again when "
            "it is done."
        }
        assert all(isinstance(r, ReplayError) for r in refusals)

    @pytest.mark.anyio
    async def test_a_delivery_the_receiver_is_handing_on_is_not_replayed(
        self, store, settings, dispatcher
    ):
        delivery = store.add(
            b'{"threatId": "42"}',
            content_type="application/json",
            kind="threat_ids",
            threat_ids=["42"],
        )
        [claim] = store.claim_due()

        with pytest.raises(ReplayError, match="is being handed on right now"):
            await replay(store, delivery.id, dispatcher, settings=settings)

        assert dispatcher.calls == []
        assert store.get(delivery.id) == claim

    @pytest.mark.anyio
    async def test_a_delivery_whose_handoff_died_is_replayed(
        self, settings, dispatcher
    ):
        # A lease of zero: every claim is already older than it.
        store = DeliveryStore(settings.data_dir, lease_seconds=0)
        delivery = store.add(
            b'{"threatId": "42"}',
            content_type="application/json",
            kind="threat_ids",
            threat_ids=["42"],
        )
        store.claim_due()

        replayed = await replay(store, delivery.id, dispatcher, settings=settings)

        assert replayed.status == "done"
        assert replayed.replays == 1
        assert [h.threat_id for h in dispatcher.calls] == ["42"]


class TestListing:
    def test_deliveries_are_listed_from_the_configured_folder(self, settings):
        store = open_store(settings)
        kept = store.add(
            b'{"threatId": "42"}',
            content_type="application/json",
            kind="threat_ids",
            threat_ids=["42"],
        )
        store.add_rejected(b"{}", content_type="application/json", reason="No.")

        pending = list_deliveries(open_store(settings), status="pending")

        assert [d.id for d in pending] == [kept.id]
        assert (settings.data_dir / "deliveries.sqlite3").is_file()


class TestServe:
    @pytest.mark.parametrize(
        ("secret", "problem"),
        [
            ("", "set S1AT_RECEIVER__SECRET"),
            ("0123456789abcde", "15 characters long; use at least 16"),
        ],
    )
    def test_serving_is_refused_without_a_usable_secret(
        self, settings, secret, problem
    ):
        settings = settings.model_copy(update={"secret": SecretStr(secret)})

        with pytest.raises(ReceiverConfigError, match=problem):
            serve(settings, RecordingDispatcher())

        assert not settings.data_dir.exists()

    def test_serving_on_a_busy_port_is_a_clear_error(self, settings, monkeypatch):
        masked: list[list[str]] = []
        # The real filter is process-wide and would hide leaks from other tests.
        monkeypatch.setattr(service, "install_redaction", masked.append)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            settings = settings.model_copy(update={"port": port})

            with pytest.raises(ReceiverConfigError, match=f"127.0.0.1:{port}"):
                serve(settings, RecordingDispatcher())

        assert masked == [[SECRET]]
