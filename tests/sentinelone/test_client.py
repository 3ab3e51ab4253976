"""Tests for the SentinelOne REST client against handler functions on MockTransport."""

import copy
import json
import logging
import pickle
import traceback
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from s1_autotask.sentinelone.client import SentinelOneClient
from s1_autotask.sentinelone.errors import (
    SentinelOneAuthError,
    SentinelOneError,
    SentinelOneRateLimitError,
    SentinelOneStatusError,
    SentinelOneTransportError,
    ThreatPayloadError,
    is_transient,
)

pytestmark = pytest.mark.anyio

TOKEN = "eyJraWQiOiJ0b2tlblNpZ25pbmciLCJhbGciOiJIUzI1NiJ9.s1-unique-7731"
CONSOLE = "https://usea1-partner.sentinelone.net"
THREATS = f"{CONSOLE}/web/api/v2.1/threats"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "sentinelone"
MITRE_ID = "1373834705420286869"
AUTH_FAILED = {
    "errors": [{"code": 4010010, "detail": None, "title": "Authentication Failed"}]
}


def sample(name="v21-windows-suspicious-mitre-mitigated"):
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def page(threats, cursor=None):
    return {
        "data": threats,
        "pagination": {"nextCursor": cursor, "totalItems": len(threats)},
    }


def make_client(handler, **options):
    return SentinelOneClient(
        CONSOLE, SecretStr(TOKEN), transport=httpx.MockTransport(handler), **options
    )


def refuse(request):
    msg = f"unexpected request {request.method} {request.url}"
    raise AssertionError(msg)


def answer(response):
    """A handler that gives every request the same answer."""
    return lambda request: response


async def raw_threats(client, **arguments):
    return [raw async for raw in client.iter_raw_threats(**arguments)]


async def list_error(response):
    async with make_client(answer(response)) as client:
        with pytest.raises(SentinelOneError) as caught:
            await raw_threats(client)
    return caught.value


