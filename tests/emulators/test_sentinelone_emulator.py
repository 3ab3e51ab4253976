"""The SentinelOne emulator over real loopback HTTP, by plain httpx and the client."""

import base64
import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from s1_autotask.emulators.sentinelone import (
    DEFAULT_TOKEN,
    EmulatorDataError,
    EmulatorStartError,
    RunningSentinelOneEmulator,
    SentinelOneEmulator,
    serve_in_thread,
)
from s1_autotask.sentinelone.client import SentinelOneClient
from s1_autotask.sentinelone.errors import SentinelOneAuthError

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": f"ApiToken {DEFAULT_TOKEN}"}
AUTH_FAILED = {
    "errors": [{"code": 4010010, "detail": None, "title": "Authentication Failed"}]
}
SAMPLES = Path(__file__).parents[2] / "s1_autotask/emulators/data/threats"
MITRE_ID = "1373834705420286869"
STAR_ID = "123456"
V20_ID = "715723437013282014"
FROZEN_NOW = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


class Clock:
    """A settable clock for the emulator's updatedAt bumps and note times."""

    def __init__(self) -> None:
        self.moment = FROZEN_NOW

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def console_server(clock: Clock) -> Iterator[RunningSentinelOneEmulator]:
    """One emulator on the bundled samples, listening on a free loopback port."""
    with serve_in_thread(SentinelOneEmulator.from_samples(now=clock)) as server:
        yield server


@pytest.fixture
def served(
    console_server: RunningSentinelOneEmulator, clock: Clock
) -> RunningSentinelOneEmulator:
    """The shared emulator, back on its samples so every test starts alike."""
    console_server.state.reset()
    console_server.state.write_backs_bump_updated_at = True
    clock.moment = FROZEN_NOW
    return console_server


def http(server: RunningSentinelOneEmulator, headers=AUTH) -> httpx.AsyncClient:
    """A plain httpx client rooted at the emulator's `/web/api/v2.1/`."""
    return httpx.AsyncClient(
        base_url=f"{server.url}/web/api/v2.1/", headers=headers, timeout=10.0
    )


def client_for(server: RunningSentinelOneEmulator, token=DEFAULT_TOKEN):
    return SentinelOneClient(server.url, SecretStr(token), timeout=10.0)


async def list_ids(server: RunningSentinelOneEmulator, **params: Any) -> list[str]:
    async with http(server) as client:
        response = await client.get("threats", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return [threat["id"] for threat in response.json()["data"]]


async def follow_pages(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, Any],
    cursor: str | None = None,
) -> list[dict[str, Any]]:
    """Every page of a listing, following nextCursor; a cursor loop fails the test."""
    pages = []
    for _ in range(20):
        query = params if cursor is None else {**params, "cursor": cursor}
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["pagination"]["nextCursor"]
        if cursor is None:
            return pages
    pytest.fail(f"{path} still gave a cursor after 20 pages")


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def new_threat(threat_id: str, updated_at: str, **info: Any) -> dict[str, Any]:
    """A copy of the MITRE sample under another id, updated at `updated_at`."""
    threat = copy.deepcopy(sample("v21-windows-suspicious-mitre-mitigated"))
    threat["id"] = threat_id
    threat["threatInfo"].update(threatId=threat_id, updatedAt=updated_at, **info)
    return threat


def sample_updates(server: RunningSentinelOneEmulator) -> list[tuple[str, str]]:
    return sorted(
        (raw["threatInfo"]["updatedAt"], raw["id"]) for raw in server.state.threats()
    )


