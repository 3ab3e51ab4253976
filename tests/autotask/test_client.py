"""Tests for the Autotask REST client against handler functions on MockTransport."""

import asyncio
import json
import logging
import traceback

import httpx
import pytest

from s1_autotask.autotask import (
    AutotaskAuthError,
    AutotaskClient,
    AutotaskCredentials,
    AutotaskError,
    AutotaskPermissionError,
    AutotaskQueryError,
    AutotaskRateLimitError,
    AutotaskStatusError,
    AutotaskTransportError,
    AutotaskValidationError,
    AutotaskZoneError,
    is_transient,
)

pytestmark = pytest.mark.anyio

USERNAME = "api-user@example.com"
SECRET = "Zq7-autotask-secret-9931"
INTEGRATION_CODE = "INTCODE-7F3A-2B9C-UNIQUE"
ZONE_URL = "https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation"
ZONE3 = "https://webservices3.autotask.net/atservicesrest/"
ZONE14 = "https://webservices14.autotask.net/atservicesrest/"
BASE3 = ZONE3 + "v1.0/"
AUTH_HEADERS = ("ApiIntegrationCode", "UserName", "Secret")


def credentials():
    return AutotaskCredentials(
        username=USERNAME, secret=SECRET, integration_code=INTEGRATION_CODE
    )


def make_client(handler, **options):
    options.setdefault("zone_url", ZONE_URL)
    return AutotaskClient(
        credentials(), transport=httpx.MockTransport(handler), **options
    )


def is_zone_lookup(request):
    return request.url.path.casefold().endswith("/zoneinformation")


def zone_answer(request, url=ZONE3):
    """Answer a zone lookup after checking it carries no credentials."""
    assert request.method == "GET"
    assert request.url.params["user"] == USERNAME
    for name in AUTH_HEADERS:
        assert name not in request.headers
    return httpx.Response(
        200,
        json={
            "zoneName": "America East",
            "url": url,
            "webUrl": "https://ww3.autotask.net/",
            "ci": 20264,
        },
    )


def assert_authenticated(request):
    assert request.headers["ApiIntegrationCode"] == INTEGRATION_CODE
    assert request.headers["UserName"] == USERNAME
    assert request.headers["Secret"] == SECRET
    assert request.headers["Content-Type"] == "application/json"


def page(items, next_url=None):
    return {
        "items": items,
        "pageDetails": {
            "count": len(items),
            "requestCount": 500,
            "prevPageUrl": None,
            "nextPageUrl": next_url,
        },
    }


def refuse(request):
    msg = f"unexpected request {request.method} {request.url}"
    raise AssertionError(msg)