class TestRequests:
    """A listing asks for the right url, headers and query."""

    async def test_listing_sends_the_token_as_api_token_header(self):
        seen = []

        def handler(request):
            seen.append(request)
            return httpx.Response(200, json=page([]))

        async with make_client(handler, user_agent="s1-autotask-test/1") as client:
            await raw_threats(client)

        assert seen[0].headers["Authorization"] == f"ApiToken {TOKEN}"
        assert seen[0].headers["User-Agent"] == "s1-autotask-test/1"
        assert seen[0].headers["Accept"] == "application/json"

    @pytest.mark.parametrize(
        "base_url",
        [
            CONSOLE,
            f"{CONSOLE}/",
            f"{CONSOLE}/web/api/v2.1",
            f"{CONSOLE}/web/api/v2.1/",
        ],
    )
    async def test_console_url_with_or_without_api_path_reaches_threats(self, base_url):
        seen = []

        def handler(request):
            seen.append(str(request.url.copy_with(query=None)))
            return httpx.Response(200, json=page([]))

        client = SentinelOneClient(
            base_url, SecretStr(TOKEN), transport=httpx.MockTransport(handler)
        )
        async with client:
            await raw_threats(client)

        assert seen == [THREATS]
        assert client.base_url == CONSOLE

    @pytest.mark.parametrize("base_url", ["usea1.sentinelone.net", "ftp://x.net", ""])
    def test_base_url_that_is_not_http_is_refused(self, base_url):
        with pytest.raises(ValueError, match="not an absolute http"):
            SentinelOneClient(base_url, SecretStr(TOKEN))

    async def test_listing_asks_for_oldest_update_first_with_the_page_size(self):
        seen = []

        def handler(request):
            seen.append(dict(request.url.params))
            return httpx.Response(200, json=page([]))

        async with make_client(handler) as client:
            await raw_threats(client, page_size=250)

        assert seen == [{"limit": "250", "sortBy": "updatedAt", "sortOrder": "asc"}]

    async def test_updated_since_is_sent_in_utc_with_microseconds_and_z(self):
        seen = []
        since = datetime(2024, 5, 1, 14, 30, 0, tzinfo=timezone(timedelta(hours=2)))

        def handler(request):
            seen.append(request.url.params["updatedAt__gte"])
            return httpx.Response(200, json=page([]))

        async with make_client(handler) as client:
            await raw_threats(client, updated_since=since)

        assert seen == ["2024-05-01T12:30:00.000000Z"]

    async def test_naive_updated_since_is_refused_before_sending(self):
        async with make_client(refuse) as client:
            with pytest.raises(ValueError, match="no time zone"):
                await raw_threats(client, updated_since=datetime(2024, 5, 1))

    async def test_extra_filters_are_written_the_way_the_api_reads_them(self):
        seen = []

        def handler(request):
            seen.append(dict(request.url.params))
            return httpx.Response(200, json=page([]))

        async with make_client(handler) as client:
            await raw_threats(
                client,
                siteIds=["111", "222"],
                externalTicketExists=False,
                incidentStatuses="unresolved",
                createdAt__gt=datetime(2024, 1, 2, tzinfo=UTC),
                accountIds=None,
            )

        assert seen[0] == {
            "limit": "1000",
            "sortBy": "updatedAt",
            "sortOrder": "asc",
            "siteIds": "111,222",
            "externalTicketExists": "false",
            "incidentStatuses": "unresolved",
            "createdAt__gt": "2024-01-02T00:00:00.000000Z",
        }

    @pytest.mark.parametrize(
        ("name", "argument"),
        [("limit", "page_size"), ("cursor", "page_size"), ("sortBy", "updated_since")],
    )
    async def test_filter_that_the_client_sets_itself_is_refused(self, name, argument):
        async with make_client(refuse) as client:
            with pytest.raises(ValueError, match=f"pass {argument}="):
                await raw_threats(client, **{name: "5"})

    @pytest.mark.parametrize("page_size", [1001, 0, -1, True])
    async def test_page_size_outside_1_to_1000_is_refused_before_sending(
        self, page_size
    ):
        async with make_client(refuse) as client:
            with pytest.raises(ValueError, match="page size must be 1 to 1000"):
                await raw_threats(client, page_size=page_size)