class TestAuthentication:
    """Token authentication fails the way SentinelOne does."""

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "ApiToken wrong-token"},
            {"Authorization": f"Bearer {DEFAULT_TOKEN}"},
            {"Authorization": "ApiToken"},
        ],
        ids=["missing", "wrong", "other-scheme", "no-token"],
    )
    async def test_missing_or_wrong_token_is_401_authentication_failed(
        self, served, headers
    ):
        async with http(served, headers) as client:
            response = await client.get("threats")

        assert response.status_code == 401
        assert response.json() == AUTH_FAILED

    async def test_documented_default_token_is_accepted(self, served):
        headers = {"Authorization": "ApiToken emulator-s1-token"}

        async with http(served, headers) as client:
            response = await client.get("threats")

        assert response.status_code == 200

    def test_configured_token_replaces_the_default(self):
        emulator = SentinelOneEmulator.from_samples(token="tenant-token-42")

        with serve_in_thread(emulator) as server:
            default = httpx.get(f"{server.url}/web/api/v2.1/threats", headers=AUTH)
            own = httpx.get(
                f"{server.url}/web/api/v2.1/threats",
                headers={"Authorization": "ApiToken tenant-token-42"},
            )

        assert default.status_code == 401
        assert own.status_code == 200


class TestListing:
    """GET /threats filters, sorts and pages like the v2.1 API."""

    async def test_samples_are_served_without_the_v20_flat_threat(self, served):
        async with http(served) as client:
            response = await client.get("threats")

        body = response.json()
        assert body["pagination"] == {"nextCursor": None, "totalItems": 7}
        ids = {threat["id"] for threat in body["data"]}
        assert MITRE_ID in ids
        assert V20_ID not in ids
        assert all("threatInfo" in threat for threat in body["data"])

    async def test_threats_are_served_as_in_the_sample_files(self, served):
        async with http(served) as client:
            response = await client.get("threats", params={"ids": MITRE_ID})

        assert response.json()["data"] == [
            sample("v21-windows-suspicious-mitre-mitigated")
        ]

    async def test_default_page_holds_ten_threats(self, served):
        for n in range(5):
            served.state.add_threat(new_threat(f"9{n}", "2024-01-01T00:00:00.000000Z"))

        async with http(served) as client:
            response = await client.get("threats")

        assert len(response.json()["data"]) == 10
        assert response.json()["pagination"]["totalItems"] == 12
        assert response.json()["pagination"]["nextCursor"] is not None

    async def test_ids_filter_takes_a_comma_joined_list(self, served):
        ids = await list_ids(served, ids=f"{MITRE_ID},{STAR_ID},999")

        assert sorted(ids) == sorted([MITRE_ID, STAR_ID])

    @pytest.mark.parametrize(
        ("operator", "expected"),
        [
            ("gte", {MITRE_ID, STAR_ID, "2120407777501474123", "2147115586493991494"}),
            ("gt", {STAR_ID, "2120407777501474123", "2147115586493991494"}),
            ("lte", {"1112953674841025235", "1113032189486913422", MITRE_ID}),
            ("lt", {"1112953674841025235", "1113032189486913422"}),
        ],
    )
    async def test_updated_at_bounds(self, served, operator, expected):
        # The MITRE sample was last updated at exactly this moment.
        bound = "2022-03-11T12:44:33.501615Z"
        ids = await list_ids(
            served, **{f"updatedAt__{operator}": bound, "createdAt__gt": "2021-01-01"}
        )

        assert set(ids) == expected

    async def test_created_at_bounds_read_created_at(self, served):
        ids = await list_ids(
            served,
            createdAt__gte="2021-03-16T14:00:16.879105Z",
            createdAt__lt="2021-03-16T16:36:16.554368Z",
        )

        assert ids == ["1112953674841025235"]

    async def test_site_and_account_filters_read_the_agent_scope(self, served):
        site_ids = await list_ids(served, siteIds="1107851598358168475")
        account_ids = await list_ids(served, accountIds="111111111111111111")

        assert sorted(site_ids) == ["1112953674841025235", "1113032189486913422"]
        assert sorted(account_ids) == [MITRE_ID, "2147115586493991494"]

    async def test_incident_statuses_filter(self, served):
        ids = await list_ids(served, incidentStatuses="in_progress,resolved")

        assert sorted(ids) == sorted(
            [
                STAR_ID,
                "2147115586493991494",
                "715718962991148224",
                "1113032189486913422",
            ]
        )

    async def test_external_ticket_exists_filter_follows_write_backs(self, served):
        async with http(served) as client:
            await client.post(
                "threats/external-ticket-id",
                json={
                    "filter": {"ids": [MITRE_ID]},
                    "data": {"externalTicketId": "T20250601.0001"},
                },
            )

        with_ticket = await list_ids(served, externalTicketExists="true")
        without = await list_ids(served, externalTicketExists="false")

        assert with_ticket == [MITRE_ID]
        assert MITRE_ID not in without
        assert len(without) == 6

    async def test_sort_by_updated_at_in_either_order(self, served):
        expected = [threat_id for _, threat_id in sample_updates(served)]

        ascending = await list_ids(served, sortBy="updatedAt", sortOrder="asc")
        descending = await list_ids(served, sortBy="updatedAt", sortOrder="desc")

        assert ascending == expected
        assert descending == expected[::-1]

    async def test_sort_by_id_orders_ids_as_numbers(self, served):
        ids = await list_ids(served, sortBy="id")

        assert ids == sorted(ids, key=int)
        assert ids[0] == STAR_ID

    async def test_cursor_pages_through_every_threat_once(self, served):
        params = {"limit": 3, "sortBy": "updatedAt", "sortOrder": "asc"}

        async with http(served) as client:
            pages = await follow_pages(client, "threats", params)

        assert [len(page["data"]) for page in pages] == [3, 3, 1]
        assert [threat["id"] for page in pages for threat in page["data"]] == [
            threat_id for _, threat_id in sample_updates(served)
        ]
        assert [page["pagination"]["totalItems"] for page in pages] == [7, 7, 7]

    async def test_threat_updated_between_pages_is_served_again_not_skipped(
        self, served
    ):
        params = {"limit": 3, "sortBy": "updatedAt"}
        async with http(served) as client:
            first = (await client.get("threats", params=params)).json()
            moved = first["data"][0]["id"]
            served.state.update_threat(moved, incidentStatus="resolved")
            cursor = first["pagination"]["nextCursor"]
            rest = await follow_pages(client, "threats", params, cursor=cursor)

        ids = [threat["id"] for page in rest for threat in page["data"]]
        assert ids[-1] == moved
        assert len(ids) == 5

    @pytest.mark.parametrize("limit", ["1001", "0", "ten"])
    async def test_limit_outside_1_to_1000_is_400(self, served, limit):
        async with http(served) as client:
            response = await client.get("threats", params={"limit": limit})

        assert response.status_code == 400
        assert response.json() == {
            "errors": [
                {
                    "code": 4000010,
                    "detail": "limit: must be an integer from 1 to 1000.",
                    "title": "Validation Error",
                }
            ]
        }

    @pytest.mark.parametrize(
        ("cursor", "params"),
        [
            ("not-a-cursor", {}),
            (base64.urlsafe_b64encode(b"[1, 2]").decode(), {}),
            (
                base64.urlsafe_b64encode(
                    b'{"sortBy":"id","sortOrder":"asc","value":null,"id":"1"}'
                ).decode(),
                {"sortBy": "updatedAt"},
            ),
        ],
        ids=["garbage", "not-an-object", "other-sort"],
    )
    async def test_bad_cursor_is_400(self, served, cursor, params):
        async with http(served) as client:
            response = await client.get("threats", params={"cursor": cursor, **params})

        assert response.status_code == 400
        (error,) = response.json()["errors"]
        assert error["title"] == "Validation Error"
        assert error["detail"].startswith("cursor:")

    @pytest.mark.parametrize(
        "params",
        [
            {"sortBy": "mitigationStatus"},
            {"sortOrder": "up"},
            {"updatedAt__gte": "last week"},
            {"externalTicketExists": "maybe"},
        ],
    )
    async def test_unreadable_parameter_is_400_naming_it(self, served, params):
        async with http(served) as client:
            response = await client.get("threats", params=params)

        assert response.status_code == 400
        (name,) = params
        assert response.json()["errors"][0]["detail"].startswith(f"{name}:")

    async def test_unknown_parameters_are_ignored(self, served):
        ids = await list_ids(served, confidenceLevels="malicious", query="cmd.exe")

        assert len(ids) == 7

    async def test_unknown_path_is_404_and_wrong_method_is_405(self, served):
        async with http(served) as client:
            missing = await client.get(f"threats/{MITRE_ID}")
            wrong = await client.post("threats", json={})

        assert missing.status_code == 404
        assert missing.json()["errors"][0]["title"] == "Not Found"
        assert wrong.status_code == 405
        assert wrong.json()["errors"][0]["title"] == "Method Not Allowed"


