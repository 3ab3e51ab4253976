"""Fault injection in the Autotask emulator, seen over real HTTP on loopback.

Each fault kind is checked twice: as a plain httpx client sees it (status and body,
or the transport error) and as the project's `AutotaskClient` reports it.
"""

import asyncio
import logging
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from s1_autotask.autotask.client import AutotaskClient, AutotaskCredentials
from s1_autotask.autotask.errors import (
    AutotaskRateLimitError,
    AutotaskStatusError,
    AutotaskTransportError,
    is_transient,
)
from s1_autotask.emulators.autotask import (
    AutotaskEmulator,
    EmulatorCounters,
    FaultKind,
    FaultPlan,
    FaultPlanError,
    RunningEmulator,
    create_app,
    serve_in_thread,
)
from tests.emulators.test_autotask_emulator import AUTH_HEADERS, client_for, ticket_body

pytestmark = pytest.mark.anyio

THREAD_LIMIT_TEXT = (
    "The Autotask API thread threshold of 3 threads has been exceeded. "
    "Endpoint: {endpoint}. Error code: Itgenatr005"
)
THRESHOLD_TEXT = (
    "The API request threshold of 10000 requests per 60 minutes has been exceeded."
)
UNEXPECTED_ERROR = re.compile(
    r"An unexpected error has occurred\. If the problem persists, please contact "
    r"Autotask Support and reference Error ID: \d+"
)
DISCONNECTED = "Server disconnected without sending a response."
EXAMPLE_SPEC = (
    "thread_limit=0.05,rate_limited=0.05,server_error=0.05,dropped=0.03,"
    "lost_answer=0.02,slow=0.02"
)


@pytest.fixture(scope="module")
def fault_server(bundled_seed) -> Iterator[RunningEmulator]:
    """An emulator of its own, so no plan set here can reach the other suites."""
    with serve_in_thread(AutotaskEmulator(bundled_seed)) as server:
        yield server


@pytest.fixture
def served(fault_server) -> Iterator[RunningEmulator]:
    """The fault server reset to its seed, faults off before and after the test."""
    fault_server.emulator.faults = None
    fault_server.emulator.reset()
    yield fault_server
    fault_server.emulator.faults = None


def autotask_client(server: RunningEmulator, *, timeout: float = 10) -> AutotaskClient:
    """The project's client, discovering its zone from the emulator."""
    credentials = AutotaskCredentials(
        username=AUTH_HEADERS["UserName"],
        secret=SecretStr(AUTH_HEADERS["Secret"]),
        integration_code=SecretStr(AUTH_HEADERS["ApiIntegrationCode"]),
    )
    zone = f"{server.url}/atservicesrest/v1.0/zoneInformation"
    return AutotaskClient(credentials, zone_url=zone, timeout=timeout)


def by_external_id(external_id: str) -> dict:
    """The dedup query the service sends before creating a ticket."""
    return {"filter": [{"op": "eq", "field": "externalID", "value": external_id}]}


async def create_ticket(client: httpx.AsyncClient, **changes) -> int:
    """Create a valid ticket and return its id."""
    response = await client.post("Tickets", json=ticket_body(**changes))
    response.raise_for_status()
    return response.json()["itemId"]


def outcome(result: httpx.Response | Exception) -> str:
    """Name what a client got back: a status, or the transport error's class."""
    if isinstance(result, httpx.Response):
        return str(result.status_code)
    return type(result).__name__


async def send_all(client: httpx.AsyncClient, requests: int, method: str, url: str):
    """Send `requests` calls one after another; keep each answer or error."""
    results: list[httpx.Response | Exception] = []
    body = ticket_body() if method == "POST" else None
    for _ in range(requests):
        try:
            results.append(await client.request(method, url, json=body))
        except httpx.TransportError as exc:
            results.append(exc)
    return results