class TestZoneDiscovery:
    """The zone lookup picks the base url and heals after a zone move."""

    async def test_zone_lookup_sends_no_credentials_and_sets_the_base_url(self):
        seen = []

        def handler(request):
            seen.append(request)
            if is_zone_lookup(request):
                return zone_answer(request)
            assert_authenticated(request)
            return httpx.Response(200, json={"item": {"id": 5, "title": "T"}})

        async with make_client(handler) as client:
            item = await client.get("Tickets", 5)

        assert item == {"id": 5, "title": "T"}
        assert client.base_url == BASE3
        assert [str(request.url) for request in seen] == [
            f"{ZONE_URL}?user=api-user%40example.com",
            f"{BASE3}Tickets/5",
        ]

    @pytest.mark.parametrize(
        "configured",
        [
            "https://webservices3.autotask.net/atservicesrest/",
            "https://webservices3.autotask.net/atservicesrest",
            "https://webservices3.autotask.net/atservicesrest/v1.0",
            "https://webservices3.autotask.net/atservicesrest/v1.0/",
        ],
    )
    async def test_configured_base_url_skips_the_zone_lookup(self, configured):
        seen = []

        def handler(request):
            seen.append(str(request.url))
            return httpx.Response(200, json={"item": None})

        async with make_client(handler, base_url=configured) as client:
            await client.get("Tickets", 9)

        assert client.base_url == BASE3
        assert seen == [f"{BASE3}Tickets/9"]

    async def test_unknown_user_raises_zone_error_naming_the_endpoint(self):
        def handler(request):
            return httpx.Response(
                500, json={"errors": ["Zone information could not be determined"]}
            )

        async with make_client(handler) as client:
            with pytest.raises(AutotaskZoneError) as caught:
                await client.get("Tickets", 1)

        assert isinstance(caught.value, AutotaskAuthError)
        assert str(caught.value) == (
            f"Autotask GET {ZONE_URL} failed with HTTP 500: "
            "Zone information could not be determined"
        )
        assert not is_transient(caught.value)

    @pytest.mark.parametrize(
        "answer",
        [
            {"zoneName": "America East"},
            {"url": "ftp://webservices3.autotask.net/atservicesrest/"},
            {"url": "/atservicesrest/"},
            {"url": "http://webservices3.autotask.net/atservicesrest/"},
        ],
    )
    async def test_zone_answer_without_a_safe_url_raises_zone_error(self, answer):
        seen = []

        def handler(request):
            seen.append(request)
            return httpx.Response(200, json=answer)

        async with make_client(handler) as client:
            with pytest.raises(AutotaskZoneError, match="zone lookup"):
                await client.get("Tickets", 1)

        assert len(seen) == 1

    async def test_zone_move_is_healed_by_one_lookup_and_one_retry(self):
        zones = [ZONE3, ZONE14]
        hosts = []

        def handler(request):
            if is_zone_lookup(request):
                return zone_answer(request, url=zones.pop(0))
            hosts.append(request.url.host)
            if request.url.host == "webservices3.autotask.net":
                return httpx.Response(401)
            return httpx.Response(200, json={"itemId": 128927})

        async with make_client(handler) as client:
            item_id = await client.create("Tickets", {"title": "x"})

        assert item_id == 128927
        assert hosts == ["webservices3.autotask.net", "webservices14.autotask.net"]
        assert client.base_url == ZONE14 + "v1.0/"

    async def test_second_401_after_a_new_lookup_raises_auth_error(self):
        counts = {"zone": 0, "data": 0}

        def handler(request):
            if is_zone_lookup(request):
                counts["zone"] += 1
                return zone_answer(request)
            counts["data"] += 1
            return httpx.Response(401)

        async with make_client(handler) as client:
            with pytest.raises(AutotaskAuthError) as caught:
                await client.get("Tickets", 1)

        assert counts == {"zone": 2, "data": 2}
        assert caught.value.status_code == 401
        assert str(caught.value) == (
            "Autotask GET Tickets/1 failed with HTTP 401: Autotask refused the API "
            "user's credentials; check S1AT_AUTOTASK__USERNAME, S1AT_AUTOTASK__SECRET "
            "and S1AT_AUTOTASK__INTEGRATION_CODE."
        )

    async def test_401_on_a_configured_base_url_is_not_retried(self):
        seen = []

        def handler(request):
            seen.append(request)
            return httpx.Response(401)

        async with make_client(handler, base_url=ZONE3) as client:
            with pytest.raises(AutotaskAuthError):
                await client.get("Tickets", 1)

        assert len(seen) == 1

    async def test_concurrent_calls_share_one_zone_lookup(self):
        lookups = []

        def handler(request):
            if is_zone_lookup(request):
                lookups.append(request)
                return zone_answer(request)
            return httpx.Response(200, json={"item": None})

        async with make_client(handler) as client:
            await asyncio.gather(*(client.get("Tickets", n) for n in range(1, 5)))

        assert len(lookups) == 1


