"""The receiver's HTTP contract: who may post, what is refused and why, what is kept."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from pydantic import SecretStr

from s1_autotask.receiver import DeliveryStore, create_app
from s1_autotask.receiver.errors import ReceiverConfigError
from s1_autotask.receiver.store import RetryPolicy
from tests.receiver.conftest import (
    ALERT,
    MACOS,
    MACOS_ID,
    MITRE,
    MITRE_ID,
    SECRET,
    URL,
    BlockingDispatcher,
    FailingDispatcher,
    RecordingDispatcher,
    headers,
    in_process,
    served,
    threat,
)

pytestmark = pytest.mark.anyio

LIMIT = 64 * 1024


async def endless(chunk: bytes, sent: list[int]) -> AsyncIterator[bytes]:
    """A request body that never ends, counting the chunks the server pulled."""
    while True:
        sent.append(len(chunk))
        yield chunk


async def wait_for_status(store, delivery_id, status, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while (delivery := store.get(delivery_id)).status != status:
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"delivery stayed {delivery.status}, expected {status}")
        await asyncio.sleep(0.02)
    return delivery


class TestAuthentication:
    async def test_a_delivery_without_the_secret_is_refused(self, client, store):
        response = await client.post(
            URL,
            content=MITRE.read_bytes(),
            headers={"Content-Type": "application/json"},
        )

        assert response.status_code == 401
        assert response.json() == {"error": "Missing X-Webhook-Secret header."}
        assert store.recent() == []

    async def test_a_wrong_secret_is_refused(self, client, store):
        response = await client.post(
            URL,
            content=MITRE.read_bytes(),
            headers=headers(**{"X-Webhook-Secret": SECRET[:-1] + "x"}),
        )

        assert response.status_code == 401
        assert response.json() == {"error": "Wrong secret in X-Webhook-Secret."}
        assert store.recent() == []

    @pytest.mark.parametrize("header", ["Authorization", "X-Webhook-Token"])
    async def test_the_secret_in_another_header_counts_as_missing(self, client, header):
        response = await client.post(
            URL,
            content=MITRE.read_bytes(),
            headers={"Content-Type": "application/json", header: SECRET},
        )

        assert response.status_code == 401
        assert response.json() == {"error": "Missing X-Webhook-Secret header."}

    async def test_the_secret_is_checked_before_the_body_is_read(self, client):
        sent: list[int] = []

        response = await client.post(
            URL,
            content=endless(b"x" * 1024, sent),
            headers={"Content-Type": "application/json"},
        )

        assert response.status_code == 401
        assert sent == []

    async def test_the_secret_header_is_the_configured_one(
        self, settings, store, dispatcher
    ):
        settings = settings.model_copy(update={"secret_header": "X-S1-Token"})
        async with in_process(settings, store, dispatcher) as client:
            wrong = await client.post(
                URL, content=MITRE.read_bytes(), headers=headers()
            )
            right = await client.post(
                URL,
                content=MITRE.read_bytes(),
                headers={"X-S1-Token": SECRET, "Content-Type": "application/json"},
            )

        assert wrong.json() == {"error": "Missing X-S1-Token header."}
        assert right.status_code == 202

    @pytest.mark.parametrize(
        ("secret", "problem"),
        [("", "has no shared secret"), ("short-secret", "12 characters long")],
    )
    def test_the_app_refuses_to_exist_without_a_usable_secret(
        self, settings, store, dispatcher, secret, problem
    ):
        settings = settings.model_copy(update={"secret": SecretStr(secret)})

        with pytest.raises(ReceiverConfigError, match=problem):
            create_app(settings, store, dispatcher)


class TestBodyChecks:
    async def test_a_body_declared_over_the_limit_is_refused_unread(self, client):
        sent: list[int] = []

        response = await client.post(
            URL,
            content=endless(b"x" * 1024, sent),
            headers=headers(**{"Content-Length": str(10 * LIMIT)}),
        )

        assert response.status_code == 413
        assert response.json() == {
            "error": f"The request body is {10 * LIMIT} bytes; the limit is "
            f"{LIMIT} bytes."
        }
        assert sent == []

    async def test_a_streamed_body_is_refused_once_it_passes_the_limit(
        self, client, store
    ):
        sent: list[int] = []

        response = await client.post(
            URL, content=endless(b" " * 1000, sent), headers=headers()
        )

        assert response.status_code == 413
        assert response.json() == {
            "error": f"The request body is over the limit of {LIMIT} bytes."
        }
        assert sum(sent) <= LIMIT + 2 * 1000
        assert store.recent() == []

    async def test_a_body_of_exactly_the_limit_is_accepted(self, client):
        body = MITRE.read_bytes()
        body += b" " * (LIMIT - len(body))

        response = await client.post(URL, content=body, headers=headers())

        assert response.status_code == 202

    @pytest.mark.parametrize(
        "content_type",
        [
            "text/plain",
            "application/x-www-form-urlencoded",
            "json",
            "application/",
        ],
    )
    async def test_a_body_that_is_not_declared_json_is_refused(
        self, client, content_type
    ):
        response = await client.post(
            URL,
            content=MITRE.read_bytes(),
            headers=headers(**{"Content-Type": content_type}),
        )

        assert response.status_code == 415
        assert response.json()["error"] == (
            f"The Content-Type {content_type!r} is not JSON; send application/json."
        )

    async def test_a_body_without_content_type_is_refused(self, client):
        response = await client.post(
            URL, content=MITRE.read_bytes(), headers={"X-Webhook-Secret": SECRET}
        )

        assert response.status_code == 415
        assert response.json()["error"] == (
            "The Content-Type header is missing; send JSON."
        )

    @pytest.mark.parametrize(
        "content_type",
        ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd+json"],
    )
    async def test_json_content_types_with_parameters_and_suffixes_are_accepted(
        self, client, content_type
    ):
        response = await client.post(
            URL,
            content=MITRE.read_bytes(),
            headers=headers(**{"Content-Type": content_type}),
        )

        assert response.status_code == 202

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (
                b'{"threatId": 12',
                "Threat payload is not valid JSON: Expecting ',' delimiter "
                "(line 1, column 16).",
            ),
            (
                b'{"threatId": "\xff"}',
                "Threat payload is not valid JSON text: it cannot be decoded as "
                "utf-8 (invalid start byte at byte 14).",
            ),
            (
                b"",
                'The request body is empty; send a threat or {"threatId": "..."}.',
            ),
        ],
        ids=["broken-json", "invalid-utf8", "empty"],
    )
    async def test_a_body_that_is_not_json_is_refused(self, client, body, message):
        response = await client.post(URL, content=body, headers=headers())

        assert response.status_code == 400
        assert response.json()["error"] == message

    @pytest.mark.parametrize(
        ("payload", "location", "message"),
        [
            (
                {"threatIds": ["1", None]},
                "threatIds[1]",
                "Threat payload is invalid at threatIds[1]: null is not a "
                "SentinelOne threat id (1 to 50 letters and digits).",
            ),
            (
                {"hello": "world"},
                "payload",
                "Threat payload is invalid: expected a threat object",
            ),
        ],
    )
    async def test_json_that_asks_for_no_threat_is_refused_with_its_location(
        self, client, payload, location, message
    ):
        response = await client.post(URL, json=payload, headers=headers())

        assert response.status_code == 422
        assert response.json()["location"] == location
        assert response.json()["error"].startswith(message)

    async def test_a_unified_alert_without_external_id_is_refused(self, client):
        alert = threat(ALERT)
        del alert["data"]["alert"]["externalId"]

        response = await client.post(URL, json=alert, headers=headers())

        assert response.status_code == 422
        assert response.json()["location"] == "data.alert.externalId"
        assert response.json()["error"] == (
            "Threat payload is invalid at data.alert.externalId: a Unified Alert "
            "needs its externalId (the threat id) to find the threat."
        )

    @pytest.mark.parametrize(
        ("body", "content_type", "status"),
        [
            (b'{"hello": "world"}', "application/json", 422),
            (b'{"threatId": 12', "application/json", 400),
            (b'{"threatId": "12"}', "text/plain", 415),
        ],
    )
    async def test_an_authenticated_body_that_is_refused_is_kept_as_rejected(
        self, client, store, dispatcher, body, content_type, status
    ):
        response = await client.post(
            URL, content=body, headers=headers(**{"Content-Type": content_type})
        )

        kept = store.get(response.json()["delivery_id"])
        assert response.status_code == status
        assert kept.status == "rejected"
        assert kept.body == body
        assert kept.content_type == content_type
        assert kept.last_error == response.json()["error"]
        assert dispatcher.calls == []


class TestAcceptance:
    async def test_a_threat_is_accepted_with_its_delivery_id_and_threat_ids(
        self, client, store
    ):
        response = await client.post(URL, content=MITRE.read_bytes(), headers=headers())

        assert response.status_code == 202
        assert response.json() == {
            "delivery_id": store.recent()[0].id,
            "status": "accepted",
            "kind": "threats",
            "threat_ids": [MITRE_ID],
        }

    async def test_a_delivery_is_on_disk_before_it_is_answered(self, settings, store):
        dispatcher = BlockingDispatcher()
        body = MITRE.read_bytes()

        async with served(settings, store, dispatcher) as client:
            response = await client.post(URL, content=body, headers=headers())
            await asyncio.wait_for(dispatcher.entered.wait(), 5)
            kept = DeliveryStore(settings.data_dir).get(response.json()["delivery_id"])
            handed_on_before = list(dispatcher.calls)
            dispatcher.release.set()

        assert response.status_code == 202
        assert handed_on_before == []
        assert kept.body == body
        assert kept.status == "dispatching"

    async def test_a_delivery_survives_reopening_the_store(
        self, client, settings, store
    ):
        body = MITRE.read_bytes()
        response = await client.post(URL, content=body, headers=headers())

        reopened = DeliveryStore(settings.data_dir).get(response.json()["delivery_id"])

        assert reopened == store.get(reopened.id)
        assert reopened.body == body
        assert reopened.received_at.tzinfo == UTC
        assert reopened.status == "done"

    async def test_a_threat_is_handed_on_once_as_posted(
        self, client, store, dispatcher
    ):
        response = await client.post(URL, content=MITRE.read_bytes(), headers=headers())

        delivery = store.get(response.json()["delivery_id"])
        [handoff] = dispatcher.calls
        assert handoff.parameters == {"payload": threat(MITRE)}
        assert handoff.idempotency_key == (
            f"s1:{MITRE_ID}:2022-03-11T12:44:33.501615+00:00"
        )
        assert delivery.flow_run_ids == ("run-1",)
        assert delivery.attempts == 1

    async def test_an_envelope_starts_one_run_per_threat(self, client, dispatcher):
        envelope = {"data": [threat(MITRE), threat(MACOS)]}

        response = await client.post(URL, json=envelope, headers=headers())

        assert response.json()["threat_ids"] == [MITRE_ID, MACOS_ID]
        assert [h.threat_id for h in dispatcher.calls] == [MITRE_ID, MACOS_ID]
        assert [h.parameters["payload"] for h in dispatcher.calls] == envelope["data"]

    async def test_a_unified_alert_is_handed_on_by_its_threat_id(
        self, client, dispatcher
    ):
        response = await client.post(URL, content=ALERT.read_bytes(), headers=headers())

        assert response.json()["kind"] == "unified_alert"
        assert response.json()["threat_ids"] == [MITRE_ID]
        assert [h.parameters for h in dispatcher.calls] == [{"threat_ids": [MITRE_ID]}]

    async def test_an_identical_redelivery_starts_nothing_new(
        self, client, store, dispatcher
    ):
        body = json.dumps({"threatId": MITRE_ID}).encode()

        first = await client.post(URL, content=body, headers=headers())
        second = await client.post(URL, content=body, headers=headers())

        keys = {h.idempotency_key for h in dispatcher.calls}
        assert first.json()["delivery_id"] != second.json()["delivery_id"]
        assert len(keys) == 1
        assert keys.pop().startswith(f"s1:{MITRE_ID}:body:")
        assert [d.flow_run_ids for d in store.recent()] == [("run-1",), ("run-1",)]

    async def test_one_line_is_logged_per_delivery_without_its_body(
        self, client, caplog
    ):
        caplog.set_level(logging.DEBUG)
        body = MITRE.read_bytes()

        response = await client.post(URL, content=body, headers=headers())

        delivery_id = response.json()["delivery_id"]
        lines = [
            r.getMessage() for r in caplog.records if delivery_id in r.getMessage()
        ]
        assert lines[0] == (
            f"Accepted delivery {delivery_id}: threats, {len(body)} bytes, "
            f"threats {MITRE_ID}"
        )
        assert not any("OfficeTimeline" in r.getMessage() for r in caplog.records)


class TestRetries:
    async def test_a_failed_handoff_leaves_the_delivery_pending_with_a_backoff(
        self, settings, store
    ):
        settings = settings.model_copy(update={"retry_base_seconds": 5.0})
        settings = settings.model_copy(update={"retry_max_seconds": 60.0})
        async with in_process(settings, store, FailingDispatcher()) as client:
            response = await client.post(
                URL, content=MITRE.read_bytes(), headers=headers()
            )

        delivery = store.get(response.json()["delivery_id"])
        wait = delivery.next_attempt_at - delivery.received_at
        assert response.status_code == 202
        assert delivery.status == "pending"
        assert delivery.attempts == 1
        assert timedelta(seconds=2.5) <= wait <= timedelta(seconds=6)
        assert delivery.last_error == (
            f"Starting the flow run for threat {MITRE_ID} failed: Prefect API at "
            "http://prefect:4200 is down"
        )

    async def test_the_retry_loop_hands_a_delivery_on_after_failures(
        self, settings, store, caplog
    ):
        dispatcher = FailingDispatcher(failures=2)

        async with served(settings, store, dispatcher) as client:
            response = await client.post(
                URL, content=MITRE.read_bytes(), headers=headers()
            )
            delivery_id = response.json()["delivery_id"]
            delivery = await wait_for_status(store, delivery_id, "done")

        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert delivery.attempts == 3
        assert delivery.flow_run_ids == ("run-1",)
        assert len(dispatcher.calls) == 1
        assert len(warnings) == 2
        assert "Prefect API at http://prefect:4200 is down" in warnings[0].getMessage()

    async def test_a_delivery_left_pending_is_handed_on_after_a_restart(
        self, settings, store
    ):
        async with in_process(settings, store, FailingDispatcher()) as client:
            response = await client.post(
                URL, content=MITRE.read_bytes(), headers=headers()
            )
        delivery_id = response.json()["delivery_id"]
        dispatcher = RecordingDispatcher()

        async with served(settings, DeliveryStore(settings.data_dir), dispatcher):
            delivery = await wait_for_status(store, delivery_id, "done")

        assert delivery.attempts == 2
        assert [h.threat_id for h in dispatcher.calls] == [MITRE_ID]

    async def test_a_delivery_is_failed_after_its_last_attempt(self, settings, store):
        settings = settings.model_copy(update={"max_attempts": 3})
        dispatcher = FailingDispatcher()

        async with served(settings, store, dispatcher) as client:
            response = await client.post(
                URL, content=MITRE.read_bytes(), headers=headers()
            )
            delivery = await wait_for_status(
                store, response.json()["delivery_id"], "failed"
            )
            await asyncio.sleep(0.3)

        assert delivery.attempts == 3
        assert dispatcher.failed == 3
        assert delivery.next_attempt_at is None

    async def test_a_handoff_that_hangs_is_timed_out_and_retried(self, settings, store):
        settings = settings.model_copy(update={"handoff_timeout_seconds": 1.0})
        async with in_process(settings, store, BlockingDispatcher()) as client:
            response = await client.post(
                URL, content=MITRE.read_bytes(), headers=headers()
            )

        delivery = store.get(response.json()["delivery_id"])
        assert delivery.status == "pending"
        assert delivery.last_error == (
            f"Starting the flow run for threat {MITRE_ID} timed out after 1 s."
        )

    async def test_two_receivers_on_one_folder_hand_each_delivery_on_once(
        self, settings, store
    ):
        ids = [
            store.add(
                json.dumps({"threatId": str(n)}).encode(),
                content_type="application/json",
                kind="threat_ids",
                threat_ids=[str(n)],
            ).id
            for n in range(1, 41)
        ]
        first, second = RecordingDispatcher(), RecordingDispatcher()

        async with (
            served(settings, DeliveryStore(settings.data_dir), first),
            served(settings, DeliveryStore(settings.data_dir), second),
        ):
            for delivery_id in ids:
                await wait_for_status(store, delivery_id, "done")

        handed_on = [h.threat_id for h in first.calls + second.calls]
        assert sorted(handed_on, key=int) == [str(n) for n in range(1, 41)]


class TestSecrecy:
    async def test_the_secret_never_appears_in_answers_logs_or_the_store(
        self, settings, store, caplog
    ):
        caplog.set_level(logging.DEBUG)
        dispatcher = FailingDispatcher(error=RuntimeError(f"bad header {SECRET}"))
        body = MITRE.read_bytes()
        async with in_process(settings, store, dispatcher) as client:
            responses = [
                await client.post(URL, content=body, headers=headers()),
                await client.post(
                    URL,
                    content=body,
                    headers=headers(**{"X-Webhook-Secret": SECRET + "-wrong"}),
                ),
                await client.post(URL, content=b"{", headers=headers()),
                await client.post(URL, content=body, headers={"Authorization": SECRET}),
                await client.get("/healthz", headers=headers()),
                await client.get("/elsewhere", headers=headers()),
            ]

        texts = [r.text for r in responses] + [r.getMessage() for r in caplog.records]
        texts += [str(d.last_error) for d in store.recent()]
        assert store.recent()[-1].last_error.endswith(
            "RuntimeError: bad header **********"
        )
        assert not [text for text in texts if SECRET in text]


class TestHealth:
    async def test_an_empty_store_is_healthy(self, client):
        response = await client.get("/healthz")

        assert response.status_code == 200
        assert response.json() == {
            "status": "ok",
            "problems": [],
            "pending": 0,
            "failed": 0,
            "rejected": 0,
            "oldest_pending_seconds": None,
        }

    async def test_health_counts_waiting_and_failed_deliveries(self, client, store):
        for n in range(3):
            store.add(
                b"1",
                content_type="application/json",
                kind="threat_ids",
                threat_ids=[str(n)],
            )
        [claim] = store.claim_due(limit=1)
        store.mark_attempt_failed(claim, "gave up", retry=RetryPolicy(), permanent=True)

        response = await client.get("/healthz")

        assert response.status_code == 503
        assert response.json()["status"] == "degraded"
        assert response.json()["problems"] == [
            "1 deliveries were given up on after every retry; replay them with "
            "deliveries replay ID."
        ]
        assert response.json()["pending"] == 2
        assert response.json()["failed"] == 1
        assert 0 <= response.json()["oldest_pending_seconds"] < 5

    async def test_health_is_503_when_the_store_cannot_be_read(self, client, store):
        for suffix in ("-wal", "-shm"):
            store.path.with_name(store.path.name + suffix).unlink(missing_ok=True)
        store.path.write_bytes(b"this is not a database" * 100)

        response = await client.get("/healthz")

        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "error": "The delivery store cannot be read.",
        }


class TestRouting:
    async def test_an_unknown_path_is_404_as_json(self, client):
        response = await client.post("/webhook", json={}, headers=headers())

        assert response.status_code == 404
        assert response.json() == {
            "error": "There is nothing here; deliveries go to POST "
            "/webhooks/sentinelone."
        }

    async def test_another_method_is_405_as_json(self, client):
        response = await client.get(URL, headers=headers())

        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json() == {"error": "GET is not allowed here; use POST."}