class TestPaging:
    """Pages are followed by cursor; id lists are split into bounded requests."""

    async def test_every_page_is_followed_until_the_cursor_is_null(self):
        pages = {
            None: page([{"id": "1", "threatInfo": {}}], cursor="c2"),
            "c2": page([{"id": "2", "threatInfo": {}}], cursor="c3"),
            "c3": page([{"id": "3", "threatInfo": {}}]),
        }
        seen = []

        def handler(request):
            params = dict(request.url.params)
            seen.append(params)
            return httpx.Response(200, json=pages[params.get("cursor")])

        async with make_client(handler) as client:
            threats = await raw_threats(client, page_size=1, siteIds=["9"])

        assert [raw["id"] for raw in threats] == ["1", "2", "3"]
        assert [params.get("cursor") for params in seen] == [None, "c2", "c3"]
        assert all(params["siteIds"] == "9" for params in seen)

    async def test_long_id_lists_are_split_into_requests_of_100(self):
        ids = [str(10**18 + n) for n in range(250)]
        asked = []

        def handler(request):
            chunk = request.url.params["ids"].split(",")
            asked.append(chunk)
            return httpx.Response(200, json=page([{"id": i} for i in chunk]))

        async with make_client(handler) as client:
            threats = await raw_threats(client, ids=ids)

        assert [len(chunk) for chunk in asked] == [100, 100, 50]
        assert [raw["id"] for raw in threats] == ids

    async def test_repeated_ids_are_asked_for_once(self):
        asked = []

        def handler(request):
            asked.append(request.url.params["ids"])
            return httpx.Response(200, json=page([]))

        async with make_client(handler) as client:
            await raw_threats(client, ids=["7", "8", "7"])

        assert asked == ["7,8"]

    async def test_empty_id_list_sends_nothing_and_finds_nothing(self):
        async with make_client(refuse) as client:
            threats = await raw_threats(client, ids=[])

        assert threats == []

    @pytest.mark.parametrize("ids", [["12,34"], ["../threats"], [""], [42]])
    async def test_id_that_is_not_a_threat_id_is_refused(self, ids):
        async with make_client(refuse) as client:
            with pytest.raises(ValueError, match="is not a SentinelOne threat id"):
                await raw_threats(client, ids=ids)

    async def test_one_string_in_place_of_an_id_list_is_refused(self):
        async with make_client(refuse) as client:
            with pytest.raises(TypeError, match="list of ids"):
                await raw_threats(client, ids="1373834705420286869")

    async def test_repeated_cursor_stops_paging_with_an_error(self):
        error = await list_error(httpx.Response(200, json=page([], cursor="same")))

        assert str(error) == (
            "SentinelOne repeated a page cursor for /web/api/v2.1/threats; stopped."
        )

    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            ({"errors": []}, "without a data list"),
            ({"data": [{"id": "1"}, "2"]}, "with data[1] that is not an object"),
            (
                {"data": [], "pagination": {"nextCursor": 5}},
                "with a nextCursor that is not a string",
            ),
            ({"data": [], "pagination": []}, "with a non-object pagination"),
        ],
    )
    async def test_wrongly_shaped_page_is_a_status_error_saying_what_is_wrong(
        self, body, problem
    ):
        error = await list_error(httpx.Response(200, json=body))

        assert type(error) is SentinelOneStatusError
        assert (
            str(error) == f"SentinelOne GET /web/api/v2.1/threats answered {problem}."
        )

    async def test_success_without_json_is_a_status_error(self):
        error = await list_error(httpx.Response(200, text="<html>login</html>"))

        assert type(error) is SentinelOneStatusError
        assert str(error) == (
            "SentinelOne GET /web/api/v2.1/threats answered HTTP 200 without a JSON "
            "object body."
        )
        assert not is_transient(error)


class TestThreats:
    """Raw threats become models, and a malformed one is named."""

    async def test_iter_threats_parses_each_threat_into_a_model(self):
        raws = [sample(), sample("v21-windows-suspicious-not-mitigated")]

        async with make_client(answer(httpx.Response(200, json=page(raws)))) as client:
            threats = [threat async for threat in client.iter_threats()]

        assert [threat.id for threat in threats] == [MITRE_ID, "1112953674841025235"]
        assert (
            threats[0].endpoint.computer_name
            == sample()["agentRealtimeInfo"]["agentComputerName"]
        )

    async def test_malformed_threat_raises_a_payload_error_naming_it(self):
        broken = copy.deepcopy(sample())
        broken["threatInfo"]["createdAt"] = "yesterday"

        async with make_client(answer(httpx.Response(200, json=page([broken])))) as c:
            with pytest.raises(ThreatPayloadError) as caught:
                [threat async for threat in c.iter_threats()]

        assert caught.value.threat_id == MITRE_ID
        assert caught.value.location == "threatInfo.createdAt"
        assert MITRE_ID in str(caught.value)

    async def test_raw_iteration_keeps_good_threats_beside_a_malformed_one(self):
        broken = copy.deepcopy(sample())
        broken["threatInfo"]["createdAt"] = "yesterday"
        good = sample("v21-windows-suspicious-not-mitigated")

        async with make_client(
            answer(httpx.Response(200, json=page([broken, good])))
        ) as client:
            threats = await raw_threats(client)

        assert [raw["id"] for raw in threats] == [MITRE_ID, "1112953674841025235"]

    async def test_get_threats_asks_by_id_and_returns_models(self):
        asked = []

        def handler(request):
            asked.append(request.url.params["ids"])
            return httpx.Response(200, json=page([sample()]))

        async with make_client(handler) as client:
            threats = await client.get_threats([MITRE_ID])

        assert asked == [MITRE_ID]
        assert [threat.id for threat in threats] == [MITRE_ID]