class TestRequests:
    """Every call is authenticated, identified and logged without its payload."""

    async def test_calls_carry_auth_headers_and_the_user_agent(self):
        seen = []

        def handler(request):
            seen.append(request)
            return httpx.Response(200, json={"fields": []})

        async with make_client(handler, base_url=ZONE3) as client:
            await client.entity_fields("Tickets")

        assert_authenticated(seen[0])
        assert seen[0].headers["User-Agent"].startswith("s1-autotask/")
        assert (
            seen[0].url.path == "/atservicesrest/v1.0/Tickets/entityInformation/fields"
        )

    async def test_each_request_logs_one_info_line_without_host_or_query(self, caplog):
        next_url = f"{BASE3}Companies/query/next?paging=%7B%22pageSize%22%3A500%7D"

        def handler(request):
            if is_zone_lookup(request):
                return zone_answer(request)
            if request.url.path.endswith("/query"):
                return httpx.Response(200, json=page([{"id": 1}], next_url))
            return httpx.Response(200, json=page([{"id": 2}]))

        caplog.set_level(logging.INFO, logger="s1_autotask.autotask")
        async with make_client(handler) as client:
            await client.query("Companies", [])

        lines = [
            record.getMessage()
            for record in caplog.records
            if record.name == "s1_autotask.autotask.client"
            and record.getMessage().startswith("Autotask ")
            and " -> HTTP " in record.getMessage()
        ]
        assert [line.rsplit(" in ", 1)[0] for line in lines] == [
            "Autotask GET zoneInformation -> HTTP 200",
            "Autotask POST Companies/query -> HTTP 200",
            "Autotask POST Companies/query/next -> HTTP 200",
        ]
        assert all(line.endswith(" ms") for line in lines)


