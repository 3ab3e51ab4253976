"""The receiver's HTTP contract: who may post, what is refused and why, what is kept."""

import asyncio
import codecs
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from pydantic import SecretStr

from s1_autotask.receiver import DeliveryStore, create_app
from s1_autotask.receiver import app as app_module
from s1_autotask.receiver.errors import ReceiverConfigError
from s1_autotask.receiver.store import RetryPolicy
from s1_autotask.sentinelone.intake import read_request
from tests.receiver.conftest import (
    ALERT,
    FIXTURES,
    MACOS,
    MACOS_ID,
    MITRE,
    MITRE_ID,
    SECRET,
    URL,
    BlockingDispatcher,
    FailingDispatcher,
    FullDiskStore,
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
        "copies",
        [[SECRET, SECRET], [SECRET, "wrong"], ["wrong", SECRET]],
        ids=["twice-right", "right-then-wrong", "wrong-then-right"],
    )
    async def test_a_secret_header_sent_twice_is_refused(self, client, store, copies):
        sent = [("X-Webhook-Secret", copy) for copy in copies]

        response = await client.post(
            URL,
            content=MITRE.read_bytes(),
            headers=[*sent, ("Content-Type", "application/json")],
        )

        assert response.status_code == 401
        assert response.json() == {
            "error": "The X-Webhook-Secret header was sent 2 times; send it once."
        }
        assert store.recent() == []

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
        ("encoding", "name"),
        [
            ("utf-16", "UTF-16"),
            ("utf-16-le", "UTF-16"),
            ("utf-16-be", "UTF-16"),
            ("utf-32", "UTF-32"),
            ("utf-32-le", "UTF-32"),
        ],
    )
    async def test_a_body_in_utf16_or_utf32_is_refused(
        self, client, dispatcher, encoding, name
    ):
        body = MITRE.read_text(encoding="utf-8").encode(encoding)

        response = await client.post(URL, content=body, headers=headers())

        assert response.status_code == 400
        assert (
            response.json()["error"] == f"The request body is {name} text; send UTF-8."
        )
        assert dispatcher.calls == []

    async def test_a_utf8_body_with_a_byte_order_mark_is_accepted(
        self, client, dispatcher
    ):
        body = codecs.BOM_UTF8 + MITRE.read_bytes()

        response = await client.post(URL, content=body, headers=headers())

        assert response.status_code == 202
        assert response.json()["threat_ids"] == [MITRE_ID]
        assert [h.parameters for h in dispatcher.calls] == [{"payload": threat(MITRE)}]

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

    @pytest.mark.parametrize(
        ("body", "content_type", "status"),
        [
            (b"{}", f"text/plain; token={SECRET}", 415),
            (b"{}", "text/plain; padding=" + "p" * 35 + SECRET, 415),
            (json.dumps({"threatId": SECRET}).encode(), "application/json", 422),
            (
                json.dumps({"threatId": "x" * 60 + SECRET}).encode(),
                "application/json",
                422,
            ),
        ],
        ids=["content-type", "content-type-cut", "threat-id", "threat-id-cut"],
    )
    async def test_a_secret_templated_into_a_refused_request_is_masked(
        self, client, store, body, content_type, status
    ):
        response = await client.post(
            URL, content=body, headers=headers(**{"Content-Type": content_type})
        )

        kept = store.get(response.json()["delivery_id"])
        shown = [response.text, kept.last_error, kept.content_type]
        assert response.status_code == status
        assert "*****" in response.json()["error"]
        assert kept.last_error == response.json()["error"]
        assert not [text for text in shown if SECRET[:8] in text]


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

    async def test_health_is_degraded_while_deliveries_cannot_be_stored(
        self, settings, store, dispatcher
    ):
        full = FullDiskStore(store.path.parent)
        async with in_process(settings, full, dispatcher) as client:
            posted = await client.post(
                URL, content=MITRE.read_bytes(), headers=headers()
            )
            health = await client.get("/healthz")

        assert posted.status_code == 503
        assert posted.json() == {
            "error": "The delivery could not be stored; send it again."
        }
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["problems"] == [
            "The delivery store could not be written 0 s ago, so deliveries were "
            "refused with 503: is the disk of the data folder full or read-only? "
            "(see the receiver's log)"
        ]

    async def test_health_recovers_once_the_last_store_failure_is_old(
        self, settings, store, dispatcher, monkeypatch
    ):
        monkeypatch.setattr(app_module, "STORE_FAILURE_SECONDS", 0.2)
        async with in_process(
            settings, FullDiskStore(store.path.parent), dispatcher
        ) as full:
            await full.post(URL, content=MITRE.read_bytes(), headers=headers())
            degraded = await full.get("/healthz")
            await asyncio.sleep(0.3)
            recovered = await full.get("/healthz")

        assert degraded.status_code == 503
        assert recovered.status_code == 200
        assert recovered.json()["problems"] == []

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

    @pytest.mark.parametrize("path", [f"{URL}/", "/healthz/"])
    async def test_a_trailing_slash_reaches_the_same_endpoint(
        self, client, store, path
    ):
        method = "POST" if path.startswith(URL) else "GET"

        response = await client.request(
            method, path, content=MITRE.read_bytes(), headers=headers()
        )

        assert response.status_code == (202 if method == "POST" else 200)
        assert len(store.recent()) == (1 if method == "POST" else 0)

    @pytest.mark.parametrize(
        ("path", "status"),
        [(f"{URL}/", 401), (f"{URL}//", 404), ("/webhooks/", 404), ("/healthz//", 404)],
    )
    async def test_no_request_is_ever_redirected(self, client, store, path, status):
        response = await client.post(
            path,
            content=MITRE.read_bytes(),
            headers={"Host": "attacker.example", "Content-Type": "application/json"},
        )

        assert response.status_code == status
        assert "location" not in response.headers
        assert store.recent() == []