class TestWriteBack:
    """Ticket ids and notes are posted with a filter on one threat id."""

    async def test_external_ticket_id_is_posted_for_the_threat(self):
        seen = []

        def handler(request):
            seen.append((request.method, request.url.path, json.loads(request.content)))
            return httpx.Response(200, json={"data": {"affected": 1}})

        async with make_client(handler) as client:
            affected = await client.set_external_ticket_id(MITRE_ID, "T20240101.0001")

        assert affected == 1
        assert seen == [
            (
                "POST",
                "/web/api/v2.1/threats/external-ticket-id",
                {
                    "filter": {"ids": [MITRE_ID]},
                    "data": {"externalTicketId": "T20240101.0001"},
                },
            )
        ]

    async def test_note_is_posted_for_the_threat(self):
        seen = []

        def handler(request):
            seen.append((request.url.path, json.loads(request.content)))
            return httpx.Response(200, json={"data": {"affected": 1}})

        async with make_client(handler) as client:
            affected = await client.add_threat_note(MITRE_ID, "Autotask ticket T1")

        assert affected == 1
        assert seen == [
            (
                "/web/api/v2.1/threats/notes",
                {"filter": {"ids": [MITRE_ID]}, "data": {"text": "Autotask ticket T1"}},
            )
        ]

    async def test_nothing_affected_is_returned_as_zero_not_raised(self):
        response = httpx.Response(200, json={"data": {"affected": 0}})

        async with make_client(answer(response)) as client:
            affected = await client.add_threat_note(MITRE_ID, "note")

        assert affected == 0

    @pytest.mark.parametrize(
        "body", [{"data": {}}, {"data": {"affected": "1"}}, {"affected": 1}]
    )
    async def test_answer_without_an_affected_count_is_a_status_error(self, body):
        async with make_client(answer(httpx.Response(200, json=body))) as client:
            with pytest.raises(SentinelOneStatusError) as caught:
                await client.set_external_ticket_id(MITRE_ID, "T1")

        assert str(caught.value) == (
            "SentinelOne POST /web/api/v2.1/threats/external-ticket-id answered "
            "without a data.affected count."
        )

    async def test_empty_note_or_ticket_id_is_refused_before_sending(self):
        async with make_client(refuse) as client:
            with pytest.raises(ValueError, match="Note for threat 1 is empty"):
                await client.add_threat_note("1", "  ")
            with pytest.raises(ValueError, match="ticket id for threat 1 is empty"):
                await client.set_external_ticket_id("1", "")

    async def test_write_back_to_an_id_that_is_not_a_threat_id_is_refused(self):
        async with make_client(refuse) as client:
            with pytest.raises(ValueError, match="is not a SentinelOne threat id"):
                await client.add_threat_note("1 OR 1=1", "note")