class TestLateThreat:
    """A threat indexed late is found by a poll whose window still covers it."""

    async def test_late_threat_appears_in_a_later_query_from_the_same_moment(
        self, served
    ):
        since = datetime(2025, 1, 1, tzinfo=UTC)
        async with client_for(served) as client:
            before = [t.id async for t in client.iter_threats(updated_since=since)]
            served.state.add_threat(new_threat("777", "2025-01-02T08:00:00.000000Z"))
            after = [t.id async for t in client.iter_threats(updated_since=since)]

        assert "777" not in before
        assert after == ["777", *before]

    async def test_updating_with_an_old_updated_at_keeps_it_in_the_past(self, served):
        changed = served.state.update_threat(
            STAR_ID, incidentStatus="resolved", updatedAt="2022-12-22T00:00:00Z"
        )

        ids = await list_ids(served, updatedAt__gte="2022-12-21T23:00:00Z")

        assert changed["threatInfo"]["updatedAt"] == "2022-12-22T00:00:00Z"
        assert STAR_ID in ids


class TestWriteBack:
    """External ticket ids and notes are stored and read back."""

    async def test_external_ticket_id_is_stored_on_the_threat(self, served):
        body = {
            "filter": {"ids": [MITRE_ID]},
            "data": {"externalTicketId": "T20250601.0001"},
        }

        async with http(served) as client:
            response = await client.post("threats/external-ticket-id", json=body)
            listed = await client.get("threats", params={"ids": MITRE_ID})

        assert response.json() == {"data": {"affected": 1}}
        info = listed.json()["data"][0]["threatInfo"]
        assert info["externalTicketId"] == "T20250601.0001"
        assert info["externalTicketExists"] is True
        assert served.state.external_ticket_id(MITRE_ID) == "T20250601.0001"

    async def test_same_ticket_id_again_affects_nothing(self, served):
        async with client_for(served) as client:
            first = await client.set_external_ticket_id(MITRE_ID, "T1")
            again = await client.set_external_ticket_id(MITRE_ID, "T1")

        assert (first, again) == (1, 0)

    async def test_write_back_to_an_unknown_threat_affects_nothing(self, served):
        async with client_for(served) as client:
            ticket = await client.set_external_ticket_id("42", "T1")
            note = await client.add_threat_note("42", "hello")

        assert (ticket, note) == (0, 0)

    async def test_note_is_listed_under_its_threat(self, served):
        async with client_for(served) as client:
            affected = await client.add_threat_note(MITRE_ID, "Autotask ticket T1")
        async with http(served) as client:
            response = await client.get(f"threats/{MITRE_ID}/notes")
            other = await client.get(f"threats/{STAR_ID}/notes")

        assert affected == 1
        (note,) = response.json()["data"]
        assert note["text"] == "Autotask ticket T1"
        assert note["createdAt"] == "2025-06-01T12:00:00.123456Z"
        assert response.json()["pagination"] == {"nextCursor": None, "totalItems": 1}
        assert other.json()["data"] == []
        assert served.state.notes(MITRE_ID) == [note]

    async def test_notes_are_paged_oldest_first(self, served, clock):
        async with client_for(served) as client:
            for n in range(3):
                clock.moment = FROZEN_NOW + timedelta(minutes=n)
                await client.add_threat_note(MITRE_ID, f"note {n}")
        async with http(served) as client:
            pages = await follow_pages(
                client, f"threats/{MITRE_ID}/notes", {"limit": 2}
            )

        texts = [note["text"] for page in pages for note in page["data"]]
        assert texts == ["note 0", "note 1", "note 2"]
        assert len(pages) == 2

    async def test_write_back_moves_updated_at_to_now(self, served):
        async with client_for(served) as client:
            await client.set_external_ticket_id(STAR_ID, "T1")

        threat = served.state.threat(STAR_ID)
        assert threat["threatInfo"]["updatedAt"] == "2025-06-01T12:00:00.123456Z"

    async def test_write_back_keeps_updated_at_when_told_not_to_bump(self, served):
        served.state.write_backs_bump_updated_at = False
        before = served.state.threat(STAR_ID)["threatInfo"]["updatedAt"]

        async with client_for(served) as client:
            await client.add_threat_note(STAR_ID, "hello")

        assert served.state.threat(STAR_ID)["threatInfo"]["updatedAt"] == before

    @pytest.mark.parametrize(
        ("path", "body", "detail"),
        [
            (
                "threats/notes",
                {"filter": {}, "data": {"text": "x"}},
                "filter: at least one condition such as ids is needed.",
            ),
            (
                "threats/notes",
                {"filter": {"ids": [MITRE_ID]}, "data": {"text": " "}},
                "data.text: a non-empty string is required.",
            ),
            (
                "threats/external-ticket-id",
                {"filter": {"ids": [MITRE_ID]}},
                "data: an object is required.",
            ),
            (
                "threats/external-ticket-id",
                {"filter": {"ids": MITRE_ID}, "data": {"externalTicketId": 5}},
                "data.externalTicketId: a non-empty string is required.",
            ),
        ],
    )
    async def test_unusable_write_back_body_is_400(self, served, path, body, detail):
        async with http(served) as client:
            response = await client.post(path, json=body)

        assert response.status_code == 400
        assert response.json()["errors"][0]["detail"] == detail
        assert served.state.notes(MITRE_ID) == []
        assert served.state.external_ticket_id(MITRE_ID) is None

    async def test_empty_id_list_matches_no_threat(self, served):
        async with http(served) as client:
            response = await client.post(
                "threats/notes", json={"filter": {"ids": []}, "data": {"text": "x"}}
            )

        assert response.json() == {"data": {"affected": 0}}