class TestFaultPlan:
    """Building plans: from a spec, uniformly, and refusing bad input."""

    def test_spec_gives_each_kind_its_rate(self):
        """The compact spec maps each kind=rate part onto the plan."""
        plan = FaultPlan.from_spec(EXAMPLE_SPEC, seed=7, slow_seconds=2.0)

        assert plan.rates == {
            FaultKind.THREAD_LIMIT: 0.05,
            FaultKind.RATE_LIMITED: 0.05,
            FaultKind.SERVER_ERROR: 0.05,
            FaultKind.SLOW: 0.02,
            FaultKind.DROPPED: 0.03,
            FaultKind.LOST_ANSWER: 0.02,
        }
        assert (plan.seed, plan.slow_seconds) == (7, 2.0)
        assert FaultPlan.from_spec(plan.to_spec(), seed=7, slow_seconds=2.0) == plan

    def test_spec_tolerates_spaces_case_and_a_trailing_comma(self):
        """Parts are trimmed and kind names read in any case."""
        plan = FaultPlan.from_spec(" Server_Error = 0.5 , slow=0.1 ,")

        assert plan.server_error == 0.5
        assert plan.slow == 0.1

    def test_empty_spec_and_default_plan_inject_nothing(self):
        """No spec, no faults: the default is off."""
        assert not FaultPlan.from_spec("").active
        assert not FaultPlan().active
        assert not AutotaskEmulator().faults.active

    def test_uniform_spreads_one_rate_over_every_kind(self):
        """uniform(0.3) gives each of the six kinds 0.05."""
        plan = FaultPlan.uniform(0.3, seed=3)

        assert list(plan.rates.values()) == [pytest.approx(0.05)] * len(FaultKind)
        assert sum(plan.rates.values()) == pytest.approx(0.3)
        assert plan.seed == 3

    @pytest.mark.parametrize(
        ("spec", "named"),
        [
            ("thread_limit=0.1,thred_limit=0.1", "'thred_limit=0.1' names no fault"),
            ("slow", "'slow' is not written kind=rate"),
            ("dropped=often", "'dropped=often' has a rate that is not a number"),
            ("dropped=1.5", "'dropped=1.5'.*outside 0..1"),
            ("dropped=-0.1", "'dropped=-0.1'.*outside 0..1"),
            ("dropped=nan", "'dropped=nan'.*outside 0..1"),
            ("slow=0.1,slow=0.2", "'slow=0.2' repeats the kind slow"),
            ("slow=0.6,dropped=0.6", "'slow=0.6,dropped=0.6' total 1.2"),
        ],
        ids=[
            "unknown-kind",
            "no-rate",
            "not-a-number",
            "above-one",
            "negative",
            "nan",
            "repeated-kind",
            "total-above-one",
        ],
    )
    def test_bad_spec_is_refused_naming_the_bad_part(self, spec, named):
        """A spec that cannot be used fails with the offending part quoted."""
        with pytest.raises(FaultPlanError, match=named):
            FaultPlan.from_spec(spec)

    @pytest.mark.parametrize(
        ("options", "named"),
        [
            ({"slow_seconds": 0}, "slow_seconds 0"),
            ({"seed": "seven"}, "seed 'seven'"),
            ({"methods": ["FETCH"]}, "FETCH"),
            ({"server_error": 2.0}, "server_error.*outside 0..1"),
        ],
        ids=["no-delay", "seed-not-int", "unknown-method", "rate-above-one"],
    )
    def test_bad_plan_options_are_refused(self, options, named):
        """Direct construction checks the same limits as the spec."""
        with pytest.raises(FaultPlanError, match=named):
            FaultPlan(**options)

    def test_scope_matches_methods_and_path_globs_in_any_case(self):
        """methods and paths narrow the calls a plan may touch."""
        plan = FaultPlan(
            server_error=1.0, methods=["post"], paths=["Tickets", "tickets/*/notes"]
        )

        assert plan.covers("POST", "tickets")
        assert plan.covers("POST", "tickets/128901/notes")
        assert not plan.covers("POST", "tickets/query")
        assert not plan.covers("GET", "tickets")
        assert not plan.covers("POST", "companies")

    def test_counters_flatten_for_printing(self):
        """as_dict gives one name per counter, faults prefixed by kind."""
        counters = EmulatorCounters(requests=3, tickets_created=1)

        flat = counters.as_dict()

        assert flat["requests"] == 3
        assert flat["tickets_created"] == 1
        assert flat["faults.lost_answer"] == 0
        assert len(flat) == 4 + len(FaultKind)


