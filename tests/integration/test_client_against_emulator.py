"""The Autotask client against the bundled emulator, over real HTTP on loopback.

The emulator and the client were both written from the same contract notes; this suite
is where the two meet, so a drift in either shows up here.
"""

import asyncio

import pytest
from pydantic import SecretStr

from s1_autotask.autotask.client import AutotaskClient, AutotaskCredentials
from s1_autotask.autotask.errors import (
    AutotaskAuthError,
    AutotaskRateLimitError,
    AutotaskValidationError,
    AutotaskZoneError,
    is_transient,
)
from s1_autotask.autotask.picklists import Picklists
from s1_autotask.emulators.autotask import AutotaskEmulator, serve_in_thread

pytestmark = pytest.mark.anyio

USERNAME = "api-user@example.com"
SECRET = "client-test-secret-987654"
CODE = "CLIENT-TEST-CODE-987654"


@pytest.fixture(scope="module")
def server():
    state = AutotaskEmulator.from_seed(
        username=USERNAME, secret=SECRET, integration_code=CODE
    )
    with serve_in_thread(state) as running:
        yield running


@pytest.fixture
def emulator(server):
    server.emulator.reset()
    return server


def client_for(server, *, secret=SECRET, username=USERNAME):
    credentials = AutotaskCredentials(
        username=username,
        secret=SecretStr(secret),
        integration_code=SecretStr(CODE),
    )
    zone = f"{server.url}/atservicesrest/v1.0/zoneInformation"
    return AutotaskClient(credentials, zone_url=zone, timeout=10)


async def valid_ticket(client):
    picklists = Picklists.from_fields(await client.entity_fields("Tickets"))
    return {
        "companyID": 29684244,
        "title": "SentinelOne Malware: test.exe on host01",
        "description": "test",
        "status": picklists.resolve("status", "New"),
        "priority": picklists.resolve("priority", "High"),
        "queueID": picklists.resolve("queueID", "Security Operations"),
        "externalID": "1373834705420286869",
    }


class TestClientAgainstEmulator:
    """The client and the emulator agree on the Autotask contract."""

    async def test_zone_discovery_then_all_company_pages(self, emulator):
        async with client_for(emulator) as client:
            companies = await client.query(
                "Companies", [{"op": "exist", "field": "id"}]
            )

        ids = [c["id"] for c in companies]
        assert len(ids) == 620 == len(set(ids))
        assert client.base_url == f"{emulator.url}/atservicesrest/v1.0/"

    async def test_created_ticket_is_found_by_external_id(self, emulator):
        async with client_for(emulator) as client:
            ticket_id = await client.create("Tickets", await valid_ticket(client))
            found = await client.find_ticket_by_external_id("1373834705420286869")
            fetched = await client.get("Tickets", ticket_id)

        assert found["id"] == ticket_id == fetched["id"]
        assert fetched["ticketNumber"].startswith("T")

    async def test_note_is_created_under_its_ticket(self, emulator):
        async with client_for(emulator) as client:
            ticket_id = await client.create("Tickets", await valid_ticket(client))
            note_id = await client.create_ticket_note(
                ticket_id,
                {
                    "title": "Mitigated",
                    "description": "killed",
                    "noteType": 1,
                    "publish": 2,
                },
            )

        notes = emulator.emulator.ticket_notes
        assert [(n["id"], n["ticketID"]) for n in notes] == [(note_id, ticket_id)]

    async def test_missing_ticket_reads_as_none(self, emulator):
        async with client_for(emulator) as client:
            assert await client.get("Tickets", 999999) is None

    async def test_over_long_title_is_a_validation_error_naming_the_field(
        self, emulator
    ):
        async with client_for(emulator) as client:
            ticket = await valid_ticket(client) | {"title": "x" * 256}
            with pytest.raises(AutotaskValidationError, match="title"):
                await client.create("Tickets", ticket)

    async def test_inactive_queue_is_refused(self, emulator):
        async with client_for(emulator) as client:
            ticket = await valid_ticket(client) | {"queueID": 29683491}
            with pytest.raises(AutotaskValidationError) as caught:
                await client.create("Tickets", ticket)

        assert not is_transient(caught.value)
        assert emulator.emulator.tickets == []

    async def test_wrong_secret_is_an_auth_error_without_the_secret(self, emulator):
        async with client_for(emulator, secret="not-the-secret-123") as client:
            with pytest.raises(AutotaskAuthError) as caught:
                await client.query("Companies", [])

        assert caught.value.status_code == 401
        assert "not-the-secret-123" not in str(caught.value)

    async def test_unknown_user_fails_zone_discovery(self, emulator):
        async with client_for(emulator, username="nobody@example.com") as client:
            with pytest.raises(AutotaskZoneError, match="Zone information"):
                await client.query("Companies", [])

    async def test_fourth_concurrent_call_hits_the_thread_limit(self, emulator):
        emulator.emulator.latency_seconds = 0.3
        try:
            async with client_for(emulator) as client:
                await client.entity_fields("Tickets")
                results = await asyncio.gather(
                    *(client.get("Companies", 0) for _ in range(5)),
                    return_exceptions=True,
                )
        finally:
            emulator.emulator.latency_seconds = 0.0

        limited = [r for r in results if isinstance(r, AutotaskRateLimitError)]
        assert limited, "the emulator let five concurrent calls through"
        assert all(is_transient(r) for r in limited)
        assert "thread" in str(limited[0]).lower()