class TestQuery:
    """Queries are POSTed, validated first, and read to the last page."""

    async def test_query_posts_filter_include_fields_and_max_records(self):
        bodies = []
        condition = {"op": "eq", "field": "externalID", "value": "s1:123"}

        def handler(request):
            assert request.method == "POST"
            assert request.url.path == "/atservicesrest/v1.0/Tickets/query"
            bodies.append(json.loads(request.content))
            return httpx.Response(200, json=page([{"id": 7, "status": 1}]))

        async with make_client(handler, base_url=ZONE3) as client:
            rows = await client.query(
                "Tickets", [condition], include_fields=["id", "status"], max_records=1
            )

        assert rows == [{"id": 7, "status": 1}]
        assert bodies == [
            {"filter": [condition], "IncludeFields": ["id", "status"], "MaxRecords": 1}
        ]

    async def test_empty_filter_selects_all_rows_and_omits_unset_options(self):
        bodies = []

        def handler(request):
            bodies.append(json.loads(request.content))
            return httpx.Response(200, json=page([]))

        async with make_client(handler, base_url=ZONE3) as client:
            rows = await client.query("Companies", [])

        assert rows == []
        assert bodies == [{"filter": [{"op": "exist", "field": "id"}]}]

    async def test_next_page_is_posted_with_the_same_body(self):
        next_url = (
            "https://webservices3.autotask.net/ATServicesRest/V1.0/Companies/query/"
            "next?paging=%7B%22pageSize%22%3A500%2C%22nextIds%22%3A%5B725%5D%7D"
        )
        seen = []

        def handler(request):
            seen.append((request.method, str(request.url), json.loads(request.content)))
            if request.url.path.endswith("/next"):
                return httpx.Response(200, json=page([{"id": 725}]))
            return httpx.Response(200, json=page([{"id": 1}, {"id": 2}], next_url))

        filters = [{"op": "eq", "field": "isActive", "value": True}]
        async with make_client(handler, base_url=ZONE3) as client:
            rows = await client.query("Companies", filters)

        assert [row["id"] for row in rows] == [1, 2, 725]
        assert [method for method, _, _ in seen] == ["POST", "POST"]
        assert seen[1][1] == (
            f"{BASE3}Companies/query/next"
            "?paging=%7B%22pageSize%22%3A500%2C%22nextIds%22%3A%5B725%5D%7D"
        )
        assert seen[0][2] == seen[1][2] == {"filter": filters}

    @pytest.mark.parametrize(
        "next_url",
        [
            "https://evil.example.com/atservicesrest/v1.0/Companies/query/next",
            "http://webservices3.autotask.net/atservicesrest/v1.0/Companies/query/next",
            "https://webservices3.autotask.net/other/Companies/query/next",
        ],
    )
    async def test_next_page_off_the_zone_base_is_not_followed(self, next_url):
        seen = []

        def handler(request):
            seen.append(request)
            return httpx.Response(200, json=page([{"id": 1}], next_url))

        async with make_client(handler, base_url=ZONE3) as client:
            with pytest.raises(AutotaskError, match="leaves the zone host"):
                await client.query("Companies", [])

        assert len(seen) == 1

    async def test_paging_stops_once_max_records_are_held(self):
        seen = []

        def handler(request):
            seen.append(request)
            return httpx.Response(
                200,
                json=page([{"id": 3}, {"id": 4}], f"{BASE3}Tickets/query/next?p=1"),
            )

        async with make_client(handler, base_url=ZONE3) as client:
            rows = await client.query("Tickets", [], max_records=2)

        assert rows == [{"id": 3}, {"id": 4}]
        assert len(seen) == 1

    @pytest.mark.parametrize(
        ("filters", "problem"),
        [
            ([{"op": "ne", "field": "status", "value": 5}], "unknown operator 'ne'"),
            ([{"op": "EQ", "field": "status", "value": 5}], "unknown operator 'EQ'"),
            (
                [
                    {
                        "op": "or",
                        "items": [
                            {"op": "eq", "field": "lastName", "value": "Smith"},
                            {"op": "like", "field": "lastName", "value": "J%"},
                        ],
                    }
                ],
                r"filter\.or\.items\[1\]",
            ),
            ([{"op": "and", "items": []}], "has no items"),
            ([{"op": "in", "field": "companyType", "value": 1}], "non-empty list"),
            ([{"op": "notIn", "field": "companyType", "value": []}], "non-empty list"),
            ([{"op": "eq", "value": 1}], "names no field"),
            ([{"op": "gt", "field": "id"}], "has no value"),
            (
                [
                    {"op": "eq", "field": "Tier", "udf": True, "value": "Gold"},
                    {"op": "eq", "field": "Region", "udf": True, "value": "EU"},
                ],
                "only one per query",
            ),
        ],
    )
    async def test_filter_autotask_would_misread_is_refused_before_sending(
        self, filters, problem
    ):
        async with make_client(refuse, base_url=ZONE3) as client:
            with pytest.raises(AutotaskQueryError, match=problem) as caught:
                await client.query("Contacts", filters)

        assert isinstance(caught.value, ValueError)

    async def test_every_documented_operator_is_sent(self):
        filters = [
            {"op": op, "field": "id", "value": 1}
            for op in ("eq", "noteq", "gt", "gte", "lt", "lte")
        ]
        filters += [
            {"op": op, "field": "companyName", "value": "Sirius"}
            for op in ("beginsWith", "endsWith", "contains")
        ]
        filters += [
            {"op": "exist", "field": "phone"},
            {"op": "notExist", "field": "fax"},
            {"op": "in", "field": "companyType", "value": [1, 3, 7]},
            {
                "op": "or",
                "items": [
                    {"op": "notIn", "field": "companyType", "value": [2]},
                    {"op": "and", "items": [{"op": "eq", "field": "id", "value": 0}]},
                ],
            },
        ]
        bodies = []

        def handler(request):
            bodies.append(json.loads(request.content))
            return httpx.Response(200, json=page([]))

        async with make_client(handler, base_url=ZONE3) as client:
            await client.query("Companies", filters)

        assert bodies == [{"filter": filters}]

    @pytest.mark.parametrize("max_records", [0, 501])
    async def test_page_size_outside_autotask_limits_is_refused(self, max_records):
        async with make_client(refuse, base_url=ZONE3) as client:
            with pytest.raises(AutotaskQueryError, match="between 1 and 500"):
                await client.query("Tickets", [], max_records=max_records)