class TestFaultsOverHttp:
    """What a plain httpx client receives for each kind of fault."""

    async def test_thread_limit_answers_the_real_thread_threshold_error(self, served):
        """thread_limit is the 429 Itgenatr005 error of the endpoint called."""
        served.emulator.faults = FaultPlan(thread_limit=1.0)
        async with client_for(served) as client:
            response = await client.get("Companies/0")

        assert response.status_code == served.emulator.thread_limit_status == 429
        assert response.json() == {
            "errors": [THREAD_LIMIT_TEXT.format(endpoint="Companies")]
        }

    async def test_rate_limited_answers_429_with_the_threshold_error(self, served):
        """rate_limited is a 429 naming the hourly request threshold."""
        served.emulator.faults = FaultPlan(rate_limited=1.0)
        async with client_for(served) as client:
            response = await client.get("Companies/0")

        assert response.status_code == 429
        assert response.json() == {"errors": [THRESHOLD_TEXT]}

    async def test_server_error_answers_an_opaque_500_and_applies_nothing(self, served):
        """server_error is Autotask's 'unexpected error' 500; the write is not made."""
        served.emulator.faults = FaultPlan(server_error=1.0)
        async with client_for(served) as client:
            response = await client.post("Tickets", json=ticket_body())

        (text,) = response.json()["errors"]
        assert response.status_code == 500
        assert UNEXPECTED_ERROR.fullmatch(text)
        assert served.emulator.tickets == []

    async def test_slow_answer_trips_the_client_timeout(self, served):
        """slow holds the call past a client's read timeout."""
        served.emulator.faults = FaultPlan(slow=1.0, slow_seconds=0.5)
        async with client_for(served) as client:
            client.timeout = httpx.Timeout(0.2)
            with pytest.raises(httpx.ReadTimeout):
                await client.get("Companies/0")

    async def test_slow_answer_arrives_whole_for_a_patient_client(self, served):
        """A client that waits long enough gets the normal answer, late."""
        served.emulator.faults = FaultPlan(slow=1.0, slow_seconds=0.3)
        async with client_for(served) as client:
            started = time.perf_counter()
            response = await client.get("Companies/0")
            elapsed = time.perf_counter() - started

        assert response.status_code == 200
        assert response.json()["item"]["id"] == 0
        assert elapsed >= 0.3

    async def test_slow_write_lands_after_the_client_gave_up(self, served):
        """A slow create is still carried out once its client has timed out."""
        served.emulator.faults = FaultPlan(slow=1.0, slow_seconds=0.4)
        async with client_for(served) as client:
            client.timeout = httpx.Timeout(0.1)
            with pytest.raises(httpx.ReadTimeout):
                await client.post("Tickets", json=ticket_body())
            during = len(served.emulator.tickets)
            await asyncio.sleep(0.6)

        assert during == 0
        assert len(served.emulator.tickets) == 1

    async def test_dropped_call_is_a_transport_error_and_applies_nothing(self, served):
        """dropped ends the connection before any answer; the create is not made."""
        served.emulator.faults = FaultPlan(dropped=1.0)
        async with client_for(served) as client:
            with pytest.raises(httpx.RemoteProtocolError, match=DISCONNECTED):
                await client.post("Tickets", json=ticket_body())

        assert served.emulator.tickets == []

    def test_dropped_connection_carries_not_one_byte(self, served):
        """On the socket itself the cut is a clean end of stream, no status line."""
        served.emulator.faults = FaultPlan(dropped=1.0)
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        request = (
            "GET /atservicesrest/v1.0/Companies/0 HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in AUTH_HEADERS.items())
            + "\r\n"
        )
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(request.encode("ascii"))
            received = sock.recv(4096)

        assert received == b""

    async def test_cut_connections_leave_no_server_error_in_the_log(
        self, served, caplog
    ):
        """The server treats a cut as a closed connection, not as a failed app."""
        served.emulator.faults = FaultPlan(dropped=0.5, lost_answer=0.5)
        with caplog.at_level(logging.WARNING, logger="uvicorn"):
            async with client_for(served) as client:
                await send_all(client, 10, "POST", "Tickets")

        assert [r for r in caplog.records if r.name.startswith("uvicorn")] == []

    async def test_lost_answer_saves_the_ticket_the_client_never_heard_of(self, served):
        """lost_answer cuts the connection after the create was saved."""
        served.emulator.faults = FaultPlan(lost_answer=1.0)
        async with client_for(served) as client:
            with pytest.raises(httpx.RemoteProtocolError, match=DISCONNECTED):
                await client.post("Tickets", json=ticket_body(externalID="s1:lost-1"))
            # Reads are never answer-lost, so the dedup query works meanwhile.
            found = await client.post("Tickets/query", json=by_external_id("s1:lost-1"))

        items = found.json()["items"]
        assert found.status_code == 200
        assert [item["externalID"] for item in items] == ["s1:lost-1"]
        assert served.emulator.counters.tickets_created == 1

    async def test_lost_answer_applies_updates_and_notes(self, served):
        """A PATCH and a note whose answers are lost are still saved."""
        note = {"description": "Threat mitigated.", "noteType": 1, "publish": 1}
        async with client_for(served) as client:
            ticket_id = await create_ticket(client)
            served.emulator.faults = FaultPlan(lost_answer=1.0)
            with pytest.raises(httpx.RemoteProtocolError):
                await client.patch("Tickets", json={"id": ticket_id, "status": 5})
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(f"Tickets/{ticket_id}/Notes", json=note)

        counters = served.emulator.counters
        assert served.emulator.tickets[0]["status"] == 5
        assert [n["description"] for n in served.emulator.ticket_notes] == [
            "Threat mitigated."
        ]
        assert (counters.tickets_updated, counters.notes_created) == (1, 1)
        assert counters.faults[FaultKind.LOST_ANSWER] == 2

    async def test_lost_answer_never_hits_reads(self, served):
        """Queries, gets and field lookups answer normally under lost_answer=1."""
        served.emulator.faults = FaultPlan(lost_answer=1.0)
        async with client_for(served) as client:
            responses = [
                await client.get("Companies/0"),
                await client.post("Tickets/query", json=by_external_id("none")),
                await client.post("Tickets/query/count", json=by_external_id("none")),
                await client.get("Tickets/entityInformation/fields"),
            ]

        assert [r.status_code for r in responses] == [200] * 4
        assert served.emulator.counters.faults_injected == 0

    async def test_zone_lookup_and_version_are_never_faulted(self, served):
        """Unauthenticated discovery calls pass even with every call faulted."""
        served.emulator.faults = FaultPlan.uniform(1.0)
        async with httpx.AsyncClient(base_url=served.url) as client:
            zones = [
                await client.get(
                    "/atservicesrest/v1.0/zoneInformation",
                    params={"user": AUTH_HEADERS["UserName"]},
                )
                for _ in range(20)
            ]
            version = await client.get("/atservicesrest/versioninformation")

        assert {r.status_code for r in zones} == {200}
        assert version.status_code == 200
        assert served.emulator.counters.requests == 0

    async def test_credentials_are_checked_before_any_fault(self, served):
        """A wrong secret is still a bare 401, not a fault."""
        served.emulator.faults = FaultPlan(server_error=1.0)
        headers = {**AUTH_HEADERS, "Secret": "wrong-secret"}
        async with client_for(served, headers) as client:
            response = await client.get("Companies/0")

        assert response.status_code == 401
        assert served.emulator.counters.faults_injected == 0

    async def test_scope_faults_only_ticket_creates(self, served):
        """A plan scoped to POST Tickets leaves queries, notes and reads alone."""
        note = {"description": "x", "noteType": 1, "publish": 1}
        async with client_for(served) as client:
            ticket_id = await create_ticket(client)
            served.emulator.faults = FaultPlan(
                server_error=1.0, methods=["POST"], paths=["Tickets"]
            )
            create = await client.post("Tickets", json=ticket_body())
            others = [
                await client.post("Tickets/query", json=by_external_id("x")),
                await client.post(f"Tickets/{ticket_id}/Notes", json=note),
                await client.patch("Tickets", json={"id": ticket_id, "status": 8}),
                await client.get(f"Tickets/{ticket_id}"),
            ]

        assert create.status_code == 500
        assert [r.status_code for r in others] == [200] * 4
        assert served.emulator.counters.faults[FaultKind.SERVER_ERROR] == 1