class TestClientAgainstEmulator:
    """The real client, end to end over loopback."""

    async def test_client_pages_through_every_threat_with_small_pages(self, served):
        async with client_for(served) as client:
            threats = [t async for t in client.iter_threats(page_size=2)]

        assert [t.id for t in threats] == [tid for _, tid in sample_updates(served)]

    async def test_client_fetches_threats_by_id(self, served):
        async with client_for(served) as client:
            threats = await client.get_threats([STAR_ID, MITRE_ID, "42"])

        assert sorted(t.id for t in threats) == sorted([STAR_ID, MITRE_ID])

    async def test_client_filters_unticketed_threats(self, served):
        async with client_for(served) as client:
            await client.set_external_ticket_id(MITRE_ID, "T1")
            threats = [t async for t in client.iter_threats(externalTicketExists=False)]

        assert MITRE_ID not in {t.id for t in threats}
        assert len(threats) == 6

    async def test_client_with_a_wrong_token_gets_an_auth_error(self, served):
        async with client_for(served, token="expired-token") as client:
            with pytest.raises(SentinelOneAuthError) as caught:
                await client.get_threats([MITRE_ID])

        assert "Authentication Failed (code 4010010)" in str(caught.value)
        assert "expired-token" not in str(caught.value)


class TestState:
    """The state API that tests and the CLI use."""

    def test_update_threat_moves_updated_at_to_now_unless_given(self, clock):
        emulator = SentinelOneEmulator.from_samples(now=clock)

        bumped = emulator.update_threat(MITRE_ID, incidentStatus="resolved")
        kept = emulator.update_threat(
            STAR_ID, updatedAt=datetime(2020, 1, 1, tzinfo=UTC)
        )

        assert bumped["threatInfo"]["incidentStatus"] == "resolved"
        assert bumped["threatInfo"]["updatedAt"] == "2025-06-01T12:00:00.123456Z"
        assert kept["threatInfo"]["updatedAt"] == "2020-01-01T00:00:00.000000Z"

    def test_update_of_an_unknown_threat_names_it(self):
        emulator = SentinelOneEmulator()

        with pytest.raises(KeyError, match="no threat 42"):
            emulator.update_threat("42", incidentStatus="resolved")

    def test_adding_a_threat_twice_is_refused(self):
        emulator = SentinelOneEmulator.from_samples()

        with pytest.raises(EmulatorDataError, match=f"Threat {MITRE_ID} exists"):
            emulator.add_threat(sample("v21-windows-suspicious-mitre-mitigated"))

    def test_reset_forgets_added_threats_notes_and_ticket_ids(self):
        emulator = SentinelOneEmulator.from_samples()
        emulator.add_threat(new_threat("777", "2025-01-02T08:00:00Z"))
        emulator.update_threat(MITRE_ID, externalTicketId="T1")

        emulator.reset()

        assert emulator.threat("777") is None
        assert emulator.external_ticket_id(MITRE_ID) is None
        assert len(emulator.threats()) == 7

    def test_from_files_reads_a_threat_a_list_an_envelope_and_a_folder(self, tmp_path):
        folder = tmp_path / "more"
        folder.mkdir()
        (tmp_path / "one.json").write_text(json.dumps(new_threat("1", "2024-01-01")))
        (tmp_path / "list.json").write_text(
            json.dumps([new_threat("2", "2024-01-01"), new_threat("3", "2024-01-01")])
        )
        (folder / "api.json").write_text(
            json.dumps({"data": [new_threat("4", "2024-01-01")], "pagination": {}})
        )

        emulator = SentinelOneEmulator.from_files(
            [tmp_path / "one.json", tmp_path / "list.json", folder]
        )

        assert [raw["id"] for raw in emulator.threats()] == ["1", "2", "3", "4"]

    def test_from_files_refuses_a_v20_threat_saying_why(self, tmp_path):
        path = tmp_path / "old.json"
        path.write_text(
            (SAMPLES / "v20-flat-windows-malicious-mitigated.json").read_text()
        )

        with pytest.raises(EmulatorDataError) as caught:
            SentinelOneEmulator.from_files([path])

        assert str(caught.value) == (
            f"{path} is a v2.0 flat threat: it has no threatInfo object, and the "
            "v2.1 API only serves threats that do."
        )

    def test_from_files_refuses_a_repeated_id_naming_both_places(self, tmp_path):
        (tmp_path / "a.json").write_text(json.dumps(new_threat("5", "2024-01-01")))
        (tmp_path / "b.json").write_text(json.dumps([new_threat("5", "2024-01-01")]))

        with pytest.raises(EmulatorDataError) as caught:
            SentinelOneEmulator.from_files([tmp_path])

        assert str(caught.value) == (
            f"{tmp_path / 'b.json'}: [0] repeats threat 5, first given in "
            f"{tmp_path / 'a.json'}."
        )

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            ({"id": 5}, "has no usable id"),
            ({"threatInfo": {"createdAt": "2024-01-01"}}, "needs threatInfo.updatedAt"),
        ],
    )
    def test_threat_the_emulator_cannot_sort_is_refused(self, change, problem):
        threat = {**new_threat("6", "2024-01-01"), **change}

        with pytest.raises(EmulatorDataError, match=problem):
            SentinelOneEmulator([threat])

    def test_unreadable_file_names_it(self, tmp_path):
        path = tmp_path / "broken.json"
        path.write_text("{not json")

        with pytest.raises(EmulatorDataError, match="broken.json is not valid JSON"):
            SentinelOneEmulator.from_files([path])


class TestServing:
    """serve_in_thread starts and stops a real server."""

    def test_server_stops_listening_when_the_block_ends(self):
        with serve_in_thread() as server:
            url = f"{server.url}/web/api/v2.1/threats"
            during = httpx.get(url, headers=AUTH)

        assert during.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, headers=AUTH)

    def test_busy_port_fails_with_a_start_error_naming_the_emulator(
        self, console_server
    ):
        port = int(console_server.url.rsplit(":", 1)[1])

        with (
            pytest.raises(
                EmulatorStartError, match="SentinelOne emulator cannot listen"
            ),
            serve_in_thread(SentinelOneEmulator(), port=port),
        ):
            pass


class TestCountThreats:
    async def test_the_count_matches_what_the_listing_yields(self, served):
        since = datetime(2021, 1, 1, tzinfo=UTC)

        async with client_for(served) as client:
            count = await client.count_threats(updated_since=since)
            listed = [t async for t in client.iter_raw_threats(updated_since=since)]

        assert count == len(listed) == 6