class TestGet:
    """A record is fetched by id; a missing one is None, however Autotask says so."""

    async def test_get_returns_the_item(self):
        def handler(request):
            assert request.method == "GET"
            assert request.url.path == "/atservicesrest/v1.0/Companies/0"
            return httpx.Response(200, json={"item": {"id": 0, "companyName": "MSP"}})

        async with make_client(handler, base_url=ZONE3) as client:
            item = await client.get("Companies", 0)

        assert item == {"id": 0, "companyName": "MSP"}

    @pytest.mark.parametrize(
        "response",
        [httpx.Response(200, json={"item": None}), httpx.Response(404)],
        ids=["null-item", "404"],
    )
    async def test_missing_record_is_none(self, response):
        async with make_client(lambda request: response, base_url=ZONE3) as client:
            item = await client.get("Tickets", 404404)

        assert item is None


class TestWrites:
    """Writes send clean bodies to the right urls and are never repeated."""

    async def test_create_strips_none_values_and_returns_the_item_id(self):
        bodies = []

        def handler(request):
            assert request.method == "POST"
            assert request.url.path == "/atservicesrest/v1.0/Tickets"
            assert_authenticated(request)
            bodies.append(json.loads(request.content))
            return httpx.Response(200, json={"itemId": 128927})

        body = {
            "companyID": 29683616,
            "title": "[SentinelOne] Malicious file quarantined on PC-042",
            "queueID": None,
            "userDefinedFields": [{"name": "Threat", "value": None}],
            "extra": {"keep": 1, "drop": None},
        }
        async with make_client(handler, base_url=ZONE3) as client:
            item_id = await client.create("Tickets", body)

        assert item_id == 128927
        assert bodies == [
            {
                "companyID": 29683616,
                "title": "[SentinelOne] Malicious file quarantined on PC-042",
                "userDefinedFields": [{"name": "Threat"}],
                "extra": {"keep": 1},
            }
        ]

    async def test_create_rejected_with_500_is_sent_once(self):
        seen = []

        def handler(request):
            seen.append(request)
            return httpx.Response(
                500,
                json={
                    "errors": [
                        "When assigning a Resource, you must assign both a "
                        "assignedResourceID and assignedResourceRoleID."
                    ]
                },
            )

        async with make_client(handler, base_url=ZONE3) as client:
            with pytest.raises(AutotaskValidationError) as caught:
                await client.create("Tickets", {"title": "x", "assignedResourceID": 4})

        assert len(seen) == 1
        assert str(caught.value) == (
            "Autotask POST Tickets failed with HTTP 500: When assigning a Resource, "
            "you must assign both a assignedResourceID and assignedResourceRoleID."
        )
        assert not is_transient(caught.value)

    async def test_create_that_times_out_is_sent_once(self):
        seen = []

        def handler(request):
            seen.append(request)
            msg = "timed out"
            raise httpx.ReadTimeout(msg, request=request)

        async with make_client(handler, base_url=ZONE3) as client:
            with pytest.raises(AutotaskTransportError) as caught:
                await client.create("Tickets", {"title": "x"})

        assert len(seen) == 1
        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        assert str(caught.value).startswith("Autotask POST Tickets failed without")

    async def test_update_patches_the_entity_root_and_keeps_nulls(self):
        seen = []

        def handler(request):
            seen.append((request.method, request.url.path, json.loads(request.content)))
            return httpx.Response(200, json={"itemId": 128927})

        async with make_client(handler, base_url=ZONE3) as client:
            item_id = await client.update(
                "Tickets", {"id": 128927, "status": 5, "dueDateTime": None}
            )

        assert item_id == 128927
        assert seen == [
            (
                "PATCH",
                "/atservicesrest/v1.0/Tickets",
                {"id": 128927, "status": 5, "dueDateTime": None},
            )
        ]

    async def test_update_without_an_id_is_refused(self):
        async with make_client(refuse, base_url=ZONE3) as client:
            with pytest.raises(ValueError, match="needs the record id"):
                await client.update("Tickets", {"status": 5})

    async def test_ticket_note_is_posted_to_the_tickets_notes_child_url(self):
        seen = []

        def handler(request):
            seen.append((request.method, request.url.path, json.loads(request.content)))
            return httpx.Response(200, json={"itemId": 30777658})

        note = {"title": "Update", "description": "Threat resolved", "noteType": 1}
        async with make_client(handler, base_url=ZONE3) as client:
            note_id = await client.create_ticket_note(7865, note)

        assert note_id == 30777658
        assert seen == [
            (
                "POST",
                "/atservicesrest/v1.0/Tickets/7865/Notes",
                {**note, "ticketID": 7865},
            )
        ]

    async def test_entity_fields_returns_the_fields_list(self, ticket_fields):
        def handler(request):
            assert request.method == "GET"
            assert request.url.path == (
                "/atservicesrest/v1.0/Tickets/entityInformation/fields"
            )
            return httpx.Response(200, json={"fields": ticket_fields})

        async with make_client(handler, base_url=ZONE3) as client:
            fields = await client.entity_fields("Tickets")

        assert fields == ticket_fields

    @pytest.mark.parametrize("entity", ["Tickets/1/Notes", "../Tickets", ""])
    async def test_entity_name_that_would_reshape_the_url_is_refused(self, entity):
        async with make_client(refuse, base_url=ZONE3) as client:
            with pytest.raises(ValueError, match="not an Autotask entity name"):
                await client.create(entity, {"title": "x"})