class TestFaultsThroughTheClient:
    """What `AutotaskClient` raises for each kind, and whether it is retryable."""

    async def test_thread_limit_is_a_transient_rate_limit_error(self, served):
        """The thread-threshold refusal is a retryable rate-limit error."""
        served.emulator.faults = FaultPlan(thread_limit=1.0)
        async with autotask_client(served) as client:
            with pytest.raises(AutotaskRateLimitError) as caught:
                await client.get("Companies", 0)

        assert str(caught.value) == (
            "Autotask GET Companies/0 failed with HTTP 429: "
            + THREAD_LIMIT_TEXT.format(endpoint="Companies")
        )
        assert is_transient(caught.value)

    async def test_rate_limited_is_a_transient_rate_limit_error(self, served):
        """A 429 is a retryable rate-limit error carrying Autotask's text."""
        served.emulator.faults = FaultPlan(rate_limited=1.0)
        async with autotask_client(served) as client:
            with pytest.raises(AutotaskRateLimitError) as caught:
                await client.query("Companies", [])

        assert str(caught.value) == (
            f"Autotask POST Companies/query failed with HTTP 429: {THRESHOLD_TEXT}"
        )
        assert is_transient(caught.value)

    async def test_server_error_is_a_plain_transient_status_error(self, served):
        """The opaque 500 is no validation error, so it is retried."""
        served.emulator.faults = FaultPlan(server_error=1.0)
        async with autotask_client(served) as client:
            with pytest.raises(AutotaskStatusError) as caught:
                await client.create("Tickets", ticket_body())

        prefix = "Autotask POST Tickets failed with HTTP 500: "
        assert type(caught.value) is AutotaskStatusError
        assert str(caught.value).startswith(prefix)
        assert UNEXPECTED_ERROR.fullmatch(str(caught.value).removeprefix(prefix))
        assert is_transient(caught.value)

    async def test_slow_answer_is_a_transport_error_after_the_timeout(self, served):
        """An answer later than the timeout is a retryable transport error."""
        served.emulator.faults = FaultPlan(slow=1.0, slow_seconds=0.5)
        async with autotask_client(served, timeout=0.2) as client:
            with pytest.raises(AutotaskTransportError) as caught:
                await client.get("Companies", 0)

        assert str(caught.value).startswith(
            "Autotask GET Companies/0 failed without a response: ReadTimeout"
        )
        assert is_transient(caught.value)

    async def test_dropped_call_is_a_transport_error(self, served):
        """A cut connection is a retryable transport error, never a status."""
        served.emulator.faults = FaultPlan(dropped=1.0)
        async with autotask_client(served) as client:
            with pytest.raises(AutotaskTransportError) as caught:
                await client.get("Companies", 0)

        assert str(caught.value) == (
            "Autotask GET Companies/0 failed without a response: "
            f"RemoteProtocolError: {DISCONNECTED}"
        )
        assert is_transient(caught.value)

    async def test_lost_answer_fails_the_create_yet_lookup_finds_the_ticket(
        self, served
    ):
        """The classic duplicate trap: the create errs, the ticket exists."""
        served.emulator.faults = FaultPlan(lost_answer=1.0)
        async with autotask_client(served) as client:
            with pytest.raises(AutotaskTransportError) as caught:
                await client.create("Tickets", ticket_body(externalID="s1:lost-2"))
            found = await client.find_ticket_by_external_id("s1:lost-2")

        assert str(caught.value) == (
            "Autotask POST Tickets failed without a response: "
            f"RemoteProtocolError: {DISCONNECTED}"
        )
        assert is_transient(caught.value)
        assert found is not None
        assert found["id"] == served.emulator.tickets[0]["id"]