def stalled_request(declared: int, sent: bytes) -> bytes:
    """The start of an authenticated POST that declares more body than it sends."""
    head = (
        f"POST {URL} HTTP/1.1\r\nHost: receiver\r\nX-Webhook-Secret: {SECRET}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )
    return head.encode() + sent


async def exchange(port: int, pieces: list[bytes], pause: float) -> bytes:
    """Send ``pieces`` with ``pause`` between them; what came back until the server
    closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def trickle() -> None:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(pause)

    sending = asyncio.create_task(trickle())
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        sending.cancel()
        writer.close()


class TestSlowSenders:
    @pytest.mark.parametrize(
        "pieces",
        [
            [stalled_request(1000, b'{"threatId": "1')],
            [stalled_request(1000, b""), *[b" "] * 40],
        ],
        ids=["stalls", "trickles"],
    )
    async def test_a_body_not_received_in_time_gets_408_and_is_not_kept(
        self, settings, store, dispatcher, pieces
    ):
        settings = settings.model_copy(update={"body_timeout_seconds": 1.0})

        async with served(settings, store, dispatcher) as client:
            started = asyncio.get_running_loop().time()
            answer = await exchange(client.base_url.port, pieces, pause=0.1)
            waited = asyncio.get_running_loop().time() - started
            health = await client.get("/healthz")

        status, _, rest = answer.partition(b"\r\n")
        head, _, body = rest.partition(b"\r\n\r\n")
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert b"connection: close" in head.lower()
        assert json.loads(body) == {
            "error": "The request body was not received within 1 s; send it again."
        }
        assert 1 <= waited < 5
        assert health.status_code == 200
        assert store.recent() == []
        assert dispatcher.calls == []

    async def test_connections_past_the_limit_are_answered_503(
        self, settings, store, dispatcher
    ):
        settings = settings.model_copy(update={"max_connections": 3})

        async with served(settings, store, dispatcher) as client:
            port = client.base_url.port
            stalled = [
                await asyncio.open_connection("127.0.0.1", port) for _ in range(3)
            ]
            for _, writer in stalled:
                writer.write(b"POST /webhooks/sentinelone HTTP/1.1\r\nHost: rec")
                await writer.drain()
            await asyncio.sleep(0.2)
            refused = await client.post(
                URL, content=MITRE.read_bytes(), headers=headers()
            )
            for _, writer in stalled:
                writer.close()
            accepted = await eventually_accepted(client)

        assert refused.status_code == 503
        assert accepted.status_code == 202
        assert len(store.recent()) == 1


async def eventually_accepted(client):
    """Post until the server has noticed closed connections and accepts again."""
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        response = await client.post(URL, content=MITRE.read_bytes(), headers=headers())
        if response.status_code != 503 or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.05)


class TestLogs:
    async def test_a_forged_client_address_is_escaped_in_the_log(
        self, settings, store, dispatcher, caplog
    ):
        forged = b"\x9b2J\x9b31mAll deliveries accepted\x9b0m"

        async with served(settings, store, dispatcher) as client:
            response = await client.post(
                URL,
                content=MITRE.read_bytes(),
                headers=[("X-Forwarded-For", forged)],
            )

        [line] = [r.getMessage() for r in caplog.records if "Refused" in r.getMessage()]
        assert response.status_code == 401
        assert line == (
            "Refused a delivery from \\x9b2J\\x9b31mAll deliveries accepted\\x9b0m: "
            "Missing X-Webhook-Secret header."
        )

    async def test_a_content_type_with_control_characters_is_escaped_in_the_log(
        self, client, caplog
    ):
        caplog.set_level(logging.INFO)

        response = await client.post(
            URL,
            content=b"{}",
            headers=[
                ("X-Webhook-Secret", SECRET),
                ("Content-Type", b"text/\x9b31mplain"),
            ],
        )

        [line] = [
            r.getMessage() for r in caplog.records if "Rejected" in r.getMessage()
        ]
        assert response.status_code == 415
        assert "2 bytes of text/\\x9b31mplain, problem at the request" in line
        assert "\x9b" not in line


V21_THREAT = threat(MITRE)
V20_THREAT = {"id": "111", "classification": "Malware"}
WITH_ALERT = {"id": "111", "agentComputerName": "pc", "alert": {"externalId": "4"}}
# Bodies that once got a 202 naming threat 111 while the flow read another threat,
# each with the threat object the flow must get.
MISREAD_BODIES = {
    "threat-with-threatId": [V20_THREAT | {"threatId": "222"}],
    "threat-with-externalId": [V20_THREAT | {"externalId": "333"}],
    "threat-with-alert": {"data": [WITH_ALERT]},
    "threat-with-data": V20_THREAT | {"data": [V21_THREAT]},
    "threat-with-junk-data": V20_THREAT | {"data": [1, 2]},
    "lone-threat-with-externalId": V20_THREAT | {"externalId": "333"},
}


def only_threat(payload):
    """The one threat object of a list, an envelope, or a lone threat."""
    if isinstance(payload, list):
        return payload[0]
    return payload["data"][0] if "classification" not in payload else payload


class TestWhatTheFlowReads:
    """The threat the 202 names is the threat the flow run reads."""

    @pytest.mark.parametrize(
        "payload", MISREAD_BODIES.values(), ids=MISREAD_BODIES.keys()
    )
    async def test_a_threat_with_keys_of_other_shapes_is_handed_on_as_itself(
        self, client, store, dispatcher, payload
    ):
        response = await client.post(URL, json=payload, headers=headers())

        [handoff] = dispatcher.calls
        assert response.json()["threat_ids"] == ["111"]
        assert read_request(handoff.parameters["payload"]).ids() == ["111"]
        assert handoff.parameters["payload"] == only_threat(payload)
        assert handoff.idempotency_key.startswith("s1:111:")
        assert store.get(response.json()["delivery_id"]).status == "done"

    @pytest.mark.parametrize(
        "body",
        [path.read_bytes() for path in sorted(FIXTURES.glob("s*/*.json"))]
        + [
            ALERT.read_bytes(),
            json.dumps({"data": [threat(MITRE), threat(MACOS)]}).encode(),
            json.dumps(
                [threat(path) for path in sorted(FIXTURES.glob("s*/*.json"))]
            ).encode(),
            b'{"threatIds": ["1", "2"], "threatId": "3"}',
        ],
    )
    async def test_every_accepted_body_is_read_by_the_flow_as_the_202_named(
        self, client, dispatcher, body
    ):
        response = await client.post(URL, content=body, headers=headers())

        named = response.json()["threat_ids"]
        read = [
            read_request(h.parameters["payload"]).ids()
            if "payload" in h.parameters
            else h.parameters["threat_ids"]
            for h in dispatcher.calls
        ]
        assert response.status_code == 202
        assert read == [[threat_id] for threat_id in named]