class TestFindTicketByExternalId:
    """The dedup lookup queries externalID and prefers the oldest ticket."""

    async def test_lowest_id_wins_when_several_tickets_match(self):
        bodies = []

        def handler(request):
            bodies.append(json.loads(request.content))
            return httpx.Response(200, json=page([{"id": 912}, {"id": 17}, {"id": 40}]))

        async with make_client(handler, base_url=ZONE3) as client:
            ticket = await client.find_ticket_by_external_id("s1:1234567890")

        assert ticket == {"id": 17}
        assert bodies == [
            {"filter": [{"op": "eq", "field": "externalID", "value": "s1:1234567890"}]}
        ]

    async def test_no_match_is_none(self):
        async with make_client(
            lambda request: httpx.Response(200, json=page([])), base_url=ZONE3
        ) as client:
            ticket = await client.find_ticket_by_external_id("s1:1")

        assert ticket is None

    async def test_blank_external_id_is_refused(self):
        async with make_client(refuse, base_url=ZONE3) as client:
            with pytest.raises(AutotaskQueryError, match="empty"):
                await client.find_ticket_by_external_id("  ")


async def fail_create(response):
    async with make_client(lambda request: response, base_url=ZONE3) as client:
        with pytest.raises(AutotaskError) as caught:
            await client.create("Tickets", {"title": "x"})
    return caught.value