class TestRatesAndCounters:
    """Faults come at their rates, reproducibly, and the counters add up."""

    @pytest.mark.parametrize(
        ("kind", "method", "url", "seen_as"),
        [
            (FaultKind.THREAD_LIMIT, "GET", "Companies/0", "429"),
            (FaultKind.RATE_LIMITED, "GET", "Companies/0", "429"),
            (FaultKind.SERVER_ERROR, "GET", "Companies/0", "500"),
            (FaultKind.DROPPED, "GET", "Companies/0", "RemoteProtocolError"),
            (FaultKind.LOST_ANSWER, "POST", "Tickets", "RemoteProtocolError"),
        ],
        ids=lambda value: str(value) if isinstance(value, FaultKind) else None,
    )
    async def test_rate_of_one_fifth_hits_about_one_call_in_five(
        self, served, kind, method, url, seen_as
    ):
        """1000 calls at 0.2 see 150 to 250 faults, each one as the client saw it."""
        served.emulator.faults = FaultPlan(**{kind.value: 0.2}, seed=11)
        async with client_for(served) as client:
            results = await send_all(client, 1000, method, url)

        seen = Counter(outcome(result) for result in results)
        counters = served.emulator.counters
        assert 150 <= counters.faults[kind] <= 250
        assert counters.faults_injected == counters.faults[kind]
        assert seen == {
            "200": 1000 - counters.faults[kind],
            seen_as: counters.faults[kind],
        }
        assert counters.requests == 1000

    async def test_slow_rate_is_counted_and_each_slow_call_takes_its_delay(
        self, served
    ):
        """200 calls at slow=0.2 hold about 40 of them for slow_seconds each."""
        served.emulator.faults = FaultPlan(slow=0.2, slow_seconds=0.02, seed=5)
        async with client_for(served) as client:
            started = time.perf_counter()
            results = await send_all(client, 200, "GET", "Companies/0")
            elapsed = time.perf_counter() - started

        slow = served.emulator.counters.faults[FaultKind.SLOW]
        assert 20 <= slow <= 60
        assert {outcome(result) for result in results} == {"200"}
        assert elapsed >= slow * 0.02

    async def test_mixed_plan_counters_add_up_to_what_clients_saw(self, served):
        """Every create is answered, refused or cut, and the saved tickets agree."""
        served.emulator.faults = FaultPlan.from_spec(
            "thread_limit=0.1,rate_limited=0.1,server_error=0.1,dropped=0.1,"
            "lost_answer=0.1,slow=0.1",
            seed=7,
            slow_seconds=0.005,
        )
        async with client_for(served) as client:
            results = await send_all(client, 600, "POST", "Tickets")

        seen = Counter(outcome(result) for result in results)
        counters = served.emulator.counters
        faults = {str(kind): n for kind, n in counters.faults.items()}
        assert counters.requests == 600
        assert seen["429"] == faults["thread_limit"] + faults["rate_limited"]
        assert seen["500"] == faults["server_error"]
        assert seen["RemoteProtocolError"] == faults["dropped"] + faults["lost_answer"]
        assert seen["200"] == 600 - counters.faults_injected + faults["slow"]
        assert counters.tickets_created == seen["200"] + faults["lost_answer"]
        assert len(served.emulator.tickets) == counters.tickets_created
        assert all(n > 0 for n in faults.values())

    async def test_same_seed_gives_the_same_run(self, served):
        """Two runs from one seed fail the same calls the same way."""
        plan = FaultPlan.uniform(0.5, seed=42, slow_seconds=0.005)
        runs = []
        for _ in range(2):
            served.emulator.reset()
            served.emulator.faults = plan
            async with client_for(served) as client:
                results = await send_all(client, 60, "POST", "Tickets")
            runs.append([outcome(result) for result in results])

        assert runs[0] == runs[1]
        assert len(set(runs[0])) > 2

    async def test_reset_restarts_the_random_source(self, served):
        """After reset the plan in force repeats its first run."""
        served.emulator.faults = FaultPlan(server_error=0.5, seed=9)
        async with client_for(served) as client:
            first = [outcome(r) for r in await send_all(client, 40, "GET", "Roles/1")]
            served.emulator.reset()
            second = [outcome(r) for r in await send_all(client, 40, "GET", "Roles/1")]

        assert first == second
        assert served.emulator.counters.requests == 40

    async def test_plan_changed_mid_run_takes_effect_and_counts_carry_on(self, served):
        """Switching faults on after setup, then off, changes the very next call."""
        async with client_for(served) as client:
            before = await client.get("Companies/0")
            served.emulator.faults = FaultPlan(server_error=1.0)
            during = await client.get("Companies/0")
            served.emulator.faults = FaultPlan(thread_limit=1.0)
            switched = await client.get("Companies/0")
            served.emulator.faults = None
            after = await client.get("Companies/0")

        counters = served.emulator.counters
        assert [r.status_code for r in (before, during, switched, after)] == [
            200,
            500,
            429,
            200,
        ]
        assert counters.requests == 4
        assert counters.faults[FaultKind.SERVER_ERROR] == 1
        assert counters.faults[FaultKind.THREAD_LIMIT] == 1

    async def test_writes_are_counted_without_faults_too(self, served):
        """Creates, updates and notes count as they are saved."""
        note = {"description": "x", "noteType": 1, "publish": 1}
        async with client_for(served) as client:
            ticket_id = await create_ticket(client)
            await create_ticket(client)
            await client.patch("Tickets", json={"id": ticket_id, "status": 8})
            await client.post(f"Tickets/{ticket_id}/Notes", json=note)
            refused = await client.patch(
                "Tickets", json={"id": ticket_id, "status": 99}
            )

        counters = served.emulator.counters
        assert refused.status_code == 500
        assert (
            counters.tickets_created,
            counters.tickets_updated,
            counters.notes_created,
        ) == (2, 1, 1)
        assert counters.requests == 5
        assert counters.faults_injected == 0

    async def test_plan_given_at_construction_applies_from_the_first_call(self):
        """from_seed(faults=...) serves a misbehaving tenant from the start."""
        emulator = AutotaskEmulator.from_seed(faults=FaultPlan(server_error=1.0))
        with serve_in_thread(emulator) as server:
            async with client_for(server) as client:
                response = await client.get("Companies/0")

        assert response.status_code == 500
        assert emulator.counters.faults[FaultKind.SERVER_ERROR] == 1


class TestOutsideUvicorn:
    """A cut needs uvicorn's connection; elsewhere it fails loudly."""

    async def test_cut_under_an_in_process_transport_raises(self, bundled_seed):
        """httpx's ASGI transport has no socket to close, so the app says so."""
        emulator = AutotaskEmulator(bundled_seed, faults=FaultPlan(dropped=1.0))
        transport = httpx.ASGITransport(app=create_app(emulator))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://emulator/atservicesrest/v1.0/",
            headers=AUTH_HEADERS,
        ) as client:
            with pytest.raises(RuntimeError, match="served by uvicorn"):
                await client.get("Companies/0")