class TestErrors:
    """Failures become typed errors with short, identifying messages."""

    async def test_401_says_the_token_was_refused_and_may_have_expired(self):
        error = await list_error(httpx.Response(401, json=AUTH_FAILED))

        assert type(error) is SentinelOneAuthError
        assert error.status_code == 401
        assert str(error) == (
            "SentinelOne GET /web/api/v2.1/threats failed with HTTP 401: "
            "Authentication Failed (code 4010010). The API token may have expired "
            "(console-user tokens expire after six months) or lack the permission "
            "for this call."
        )
        assert not is_transient(error)

    async def test_403_is_an_auth_error_with_the_same_advice(self):
        body = {"errors": [{"code": 4030010, "title": "Forbidden", "detail": None}]}

        async with make_client(answer(httpx.Response(403, json=body))) as client:
            with pytest.raises(SentinelOneAuthError) as caught:
                await client.set_external_ticket_id(MITRE_ID, "T1")

        assert str(caught.value).startswith(
            "SentinelOne POST /web/api/v2.1/threats/external-ticket-id failed with "
            "HTTP 403: Forbidden (code 4030010). The API token may have expired"
        )

    async def test_429_is_a_rate_limit_error_carrying_retry_after(self):
        error = await list_error(httpx.Response(429, headers={"Retry-After": "7"}))

        assert type(error) is SentinelOneRateLimitError
        assert error.retry_after == 7.0
        assert str(error) == (
            "SentinelOne GET /web/api/v2.1/threats failed with HTTP 429. "
            "Retry after 7 s."
        )
        assert is_transient(error)

    @pytest.mark.parametrize("header", ["Wed, 21 Oct 2015 07:28:00 GMT", "-3", "soon"])
    async def test_retry_after_that_is_not_seconds_is_left_out(self, header):
        error = await list_error(httpx.Response(429, headers={"Retry-After": header}))

        assert isinstance(error, SentinelOneRateLimitError)
        assert error.retry_after is None

    async def test_message_keeps_the_first_three_errors_clipped(self):
        errors = [
            {"code": 4000010, "title": "Validation Error", "detail": str(n) * 400}
            for n in range(5)
        ]

        error = await list_error(httpx.Response(400, json={"errors": errors}))

        assert type(error) is SentinelOneStatusError
        assert error.errors == [
            f"Validation Error: {str(n) * 400}"[:300] for n in range(3)
        ]
        assert "3333" not in str(error)

    async def test_validation_detail_given_as_an_object_is_kept_readable(self):
        body = {
            "errors": [
                {
                    "code": 4000010,
                    "title": "Validation Error",
                    "detail": {"limit": ["Must be between 1 and 1000."]},
                }
            ]
        }

        error = await list_error(httpx.Response(400, json=body))

        assert error.errors == [
            'Validation Error: {"limit":["Must be between 1 and 1000."]} (code 4000010)'
        ]

    async def test_body_that_is_not_json_is_not_copied_into_the_message(self):
        html = "<html><body>Bad gateway at proxy 10.0.0.7</body></html>"

        error = await list_error(httpx.Response(502, text=html))

        assert (
            str(error) == "SentinelOne GET /web/api/v2.1/threats failed with HTTP 502."
        )
        assert is_transient(error)

    async def test_redirect_is_not_followed(self):
        seen = []

        def handler(request):
            seen.append(request.url.host)
            return httpx.Response(302, headers={"Location": "https://elsewhere.test/"})

        async with make_client(handler) as client:
            with pytest.raises(SentinelOneStatusError, match="HTTP 302"):
                await raw_threats(client)

        assert seen == ["usea1-partner.sentinelone.net"]

    @pytest.mark.parametrize(
        "failure",
        [httpx.ConnectError("Connection refused"), httpx.ReadTimeout("timed out")],
        ids=["refused", "timeout"],
    )
    async def test_no_response_gives_a_transport_error_naming_the_call(self, failure):
        def handler(request):
            raise failure

        async with make_client(handler) as client:
            with pytest.raises(SentinelOneTransportError) as caught:
                await client.add_threat_note(MITRE_ID, "note")

        assert str(caught.value) == (
            f"SentinelOne POST /web/api/v2.1/threats/notes for threat {MITRE_ID} "
            f"failed without a response: {type(failure).__name__}: {failure}"
        )
        assert is_transient(caught.value)

    @pytest.mark.parametrize(
        ("status", "transient"),
        [
            (500, True),
            (502, True),
            (503, True),
            (504, True),
            (429, True),
            (400, False),
            (401, False),
            (403, False),
            (404, False),
            (405, False),
        ],
    )
    async def test_only_errors_worth_retrying_are_transient(self, status, transient):
        error = await list_error(httpx.Response(status, json={"errors": []}))

        assert is_transient(error) is transient

    def test_client_side_and_payload_errors_are_not_transient(self):
        payload_error = ThreatPayloadError("bad", location="data")

        assert not is_transient(payload_error)
        assert not is_transient(ValueError("page size"))
        assert is_transient(httpx.ConnectError("refused"))

    @pytest.mark.parametrize(
        "error",
        [
            SentinelOneStatusError(
                500, "GET", "/web/api/v2.1/threats", errors=["Internal server error"]
            ),
            SentinelOneAuthError(401, "GET", "/web/api/v2.1/threats"),
            SentinelOneRateLimitError(
                429, "POST", "/web/api/v2.1/threats/notes", retry_after=2.5
            ),
            SentinelOneStatusError(200, "GET", "/x", detail="answered oddly."),
            SentinelOneTransportError("SentinelOne GET /x failed without a response"),
            ThreatPayloadError("bad", location="data[0]", threat_id="12"),
        ],
        ids=type,
    )
    def test_errors_survive_pickling_with_message_and_attributes(self, error):
        restored = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

        assert type(restored) is type(error)
        assert str(restored) == str(error)
        assert vars(restored) == vars(error)
        assert is_transient(restored) is is_transient(error)