class TestErrors:
    """Failures become typed errors with short, identifying messages."""

    async def test_message_keeps_the_first_three_errors_clipped(self):
        errors = [f"{n}" * 400 for n in range(5)]

        error = await fail_create(httpx.Response(500, json={"errors": errors}))

        assert type(error) is AutotaskStatusError
        assert error.errors == ["0" * 300, "1" * 300, "2" * 300]
        assert str(error) == (
            "Autotask POST Tickets failed with HTTP 500: "
            + "; ".join(["0" * 300, "1" * 300, "2" * 300])
        )
        assert "3" not in str(error)

    async def test_asp_net_message_body_is_read(self):
        message = "The requested resource does not support http method 'POST'."

        error = await fail_create(httpx.Response(405, json={"Message": message}))

        assert error.status_code == 405
        assert error.errors == [message]

    async def test_non_json_body_is_not_copied_into_the_message(self):
        html = "<html><body>Bad gateway at proxy 10.0.0.7</body></html>"

        error = await fail_create(httpx.Response(502, text=html))

        assert str(error) == "Autotask POST Tickets failed with HTTP 502."

    async def test_429_gives_rate_limit_error_with_retry_after(self):
        error = await fail_create(httpx.Response(429, headers={"Retry-After": "7"}))

        assert isinstance(error, AutotaskRateLimitError)
        assert error.retry_after == 7.0

    async def test_thread_threshold_text_gives_rate_limit_error(self):
        text = (
            "The Autotask API thread threshold of 3 threads has been exceeded. "
            "Itgenatr005"
        )

        error = await fail_create(httpx.Response(500, json={"errors": [text]}))

        assert isinstance(error, AutotaskRateLimitError)
        assert error.retry_after is None

    async def test_permission_text_in_a_500_gives_permission_error(self):
        text = "The logged in Resource does not have the adequate permissions."

        error = await fail_create(httpx.Response(500, json={"errors": [text]}))

        assert isinstance(error, AutotaskPermissionError)
        assert isinstance(error, AutotaskAuthError)

    async def test_connection_failure_gives_transport_error(self):
        def handler(request):
            msg = "[Errno 111] Connection refused"
            raise httpx.ConnectError(msg, request=request)

        async with make_client(handler, base_url=ZONE3) as client:
            with pytest.raises(AutotaskTransportError, match="ConnectError") as caught:
                await client.get("Tickets", 1)

        assert is_transient(caught.value)

    @pytest.mark.parametrize(
        ("status", "body", "transient"),
        [
            (502, None, True),
            (503, None, True),
            (504, None, True),
            (429, None, True),
            (
                500,
                {"errors": ["The Autotask API thread threshold of 3 threads..."]},
                True,
            ),
            (
                500,
                {
                    "errors": [
                        "An unexpected error has occurred. If the problem persists, "
                        "please contact Autotask Support and reference Error ID: 1166"
                    ]
                },
                True,
            ),
            (
                500,
                {
                    "errors": [
                        "Value does not reference an existing entity for queueID."
                    ]
                },
                False,
            ),
            (
                500,
                {"errors": ["String value exceeds maximum length (field:title)."]},
                False,
            ),
            (
                500,
                {
                    "errors": [
                        "The logged in Resource does not have the adequate permissions"
                    ]
                },
                False,
            ),
            (401, None, False),
            (403, None, False),
            (400, None, False),
            (404, None, False),
        ],
    )
    async def test_only_errors_worth_retrying_are_transient(
        self, status, body, transient
    ):
        error = await fail_create(httpx.Response(status, json=body))

        assert is_transient(error) is transient

    def test_client_side_errors_are_not_transient(self):
        assert not is_transient(AutotaskQueryError("bad filter"))
        assert not is_transient(ValueError("bad id"))


def after_zone_lookup(fail):
    """Answer the zone lookup, then fail every authenticated call with ``fail``."""

    def handler(request):
        if is_zone_lookup(request):
            return zone_answer(request)
        return fail(request)

    handler.__name__ = fail.__name__
    return handler


def unauthorized(request):
    return httpx.Response(401)


def server_error(request):
    return httpx.Response(500, json={"errors": ["Object reference not set."]})


def timeout(request):
    msg = "timed out"
    raise httpx.ReadTimeout(msg, request=request)


def refused(request):
    msg = "Connection refused"
    raise httpx.ConnectError(msg, request=request)


