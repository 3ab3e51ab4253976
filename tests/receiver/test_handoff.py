"""Turning a delivery into flow runs: parameters, idempotency keys, recorded outcome."""

import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s1_autotask.receiver import Delivery, Handoff, HandoffError, plan_handoffs
from s1_autotask.receiver.handoff import hand_on
from s1_autotask.sentinelone import ThreatPayloadError
from s1_autotask.sentinelone.intake import read_request, read_request_json
from tests.receiver.conftest import (
    MACOS,
    MACOS_ID,
    MITRE,
    MITRE_ID,
    FailingDispatcher,
    RecordingDispatcher,
    threat,
)

MITRE_KEY = f"s1:{MITRE_ID}:2022-03-11T12:44:33.501615+00:00"


def keep(store, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = read_request_json(body)
    delivery = store.add(
        body,
        content_type="application/json",
        kind=request.kind,
        threat_ids=request.ids(),
    )
    return delivery, request


class TestPlan:
    def test_a_whole_threat_travels_as_posted_keyed_by_its_version(self, store):
        delivery, request = keep(store, MITRE.read_bytes())

        [handoff] = plan_handoffs(delivery, request)

        assert handoff.parameters == {"payload": threat(MITRE)}
        assert handoff.idempotency_key == MITRE_KEY
        assert handoff.threat_id == MITRE_ID

    def test_a_threat_too_large_for_a_flow_run_travels_by_id(self, store):
        huge = threat(MITRE)
        huge["threatInfo"]["maliciousProcessArguments"] = "A" * 600_000
        delivery, request = keep(store, huge)

        [handoff] = plan_handoffs(delivery, request)

        assert handoff.parameters == {"threat_ids": [MITRE_ID]}
        assert handoff.idempotency_key == MITRE_KEY

    def test_a_threat_posted_twice_is_handed_on_once_in_its_newest_version(self, store):
        older, newer = threat(MITRE), threat(MITRE)
        newer["threatInfo"]["updatedAt"] = "2024-01-01T00:00:00.000000Z"
        delivery, request = keep(store, {"data": [older, threat(MACOS), newer]})

        handoffs = plan_handoffs(delivery, request)

        assert [h.threat_id for h in handoffs] == [MITRE_ID, MACOS_ID]
        assert handoffs[0].parameters == {"payload": newer}
        assert handoffs[0].idempotency_key == (
            f"s1:{MITRE_ID}:2024-01-01T00:00:00+00:00"
        )

    def test_a_threat_without_updated_at_is_keyed_by_its_body(self, store):
        unversioned = threat(MITRE)
        del unversioned["threatInfo"]["updatedAt"]
        delivery, request = keep(store, [unversioned])

        [handoff] = plan_handoffs(delivery, request)

        digest = hashlib.sha256(delivery.body).hexdigest()[:16]
        assert handoff.idempotency_key == f"s1:{MITRE_ID}:body:{digest}"

    def test_a_doorbell_asks_for_each_threat_by_id_keyed_by_the_body(self, store):
        delivery, request = keep(store, {"threatIds": ["11", "22"]})

        handoffs = plan_handoffs(delivery, request)

        digest = hashlib.sha256(delivery.body).hexdigest()[:16]
        assert [h.parameters for h in handoffs] == [
            {"threat_ids": ["11"]},
            {"threat_ids": ["22"]},
        ]
        assert [h.idempotency_key for h in handoffs] == [
            f"s1:11:body:{digest}",
            f"s1:22:body:{digest}",
        ]

    def test_only_an_identical_doorbell_gets_the_same_key(self, store):
        first = keep(store, b'{"threatId": "11"}')
        same = keep(store, b'{"threatId": "11"}')
        other = keep(store, b'{"threatId": "11", "siteName": "Example Site"}')

        keys = [
            plan_handoffs(*pair)[0].idempotency_key for pair in (first, same, other)
        ]

        assert keys[0] == keys[1]
        assert keys[0] != keys[2]

    @pytest.mark.parametrize("payload", [MITRE.read_bytes(), b'{"threatId": "11"}'])
    def test_a_replay_gets_a_key_of_its_own(self, store, payload):
        delivery, request = keep(store, payload)

        original = plan_handoffs(delivery, request)[0].idempotency_key
        replayed = plan_handoffs(delivery, request, replay=2)[0].idempotency_key

        assert replayed == f"{original}:replay:2"


IDS = st.integers(min_value=100, max_value=999).map(str)
# The keys that decide what an object is read as, mixed freely.
BASES = st.sampled_from(
    [
        {},
        {"classification": "Malware"},
        {"agentComputerName": "pc-1"},
        {"threatInfo": {}},
        {"detectionSource": {"product": "EDR"}},
        {"alertInfo": {}},
    ]
)
EXTRA_KEYS = st.sampled_from(
    ["threatId", "threat_id", "threatIds", "threat_ids", "externalId", "alert", "data"]
)


def _objects(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    values = st.one_of(
        IDS,
        st.lists(IDS, min_size=1, max_size=3),
        IDS.map(lambda threat_id: {"externalId": threat_id}),
        st.lists(children, min_size=1, max_size=3),
        st.just([1, 2]),
    )
    return st.builds(
        lambda base, threat_id, extra: (
            base | ({"id": threat_id} if threat_id else {}) | extra
        ),
        BASES,
        st.none() | IDS,
        st.dictionaries(EXTRA_KEYS, values, max_size=3),
    )


PAYLOADS = st.recursive(_objects(st.nothing()), _objects, max_leaves=6).flatmap(
    lambda node: st.sampled_from([node, [node], {"data": [node, node]}])
)


class TestWhatTheFlowReads:
    """Whatever a body holds, each run reads exactly the threat the 202 named."""

    @settings(max_examples=400, deadline=None)
    @given(payload=PAYLOADS)
    def test_each_run_reads_the_threat_it_was_planned_for(self, payload):
        body = json.dumps(payload).encode()
        try:
            request = read_request_json(body)
        except ThreatPayloadError:
            return
        delivery = Delivery(
            id="d1",
            received_at=datetime.now(UTC),
            body=body,
            content_type="application/json",
            kind=request.kind,
            threat_ids=request.ids(),
            status="dispatching",
        )

        handoffs = plan_handoffs(delivery, request)

        read = [
            read_request(h.parameters["payload"]).ids()
            if "payload" in h.parameters
            else h.parameters["threat_ids"]
            for h in handoffs
        ]
        assert [h.threat_id for h in handoffs] == request.ids()
        assert read == [[h.threat_id] for h in handoffs]


class TestHandOn:
    @pytest.mark.anyio
    async def test_any_exception_from_the_dispatcher_becomes_a_retry(
        self, store, settings
    ):
        delivery, _ = keep(store, MITRE.read_bytes())
        [claim] = store.claim_due()
        dispatcher = FailingDispatcher(error=ConnectionResetError("peer reset"))

        outcome = await hand_on(store, claim, dispatcher, settings)

        assert outcome.status == "pending"
        assert outcome.last_error == (
            f"Starting the flow run for threat {MITRE_ID} failed: "
            "ConnectionResetError: peer reset"
        )

    @pytest.mark.anyio
    async def test_a_retry_after_a_partial_handoff_starts_each_run_once(
        self, store, settings
    ):
        keep(store, {"data": [threat(MITRE), threat(MACOS)]})
        dispatcher = FailsOnceFor(MACOS_ID)
        [claim] = store.claim_due()
        first = await hand_on(store, claim, dispatcher, settings)
        [retry] = store.claim_due(now=first.next_attempt_at)

        outcome = await hand_on(store, retry, dispatcher, settings)

        assert first.status == "pending"
        assert outcome.status == "done"
        assert outcome.flow_run_ids == ("run-1", "run-2")
        assert list(dispatcher.runs) == [
            MITRE_KEY,
            dispatcher.calls[-1].idempotency_key,
        ]


class FailsOnceFor(RecordingDispatcher):
    """Fails the first handoff of one threat, as Prefect answering 503 would."""

    def __init__(self, threat_id: str) -> None:
        super().__init__()
        self.threat_id = threat_id
        self.failed = False

    async def start(self, handoff: Handoff) -> str:
        if handoff.threat_id == self.threat_id and not self.failed:
            self.failed = True
            msg = "Prefect answered 503"
            raise HandoffError(msg)
        return await super().start(handoff)