def unauthorized(request):
    return httpx.Response(401, json=AUTH_FAILED)


def server_error(request):
    return httpx.Response(500, json={"errors": [{"code": 5000010, "title": "x"}]})


def timeout(request):
    msg = "timed out"
    raise httpx.ReadTimeout(msg, request=request)


def refused(request):
    msg = "Connection refused"
    raise httpx.ConnectError(msg, request=request)


class TestSecrets:
    """The token never leaves the Authorization header."""

    @pytest.mark.parametrize(
        "fail", [unauthorized, server_error, timeout, refused], ids=lambda f: f.__name__
    )
    async def test_token_is_absent_from_logs_errors_and_reprs(self, fail, caplog):
        caplog.set_level(logging.DEBUG)
        client = make_client(fail)

        async with client:
            with pytest.raises(SentinelOneError) as caught:
                await raw_threats(
                    client, updated_since=datetime(2024, 1, 1, tzinfo=UTC)
                )
            logging.getLogger("tests.sentinelone").error(
                "poll failed", exc_info=caught.value
            )

        formatter = logging.Formatter()
        texts = [formatter.format(record) for record in caplog.records]
        texts += [str(caught.value), repr(caught.value), repr(client)]
        texts += traceback.format_exception(caught.value)
        texts += [pickle.dumps(caught.value).decode("latin-1")]
        assert any("SentinelOne GET /web/api/v2.1/threats" in text for text in texts)
        for text in texts:
            assert TOKEN not in text

    async def test_each_request_logs_one_info_line_without_query_values(self, caplog):
        caplog.set_level(logging.INFO, logger="s1_autotask")
        pages = {None: page([], cursor="c2"), "c2": page([])}

        def handler(request):
            return httpx.Response(200, json=pages[request.url.params.get("cursor")])

        async with make_client(handler) as client:
            await raw_threats(client, updated_since=datetime(2024, 1, 1, tzinfo=UTC))

        lines = [
            record.getMessage()
            for record in caplog.records
            if record.name.startswith("s1_autotask")
        ]
        assert len(lines) == 2
        for line in lines:
            assert line.startswith("SentinelOne GET /web/api/v2.1/threats -> HTTP 200")
            assert "2024" not in line
            assert "c2" not in line

    async def test_write_back_log_line_names_the_threat(self, caplog):
        caplog.set_level(logging.INFO, logger="s1_autotask")
        response = httpx.Response(200, json={"data": {"affected": 1}})

        async with make_client(answer(response)) as client:
            await client.set_external_ticket_id(MITRE_ID, "T20240101.0001")

        (line,) = [r.getMessage() for r in caplog.records if r.name.startswith("s1_")]
        assert line.startswith(
            "SentinelOne POST /web/api/v2.1/threats/external-ticket-id for threat "
            f"{MITRE_ID} -> HTTP 200"
        )
        assert "T20240101" not in line

    @pytest.mark.parametrize("token", ["", "   ", "two words", "t\u00f6ken"])
    def test_token_a_header_cannot_carry_is_refused_without_showing_it(self, token):
        with pytest.raises(ValueError) as caught:
            SentinelOneClient(CONSOLE, SecretStr(token))

        assert str(caught.value) == (
            "SentinelOne API token is empty or holds characters a header cannot."
        )