class TestSecrets:
    """The secret and integration code never leave the request headers."""

    @pytest.mark.parametrize(
        "fail", [unauthorized, server_error, timeout, refused], ids=lambda f: f.__name__
    )
    async def test_secrets_are_absent_from_logs_errors_and_reprs(self, fail, caplog):
        caplog.set_level(logging.DEBUG)
        client = make_client(after_zone_lookup(fail))

        async with client:
            with pytest.raises(AutotaskError) as caught:
                await client.create("Tickets", {"title": "x"})
            logging.getLogger("tests.autotask").error(
                "create failed", exc_info=caught.value
            )

        formatter = logging.Formatter()
        texts = [formatter.format(record) for record in caplog.records]
        texts += [str(caught.value), repr(caught.value)]
        texts += traceback.format_exception(caught.value)
        texts += [repr(client), repr(credentials()), str(credentials())]
        assert any("Autotask POST Tickets" in text for text in texts)
        for text in texts:
            assert SECRET not in text
            assert INTEGRATION_CODE not in text


class TestRepeatsInPassing:
    """With retries on, only what cannot happen twice is sent again."""

    @staticmethod
    def flaky(first, then, seen):
        def handler(request):
            if is_zone_lookup(request):
                return zone_answer(request)
            seen.append(request.method)
            if len(seen) == 1:
                if isinstance(first, Exception):
                    raise first
                return first
            return then

        return handler

    async def test_a_query_refused_for_the_thread_limit_is_sent_again(self):
        seen = []
        busy = httpx.Response(429, json={"errors": ["too many requests"]})
        rows = httpx.Response(200, json={"items": [{"id": 1}], "pageDetails": {}})

        async with make_client(
            self.flaky(busy, rows, seen), retries=2, retry_base_seconds=0.01
        ) as client:
            found = await client.query("Tickets", [])

        assert found == [{"id": 1}]
        assert seen == ["POST", "POST"]

    async def test_a_create_whose_answer_was_lost_is_never_sent_again(self):
        seen = []
        lost = httpx.ReadTimeout("timed out")
        created = httpx.Response(200, json={"itemId": 7})

        async with make_client(
            self.flaky(lost, created, seen), retries=3, retry_base_seconds=0.01
        ) as client:
            with pytest.raises(AutotaskTransportError):
                await client.create("Tickets", {"title": "x"})

        assert seen == ["POST"]

    async def test_a_create_answered_500_is_never_sent_again(self):
        seen = []
        failed = httpx.Response(500, json={"errors": ["An unexpected error"]})
        created = httpx.Response(200, json={"itemId": 7})

        async with make_client(
            self.flaky(failed, created, seen), retries=3, retry_base_seconds=0.01
        ) as client:
            with pytest.raises(AutotaskStatusError):
                await client.create("Tickets", {"title": "x"})

        assert seen == ["POST"]

    async def test_a_create_refused_before_processing_is_sent_again(self):
        seen = []
        busy = httpx.Response(429, json={"errors": ["slow down"]})
        created = httpx.Response(200, json={"itemId": 7})

        async with make_client(
            self.flaky(busy, created, seen), retries=1, retry_base_seconds=0.01
        ) as client:
            assert await client.create("Tickets", {"title": "x"}) == 7

        assert seen == ["POST", "POST"]

    async def test_a_create_that_never_connected_is_sent_again(self):
        seen = []
        refused = httpx.ConnectError("connection refused")
        created = httpx.Response(200, json={"itemId": 7})

        async with make_client(
            self.flaky(refused, created, seen), retries=1, retry_base_seconds=0.01
        ) as client:
            assert await client.create("Tickets", {"title": "x"}) == 7

        assert seen == ["POST", "POST"]

    async def test_without_retries_nothing_is_sent_again(self):
        seen = []
        busy = httpx.Response(429, json={"errors": ["slow down"]})

        async with make_client(self.flaky(busy, busy, seen)) as client:
            with pytest.raises(AutotaskRateLimitError):
                await client.query("Tickets", [])

        assert seen == ["POST"]
