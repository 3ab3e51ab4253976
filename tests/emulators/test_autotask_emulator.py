"""The Autotask emulator over real HTTP on loopback, driven by a plain httpx client."""

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from s1_autotask.autotask.client import AutotaskClient, AutotaskCredentials
from s1_autotask.autotask.errors import AutotaskValidationError, is_transient
from s1_autotask.autotask.picklists import Picklists
from s1_autotask.emulators._autotask_seedgen import build_seed
from s1_autotask.emulators.autotask import (
    AutotaskEmulator,
    EmulatorSeedError,
    EmulatorStartError,
    RunningEmulator,
    load_seed,
    serve_in_thread,
)

pytestmark = pytest.mark.anyio

AUTH_HEADERS = {
    "UserName": "api-user@example.com",
    "Secret": "emulator-secret",
    "ApiIntegrationCode": "EMULATOR-CODE",
}
ALL_ROWS = {"filter": [{"op": "exist", "field": "id"}]}
QUEUE_MONITORING = 29683482
DATA = Path(__file__).parents[2] / "s1_autotask/emulators/data"
SAMPLE_FIELDS = DATA / "ticket-fields.json"
NOTE_FIELDS = DATA / "ticket-note-fields.json"


def client_for(
    server: RunningEmulator, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """A plain httpx client rooted at the emulator's `v1.0/`, with its credentials."""
    return httpx.AsyncClient(
        base_url=f"{server.url}/atservicesrest/v1.0/",
        headers=AUTH_HEADERS if headers is None else headers,
        timeout=10.0,
    )


def company_id(server: RunningEmulator, name: str) -> int:
    """The id of the seeded company called `name`."""
    records = server.emulator.records("Companies")
    return next(c["id"] for c in records if c["companyName"] == name)


def ticket_body(**changes: Any) -> dict[str, Any]:
    """A ticket create body that the emulator accepts, with `changes` applied."""
    body = {
        "companyID": 0,
        "title": "[SentinelOne] Malicious file quarantined on DESKTOP-EXAMPLE1",
        "status": 1,
        "priority": 4,
        "queueID": QUEUE_MONITORING,
        "externalID": "s1:1234567890123456789",
        "issueType": 10,
        "subIssueType": 136,
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


async def query_all(client: httpx.AsyncClient, entity: str, body: dict) -> list[dict]:
    """Every item of a POST query, following nextPageUrl with POST and the same body."""
    response = await client.post(f"{entity}/query", json=body)
    response.raise_for_status()
    page = response.json()
    items = list(page["items"])
    while page["pageDetails"]["nextPageUrl"]:
        response = await client.post(page["pageDetails"]["nextPageUrl"], json=body)
        response.raise_for_status()
        page = response.json()
        items.extend(page["items"])
    return items


class TestZoneInformation:
    """Zone discovery without credentials."""

    async def test_zone_lookup_returns_own_base_url_for_known_user(self, served):
        """A known user gets the emulator's own API root back."""
        async with httpx.AsyncClient(base_url=served.url) as client:
            response = await client.get(
                "/atservicesrest/v1.0/zoneInformation",
                params={"user": "API-User@example.com"},
            )

        assert response.status_code == 200
        assert response.json() == {
            "zoneName": "Emulator",
            "url": f"{served.url}/atservicesrest/",
            "webUrl": f"{served.url}/",
            "ci": 0,
        }

    async def test_zone_lookup_fails_with_500_for_unknown_user(self, served):
        """An unknown user gets Autotask's 500 zone error."""
        async with httpx.AsyncClient(base_url=served.url) as client:
            response = await client.get(
                "/atservicesrest/v1.0/zoneInformation",
                params={"user": "nobody@example.com"},
            )

        assert response.status_code == 500
        assert response.json() == {
            "errors": ["Zone information could not be determined"]
        }

    async def test_version_information_lists_api_version(self, served):
        """versioninformation answers without credentials."""
        async with httpx.AsyncClient(base_url=served.url) as client:
            response = await client.get("/ATServicesRest/versioninformation")

        assert response.json() == {"apiVersions": ["1.0"]}


class TestAuthentication:
    """Header authentication fails the way Autotask does."""

    @pytest.mark.parametrize(
        "headers",
        [
            {"UserName": "api-user@example.com", "ApiIntegrationCode": "EMULATOR-CODE"},
            {**AUTH_HEADERS, "Secret": "wrong-secret"},
            {},
        ],
        ids=["no-secret", "wrong-secret", "no-headers"],
    )
    async def test_bad_secret_is_401_without_body(self, served, headers):
        """A missing or wrong secret is a bare 401."""
        async with client_for(served, headers) as client:
            response = await client.get("Companies/0")

        assert response.status_code == 401
        assert response.content == b""

    async def test_unknown_username_is_500_zone_error(self, served):
        """An unknown API user is a 500, not a 401."""
        headers = {**AUTH_HEADERS, "UserName": "someone@example.com"}
        async with client_for(served, headers) as client:
            response = await client.get("Companies/0")

        assert response.status_code == 500
        assert response.json() == {
            "errors": ["Zone information could not be determined"]
        }

    async def test_wrong_integration_code_is_500_with_errors(self, served):
        """A wrong integration code is a 500 with an errors list."""
        headers = {**AUTH_HEADERS, "ApiIntegrationCode": "OTHER-CODE"}
        async with client_for(served, headers) as client:
            response = await client.get("Companies/0")

        assert response.status_code == 500
        assert response.json()["errors"] == ["IntegrationCode is invalid."]


class TestRouting:
    """Paths ignore case; unknown routes and methods answer like ASP.NET."""

    async def test_routes_match_in_any_case(self, served):
        """Swagger, Postman and lower-case spellings reach the same entity."""
        async with httpx.AsyncClient(
            base_url=served.url, headers=AUTH_HEADERS
        ) as client:
            swagger = await client.get("/ATServicesRest/V1.0/Companies/0")
            lower = await client.get("/atservicesrest/v1.0/companies/0")
            shouting = await client.get("/ATSERVICESREST/V1.0/COMPANIES/0")

        assert swagger.status_code == lower.status_code == shouting.status_code == 200
        assert swagger.json() == lower.json() == shouting.json()
        assert swagger.json()["item"]["companyName"] == "Emulated MSP (internal)"

    async def test_unknown_entity_is_404_with_message(self, served):
        """An entity the emulator does not know is a framework 404."""
        async with client_for(served) as client:
            response = await client.get("Widgets/1")

        assert response.status_code == 404
        assert "No HTTP resource was found" in response.json()["Message"]


class TestQuery:
    """Queries: filters, IncludeFields, MaxRecords, counting and paging."""

    async def test_paging_over_all_companies_needs_two_pages(self, served):
        """620 companies come back in two pages, every id once, in id order."""
        async with client_for(served) as client:
            first = (await client.post("Companies/query", json=ALL_ROWS)).json()
            items = await query_all(client, "Companies", ALL_ROWS)

        ids = [item["id"] for item in items]
        assert first["pageDetails"]["count"] == 500
        assert first["pageDetails"]["requestCount"] == 500
        assert first["pageDetails"]["prevPageUrl"] is None
        assert first["pageDetails"]["nextPageUrl"].startswith(
            f"{served.url}/atservicesrest/v1.0/Companies/query/next?paging="
        )
        assert len(ids) == 620
        assert len(set(ids)) == 620
        assert ids == sorted(ids)
        assert ids[0] == 0

    async def test_second_page_links_back_to_the_first(self, served):
        """The last page has a prevPageUrl and no nextPageUrl."""
        async with client_for(served) as client:
            first = (await client.post("Companies/query", json=ALL_ROWS)).json()
            next_url = first["pageDetails"]["nextPageUrl"]
            second = (await client.post(next_url, json=ALL_ROWS)).json()
            back_url = second["pageDetails"]["prevPageUrl"]
            again = (await client.post(back_url, json=ALL_ROWS)).json()

        assert second["pageDetails"]["count"] == 120
        assert second["pageDetails"]["nextPageUrl"] is None
        assert again["items"] == first["items"]

    async def test_get_on_next_page_of_post_query_is_405(self, served):
        """Following a POST query's nextPageUrl with GET fails like the real API."""
        async with client_for(served) as client:
            first = (await client.post("Companies/query", json=ALL_ROWS)).json()
            response = await client.get(first["pageDetails"]["nextPageUrl"])

        assert response.status_code == 405
        assert response.json() == {
            "Message": "The requested resource does not support http method 'GET'."
        }

    async def test_get_query_pages_with_get_and_carries_search(self, served):
        """A GET query's nextPageUrl repeats the search and works with GET."""
        search = json.dumps(ALL_ROWS)
        async with client_for(served) as client:
            first = (
                await client.get("Companies/query", params={"search": search})
            ).json()
            next_url = first["pageDetails"]["nextPageUrl"]
            second = await client.get(next_url)

        assert "search=" in next_url
        assert second.status_code == 200
        assert second.json()["pageDetails"]["count"] == 120

    async def test_max_records_sets_the_page_size(self, served):
        """MaxRecords caps a page and the rest follows through nextPageUrl."""
        body = {**ALL_ROWS, "MaxRecords": 200}
        async with client_for(served) as client:
            first = (await client.post("Companies/query", json=body)).json()
            items = await query_all(client, "Companies", body)

        assert first["pageDetails"]["count"] == 200
        assert first["pageDetails"]["requestCount"] == 200
        assert len({item["id"] for item in items}) == 620

    @pytest.mark.parametrize("max_records", [0, 501])
    async def test_max_records_outside_1_to_500_is_refused(self, served, max_records):
        """MaxRecords must be within 1 to 500."""
        async with client_for(served) as client:
            response = await client.post(
                "Companies/query", json={**ALL_ROWS, "MaxRecords": max_records}
            )

        assert response.status_code == 500
        assert "MaxRecords" in response.json()["errors"][0]

    async def test_eq_on_string_ignores_case(self, served):
        """String equality is case-insensitive, as in Autotask."""
        body = {
            "filter": [{"op": "eq", "field": "companyName", "value": "example site"}]
        }
        async with client_for(served) as client:
            items = await query_all(client, "Companies", body)

        assert [item["companyName"] for item in items] == ["Example Site"]

    async def test_contains_ignores_case(self, served):
        """contains finds the sample site and its near-miss names."""
        body = {
            "filter": [{"op": "contains", "field": "CompanyName", "value": "EXAMPLE"}]
        }
        async with client_for(served) as client:
            items = await query_all(client, "Companies", body)

        names = sorted(item["companyName"] for item in items)
        assert names == [
            "EXAMPLE-LAB",
            "Example Site",
            "Example Site - Archived",
            "Example Site Ltd",
        ]

    async def test_and_of_top_level_items_excludes_inactive(self, served):
        """Top-level filter items are ANDed."""
        body = {
            "filter": [
                {"op": "beginsWith", "field": "companyName", "value": "example site"},
                {"op": "eq", "field": "isActive", "value": True},
            ]
        }
        async with client_for(served) as client:
            items = await query_all(client, "Companies", body)

        assert sorted(i["companyName"] for i in items) == [
            "Example Site",
            "Example Site Ltd",
        ]

    async def test_in_matches_listed_ids(self, served):
        """in returns the rows whose value is in the list."""
        example = company_id(served, "Example Site")
        body = {"filter": [{"op": "in", "field": "id", "value": [0, example, 12345]}]}
        async with client_for(served) as client:
            items = await query_all(client, "Companies", body)

        assert [item["id"] for item in items] == [0, example]

    async def test_or_group_matches_either_condition(self, served):
        """An or group with items matches rows meeting any of them."""
        body = {
            "filter": [
                {
                    "op": "or",
                    "items": [
                        {"op": "eq", "field": "companyName", "value": "EXAMPLE-LAB"},
                        {"op": "endsWith", "field": "companyName", "value": "site ltd"},
                    ],
                }
            ]
        }
        async with client_for(served) as client:
            items = await query_all(client, "Companies", body)

        assert sorted(i["companyName"] for i in items) == [
            "EXAMPLE-LAB",
            "Example Site Ltd",
        ]

    async def test_exist_and_not_exist_split_rows_on_null(self, served):
        """exist and notExist partition the rows on a nullable field."""
        exist = {"filter": [{"op": "exist", "field": "defaultServiceDeskRoleID"}]}
        missing = {"filter": [{"op": "notExist", "field": "defaultServiceDeskRoleID"}]}
        async with client_for(served) as client:
            with_role = await query_all(client, "Resources", exist)
            without_role = await query_all(client, "Resources", missing)

        assert with_role
        assert without_role
        assert all(r["defaultServiceDeskRoleID"] is not None for r in with_role)
        assert len(with_role) + len(without_role) == 15

    async def test_unknown_field_is_500_naming_singular_entity(self, served):
        """An unknown filter field fails loudly with Autotask's message."""
        body = {"filter": [{"op": "eq", "field": "companyNme", "value": "x"}]}
        async with client_for(served) as client:
            response = await client.post("Companies/query", json=body)

        assert response.status_code == 500
        assert response.json() == {
            "errors": ["Unable to find companyNme in the Company Entity"]
        }

    async def test_unknown_operator_is_ignored(self, served):
        """An unknown operator drops the condition and returns unfiltered rows."""
        body = {"filter": [{"op": "ne", "field": "isActive", "value": True}]}
        async with client_for(served) as client:
            response = await client.post("Companies/query/count", json=body)

        assert response.json() == {"queryCount": 620}

    async def test_strict_mode_refuses_unknown_operator(self, bundled_seed):
        """With strict_operators the emulator names the operator instead."""
        body = {"filter": [{"op": "ne", "field": "isActive", "value": True}]}
        emulator = AutotaskEmulator(bundled_seed, strict_operators=True)
        with serve_in_thread(emulator) as server:
            async with client_for(server) as client:
                response = await client.post("Companies/query", json=body)

        assert response.status_code == 500
        assert "'ne'" in response.json()["errors"][0]

    async def test_get_query_without_search_is_refused(self, served):
        """A GET query carries its filter in search; without one it fails."""
        async with client_for(served) as client:
            response = await client.get("Companies/query")

        assert response.status_code == 500
        assert "search" in response.json()["errors"][0]

    async def test_include_fields_returns_only_those_plus_id_and_udfs(self, served):
        """IncludeFields trims items to the fields asked for, id and UDFs."""
        body = {
            "Filter": [{"op": "eq", "field": "id", "value": 0}],
            "IncludeFields": ["CompanyName", "city"],
        }
        async with client_for(served) as client:
            response = await client.post("Companies/query", json=body)

        assert response.json()["items"] == [
            {
                "id": 0,
                "companyName": "Emulated MSP (internal)",
                "city": "Springfield",
                "userDefinedFields": [],
            }
        ]

    async def test_count_counts_matching_rows(self, served):
        """query/count answers queryCount."""
        body = {"filter": [{"op": "eq", "field": "isActive", "value": False}]}
        inactive = [
            c for c in served.emulator.records("Companies") if not c["isActive"]
        ]
        async with client_for(served) as client:
            response = await client.post("Companies/query/count", json=body)

        assert response.json() == {"queryCount": len(inactive)}

    async def test_boolean_filter_value_must_be_boolean(self, served):
        """Booleans in filters must be true or false."""
        body = {"filter": [{"op": "eq", "field": "isActive", "value": "yes"}]}
        async with client_for(served) as client:
            response = await client.post("Companies/query", json=body)

        assert response.status_code == 500
        assert "isActive" in response.json()["errors"][0]

    async def test_datetime_filters_read_naive_times_as_utc(self, served):
        """Datetime comparisons parse both sides; a naive filter time is UTC."""
        body = {"filter": [{"op": "lt", "field": "createDate", "value": "2016-04-01"}]}
        async with client_for(served) as client:
            items = await query_all(client, "Companies", body)

        assert [item["createDate"] for item in items] == [
            "2016-03-30T13:10:35.563Z",
            "2016-03-30T13:10:35.563Z",
        ]

    async def test_one_udf_condition_filters_on_user_defined_fields(self, served):
        """A udf condition matches the named user-defined field."""
        udfs = [{"name": "S1 Threat", "value": "1234"}]
        body = {
            "filter": [{"op": "eq", "field": "S1 Threat", "udf": True, "value": "1234"}]
        }
        async with client_for(served) as client:
            created = await client.post(
                "Tickets", json=ticket_body(userDefinedFields=udfs)
            )
            await client.post("Tickets", json=ticket_body())
            items = await query_all(client, "Tickets", body)

        assert [item["id"] for item in items] == [created.json()["itemId"]]

    async def test_second_udf_condition_is_refused(self, served):
        """Autotask allows one user-defined field per query."""
        condition = {"op": "eq", "field": "S1 Threat", "udf": True, "value": "1"}
        body = {"filter": [condition, condition]}
        async with client_for(served) as client:
            response = await client.post("Tickets/query", json=body)

        assert response.status_code == 500
        assert "one user-defined field" in response.json()["errors"][0]


class TestGetById:
    """GET {Entity}/{id}."""

    async def test_existing_id_returns_item(self, served):
        """A stored id comes back wrapped in item."""
        async with client_for(served) as client:
            response = await client.get("Resources/4")

        assert response.status_code == 200
        assert response.json()["item"]["userName"] == "administrator"

    async def test_missing_id_returns_null_item(self, served):
        """A missing id is 200 with a null item, not 404."""
        async with client_for(served) as client:
            response = await client.get("Companies/999999999")

        assert response.status_code == 200
        assert response.json() == {"item": None}


class TestEntityInformation:
    """Field metadata and entity information."""

    async def test_ticket_fields_are_the_bundled_sample(self, served):
        """Tickets/entityInformation/fields serves the bundled field list."""
        expected = json.loads(SAMPLE_FIELDS.read_text(encoding="utf-8"))
        async with client_for(served) as client:
            response = await client.get("tickets/entityinformation/fields")

        assert response.json() == {"fields": expected["fields"]}

    async def test_user_defined_fields_are_empty(self, served):
        """The emulated tenant has no ticket UDFs."""
        async with client_for(served) as client:
            response = await client.get("Tickets/entityInformation/userDefinedFields")

        assert response.json() == {"fields": []}

    async def test_entity_information_says_tickets_can_be_created(self, served):
        """entityInformation describes the entity's abilities."""
        async with client_for(served) as client:
            response = await client.get("Tickets/entityInformation")

        info = response.json()["info"]
        assert info["canCreate"] is True
        assert info["canDelete"] is False

    async def test_company_fields_are_generated_from_the_schema(self, served):
        """Other entities describe their fields too, with picklists where known."""
        async with client_for(served) as client:
            response = await client.get("Companies/entityInformation/fields")

        fields = {f["name"]: f for f in response.json()["fields"]}
        assert fields["companyName"]["isRequired"] is True
        assert fields["companyType"]["isPickList"] is True


class TestTicketCreate:
    """POST Tickets: the happy path and Autotask's validation errors."""

    async def test_created_ticket_is_readable_and_queryable(self, served):
        """A valid ticket gets an id, a ticket number and is found by externalID."""
        async with client_for(served) as client:
            created = await client.post("Tickets", json=ticket_body())
            ticket_id = created.json()["itemId"]
            fetched = (await client.get(f"Tickets/{ticket_id}")).json()["item"]
            found = await client.post(
                "Tickets/query",
                json={
                    "filter": [
                        {
                            "op": "eq",
                            "field": "externalid",
                            "value": "S1:1234567890123456789",
                        }
                    ],
                    "IncludeFields": ["id", "status"],
                    "MaxRecords": 1,
                },
            )

        assert created.status_code == 200
        assert fetched["title"].startswith("[SentinelOne]")
        assert re.fullmatch(r"T\d{8}\.0001", fetched["ticketNumber"])
        assert fetched["createDate"].endswith("Z")
        assert fetched["creatorResourceID"] == 29682884
        assert found.json()["items"] == [
            {"id": ticket_id, "status": 1, "userDefinedFields": []}
        ]

    async def test_ticket_numbers_count_up_within_a_day(self, served):
        """Each ticket of the day gets the next sequence number."""
        async with client_for(served) as client:
            for _ in range(2):
                await client.post("Tickets", json=ticket_body())

        numbers = [t["ticketNumber"] for t in served.emulator.tickets]
        assert [n[-5:] for n in numbers] == [".0001", ".0002"]
        assert numbers[0][:-5] == numbers[1][:-5]

    async def test_property_names_and_numeric_strings_are_accepted(self, served):
        """Property names match in any case and "4" binds to an integer field."""
        body = ticket_body(queueID=None, QueueID=QUEUE_MONITORING, priority="4")
        async with client_for(served) as client:
            response = await client.post("Tickets", json=body)

        assert response.status_code == 200
        assert served.emulator.tickets[0]["priority"] == 4
        assert served.emulator.tickets[0]["queueID"] == QUEUE_MONITORING

    async def test_unknown_properties_are_ignored(self, served):
        """Properties the Ticket entity lacks are dropped, as the JSON binder does."""
        async with client_for(served) as client:
            response = await client.post(
                "Tickets", json=ticket_body(threatColour="red")
            )

        assert response.status_code == 200
        assert "threatColour" not in served.emulator.tickets[0]

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            (
                {"title": None},
                "Value does not exist for the required field title.",
            ),
            (
                {"companyID": None},
                "Value does not exist for the required field companyID.",
            ),
            (
                {"status": None},
                "Value does not reference an existing entity for status . ",
            ),
            (
                {"title": "x" * 256},
                "String value exceeds maximum length (field:title).",
            ),
            (
                {"description": "x" * 8001},
                "String value exceeds maximum length (field:description).",
            ),
            (
                {"externalID": "s1:" + "9" * 48},
                "String value exceeds maximum length (field:externalID).",
            ),
            (
                {"priority": 99},
                "Value does not reference an existing entity for priority . ",
            ),
            (
                {"queueID": 29683491},
                "Value does not reference an existing entity for queueID . ",
            ),
            (
                {"ticketCategory": 5},
                "Value does not reference an existing entity for ticketCategory . ",
            ),
            (
                {"subIssueType": 2},
                "Value does not reference an existing entity for subIssueType . ",
            ),
            (
                {"subIssueType": 138},
                "Value does not reference an existing entity for subIssueType . ",
            ),
            (
                {"companyID": 424242},
                "Reference value on field: companyID of type: Company does not exist "
                "or is invalid.",
            ),
            (
                {"configurationItemID": 999999},
                "Reference value on field: configurationItemID of type: "
                "ConfigurationItem does not exist or is invalid.",
            ),
            (
                {"assignedResourceID": 29682886},
                "When assigning a Resource, you must assign both a assignedResourceID "
                "and assignedResourceRoleID.",
            ),
            (
                {"queueID": None},
                "Data violation: AssignedResourceID, AssignedResourceRoleID, and "
                "QueueID cannot all be empty. Supply a QueueID or both a "
                "AssignedResourceID and AssignedResourceRoleID..",
            ),
            (
                {"assignedResourceID": 29682886, "assignedResourceRoleID": 29683403},
                "Role does not exist or is invalid",
            ),
            (
                {"assignedResourceID": 29682894, "assignedResourceRoleID": 29683405},
                "Reference value on field: assignedResourceID of type: Resource does "
                "not exist or is invalid.",
            ),
            (
                {"status": "new"},
                "Error converting value \"new\" to type 'System.Int32'. Path 'status'.",
            ),
            (
                {"dueDateTime": "tomorrow"},
                "Could not convert string to DateTime: tomorrow. Path 'dueDateTime'.",
            ),
        ],
        ids=[
            "missing-title",
            "missing-company",
            "missing-status",
            "long-title",
            "long-description",
            "long-external-id",
            "unknown-priority",
            "inactive-queue",
            "inactive-category",
            "sub-issue-of-other-issue-type",
            "inactive-sub-issue",
            "unknown-company",
            "unknown-configuration-item",
            "resource-without-role",
            "no-queue-no-resource",
            "role-the-resource-lacks",
            "inactive-resource",
            "text-in-integer-field",
            "bad-date",
        ],
    )
    async def test_invalid_ticket_is_refused_with_autotask_message(
        self, served, changes, message
    ):
        """Each broken rule answers 500 with Autotask's message and stores nothing."""
        async with client_for(served) as client:
            response = await client.post("Tickets", json=ticket_body(**changes))

        assert response.status_code == 500
        assert response.json() == {"errors": [message]}
        assert served.emulator.tickets == []

    async def test_inactive_company_is_refused(self, served):
        """A ticket cannot go to an inactive company."""
        archived = company_id(served, "Example Site - Archived")
        async with client_for(served) as client:
            response = await client.post(
                "Tickets", json=ticket_body(companyID=archived)
            )

        assert response.status_code == 500
        assert response.json()["errors"] == [
            "Reference value on field: companyID of type: Company does not exist or "
            "is invalid."
        ]

    async def test_location_of_another_company_is_refused(self, served):
        """companyLocationID must belong to the ticket's company."""
        locations = served.emulator.records("CompanyLocations")
        foreign = next(loc["id"] for loc in locations if loc["companyID"] != 0)
        async with client_for(served) as client:
            response = await client.post(
                "Tickets", json=ticket_body(companyLocationID=foreign)
            )

        assert response.json()["errors"] == [
            f"The companyLocationID[{foreign}] cannot be associated with the Ticket. "
            "The Ticket and CompanyLocation must have the same companyID."
        ]

    async def test_resource_with_its_role_can_be_assigned_without_queue(self, served):
        """A resource with one of its service desk roles replaces the queue."""
        body = ticket_body(
            queueID=None, assignedResourceID=29682887, assignedResourceRoleID=29683403
        )
        async with client_for(served) as client:
            response = await client.post("Tickets", json=body)

        assert response.status_code == 200
        assert served.emulator.tickets[0]["assignedResourceID"] == 29682887


class TestTicketUpdate:
    """PATCH and PUT Tickets with the id in the body."""

    async def test_patch_changes_only_given_fields(self, served):
        """PATCH updates the given fields and keeps the rest."""
        async with client_for(served) as client:
            ticket_id = (await client.post("Tickets", json=ticket_body())).json()[
                "itemId"
            ]
            response = await client.patch(
                "Tickets", json={"id": ticket_id, "status": 5}
            )

        ticket = served.emulator.tickets[0]
        assert response.json() == {"itemId": ticket_id}
        assert ticket["status"] == 5
        assert ticket["queueID"] == QUEUE_MONITORING

    async def test_patch_revalidates_and_says_it_was_an_update(self, served):
        """An invalid PATCH names the update in Autotask's suffix."""
        async with client_for(served) as client:
            ticket_id = (await client.post("Tickets", json=ticket_body())).json()[
                "itemId"
            ]
            response = await client.patch(
                "Tickets", json={"id": ticket_id, "description": "x" * 8001}
            )

        assert response.json()["errors"] == [
            "String value exceeds maximum length (field:description). | Error "
            "updating entity for record number [1]."
        ]

    async def test_patch_of_missing_ticket_is_refused(self, served):
        """PATCH of an unknown id fails."""
        async with client_for(served) as client:
            response = await client.patch("Tickets", json={"id": 1, "status": 5})

        assert response.status_code == 500
        assert response.json()["errors"] == ["No matching records found."]

    async def test_put_clears_omitted_writable_fields(self, served):
        """PUT replaces every writable field; omitted ones become null."""
        async with client_for(served) as client:
            ticket_id = (await client.post("Tickets", json=ticket_body())).json()[
                "itemId"
            ]
            body = ticket_body(id=ticket_id, externalID=None, subIssueType=None)
            response = await client.put("Tickets", json=body)

        ticket = served.emulator.tickets[0]
        assert response.status_code == 200
        assert ticket["externalID"] is None
        assert ticket["ticketNumber"].endswith(".0001")

    async def test_patched_status_reads_back_over_http(self, served):
        """A status change is what GET and a query return afterwards."""
        async with client_for(served) as client:
            ticket_id = (await client.post("Tickets", json=ticket_body())).json()[
                "itemId"
            ]
            created = (await client.get(f"Tickets/{ticket_id}")).json()["item"]
            response = await client.patch(
                "Tickets", json={"Id": ticket_id, "Status": "8"}
            )
            fetched = (await client.get(f"Tickets/{ticket_id}")).json()["item"]
            found = await client.post(
                "Tickets/query",
                json={"filter": [{"op": "eq", "field": "status", "value": 8}]},
            )

        assert response.json() == {"itemId": ticket_id}
        assert fetched["status"] == 8
        assert fetched["lastTrackedModificationDateTime"] is not None
        assert fetched["createDate"] == created["createDate"]
        assert fetched["ticketNumber"] == created["ticketNumber"]
        assert [item["id"] for item in found.json()["items"]] == [ticket_id]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"status": 99}, "status"),
            ({"status": None}, "status"),
            ({"priority": 7}, "priority"),
            ({"queueID": 29683491}, "queueID"),
            ({"subIssueType": 138}, "subIssueType"),
            ({"issueType": 2}, "subIssueType"),
            ({"ticketCategory": 5}, "ticketCategory"),
        ],
        ids=[
            "unknown-status",
            "status-cleared",
            "unknown-priority",
            "inactive-queue",
            "inactive-sub-issue",
            "issue-type-orphaning-sub-issue",
            "inactive-category",
        ],
    )
    async def test_patch_with_a_bad_picklist_value_is_refused_and_changes_nothing(
        self, served, changes, field
    ):
        """PATCH values are checked against the picklists, isActive included."""
        async with client_for(served) as client:
            ticket_id = (await client.post("Tickets", json=ticket_body())).json()[
                "itemId"
            ]
            response = await client.patch("Tickets", json={"id": ticket_id, **changes})

        assert response.status_code == 500
        assert response.json() == {
            "errors": [
                f"Value does not reference an existing entity for {field} . "
                " | Error updating entity for record number [1]."
            ]
        }
        assert served.emulator.tickets[0]["status"] == 1
        assert served.emulator.tickets[0]["subIssueType"] == 136

    async def test_patch_to_an_inactive_company_is_refused(self, served):
        """References are checked on update as on create."""
        archived = company_id(served, "Example Site - Archived")
        async with client_for(served) as client:
            ticket_id = (await client.post("Tickets", json=ticket_body())).json()[
                "itemId"
            ]
            response = await client.patch(
                "Tickets", json={"id": ticket_id, "companyID": archived}
            )

        assert response.json()["errors"] == [
            "Reference value on field: companyID of type: Company does not exist or "
            "is invalid. | Error updating entity for record number [1]."
        ]

    async def test_patch_without_an_id_is_refused(self, served):
        """The id travels in the body; without it nothing can be updated."""
        async with client_for(served) as client:
            response = await client.patch("Tickets", json={"status": 5})

        assert response.status_code == 500
        assert response.json() == {"errors": ["An id is required to update a Ticket."]}


class TestTicketNotes:
    """Notes are created under Tickets/{id}/Notes and read through TicketNotes."""

    async def test_note_created_under_ticket_is_queryable(self, served):
        """A note posted to the child URL shows up in TicketNotes/query."""
        note = {
            "Title": "SentinelOne update",
            "Description": "Threat marked as resolved.",
            "NoteType": 1,
            "Publish": 1,
        }
        async with client_for(served) as client:
            ticket_id = (await client.post("Tickets", json=ticket_body())).json()[
                "itemId"
            ]
            created = await client.post(f"Tickets/{ticket_id}/Notes", json=note)
            found = await client.post(
                "TicketNotes/query",
                json={
                    "filter": [{"op": "eq", "field": "ticketID", "value": ticket_id}]
                },
            )

        assert created.status_code == 200
        items = found.json()["items"]
        assert [item["id"] for item in items] == [created.json()["itemId"]]
        assert items[0]["description"] == "Threat marked as resolved."

    async def test_post_to_ticket_notes_root_is_404(self, served):
        """POST /TicketNotes does not exist in Autotask."""
        note = {"ticketID": 1, "description": "x", "noteType": 1, "publish": 1}
        async with client_for(served) as client:
            response = await client.post("TicketNotes", json=note)

        assert response.status_code == 404

    async def test_note_on_unknown_ticket_is_refused(self, served):
        """A note needs an existing ticket."""
        note = {"description": "x", "noteType": 1, "publish": 1}
        async with client_for(served) as client:
            response = await client.post("Tickets/777/Notes", json=note)

        assert response.status_code == 500
        assert "ticketID" in response.json()["errors"][0]

    @pytest.mark.parametrize(
        ("note", "message"),
        [
            (
                {"noteType": 1, "publish": 1},
                "Value does not exist for the required field description.",
            ),
            (
                {"description": "x", "noteType": 99, "publish": 1},
                "Value does not reference an existing entity for noteType . ",
            ),
            (
                {"description": "x", "noteType": 1},
                "Value does not reference an existing entity for publish . ",
            ),
            (
                {"title": "t" * 251, "description": "x", "noteType": 1, "publish": 1},
                "String value exceeds maximum length (field:title).",
            ),
            (
                {"description": "x", "noteType": 1, "publish": 3},
                "Value does not reference an existing entity for publish . ",
            ),
            (
                {"description": "x", "publish": 1},
                "Value does not reference an existing entity for noteType . ",
            ),
            (
                {"description": "x" * 32001, "noteType": 1, "publish": 1},
                "String value exceeds maximum length (field:description).",
            ),
            (
                {"description": "x", "noteType": "task", "publish": 1},
                "Error converting value \"task\" to type 'System.Int32'. Path "
                "'noteType'.",
            ),
        ],
        ids=[
            "missing-description",
            "inactive-note-type",
            "missing-publish",
            "long-title",
            "unknown-publish",
            "missing-note-type",
            "long-description",
            "text-note-type",
        ],
    )
    async def test_invalid_note_is_refused(self, served, note, message):
        """Notes are validated against the note field metadata."""
        async with client_for(served) as client:
            ticket_id = (await client.post("Tickets", json=ticket_body())).json()[
                "itemId"
            ]
            response = await client.post(f"Tickets/{ticket_id}/Notes", json=note)

        assert response.json() == {"errors": [message]}
        assert served.emulator.ticket_notes == []

    async def test_notes_of_a_ticket_are_listed_under_it(self, served):
        """GET Tickets/{id}/Notes lists that ticket's notes only."""
        note = {"description": "first", "noteType": 1, "publish": 1}
        async with client_for(served) as client:
            first = (await client.post("Tickets", json=ticket_body())).json()["itemId"]
            other = (await client.post("Tickets", json=ticket_body())).json()["itemId"]
            await client.post(f"Tickets/{first}/Notes", json=note)
            await client.post(f"Tickets/{other}/Notes", json=note)
            listed = await client.get(f"Tickets/{first}/Notes")

        assert [item["ticketID"] for item in listed.json()["items"]] == [first]

    async def test_note_reads_back_by_id_under_its_own_ticket_only(self, served):
        """GET Tickets/{id}/Notes/{noteId} finds the note; another ticket's is null."""
        note = {"TicketID": 0, "Description": "Quarantined.", "NoteType": 3}
        async with client_for(served) as client:
            first = (await client.post("Tickets", json=ticket_body())).json()["itemId"]
            other = (await client.post("Tickets", json=ticket_body())).json()["itemId"]
            note_id = (
                await client.post(f"Tickets/{first}/Notes", json=note | {"Publish": 2})
            ).json()["itemId"]
            own = await client.get(f"Tickets/{first}/Notes/{note_id}")
            foreign = await client.get(f"Tickets/{other}/Notes/{note_id}")
            root = await client.get(f"TicketNotes/{note_id}")

        item = own.json()["item"]
        assert (item["ticketID"], item["noteType"], item["publish"]) == (first, 3, 2)
        assert item["description"] == "Quarantined."
        assert item["createDateTime"].endswith("Z")
        assert foreign.json() == {"item": None}
        assert root.json()["item"] == item

    async def test_notes_query_by_ticket_id_pages_and_counts(self, served):
        """TicketNotes/query and query/count filter notes by ticketID."""
        note = {"description": "update", "noteType": 1, "publish": 1}
        query = {"filter": [{"op": "eq", "field": "TicketID", "value": None}]}
        async with client_for(served) as client:
            first = (await client.post("Tickets", json=ticket_body())).json()["itemId"]
            other = (await client.post("Tickets", json=ticket_body())).json()["itemId"]
            for ticket in (first, other, first):
                await client.post(f"Tickets/{ticket}/Notes", json=note)
            query["filter"][0]["value"] = first
            items = await query_all(client, "TicketNotes", query)
            count = await client.post("TicketNotes/query/count", json=query)

        assert [item["ticketID"] for item in items] == [first, first]
        assert count.json() == {"queryCount": 2}

    async def test_note_fields_are_the_bundled_note_sample(self, served):
        """TicketNotes/entityInformation/fields serves the note picklists."""
        expected = json.loads(NOTE_FIELDS.read_text(encoding="utf-8"))
        async with client_for(served) as client:
            response = await client.get("TicketNotes/entityInformation/fields")

        fields = {f["name"]: f for f in response.json()["fields"]}
        assert response.json() == {"fields": expected["fields"]}
        assert [v["label"] for v in fields["publish"]["picklistValues"]] == [
            "All Autotask Users",
            "Internal Only",
        ]
        assert fields["noteType"]["isRequired"] is True


class TestTicketLifecycleWithTheClient:
    """The project's client walks a ticket through its life on the emulator."""

    async def test_create_update_note_and_read_back(self, served):
        """Create, move to Complete, add a note, then read both back."""
        credentials = AutotaskCredentials(
            username=AUTH_HEADERS["UserName"],
            secret=SecretStr(AUTH_HEADERS["Secret"]),
            integration_code=SecretStr(AUTH_HEADERS["ApiIntegrationCode"]),
        )
        zone = f"{served.url}/atservicesrest/v1.0/zoneInformation"
        async with AutotaskClient(credentials, zone_url=zone, timeout=10) as client:
            note_picklists = Picklists.from_fields(
                await client.entity_fields("TicketNotes")
            )
            ticket_id = await client.create("Tickets", ticket_body())
            updated = await client.update("Tickets", {"id": ticket_id, "status": 5})
            note_id = await client.create_ticket_note(
                ticket_id,
                {
                    "title": "Resolved in SentinelOne",
                    "description": "The threat was marked resolved.",
                    "noteType": note_picklists.resolve("noteType", "Task Notes"),
                    "publish": note_picklists.resolve("publish", "Internal Only"),
                },
            )
            ticket = await client.get("Tickets", ticket_id)
            notes = await client.query(
                "TicketNotes", [{"op": "eq", "field": "ticketID", "value": ticket_id}]
            )

        assert updated == ticket_id
        assert ticket is not None
        assert ticket["status"] == 5
        assert [(n["id"], n["noteType"], n["publish"]) for n in notes] == [
            (note_id, 3, 2)
        ]

    async def test_bad_status_on_update_is_a_validation_error(self, served):
        """A refused PATCH reaches the client as a non-transient validation error."""
        credentials = AutotaskCredentials(
            username=AUTH_HEADERS["UserName"],
            secret=SecretStr(AUTH_HEADERS["Secret"]),
            integration_code=SecretStr(AUTH_HEADERS["ApiIntegrationCode"]),
        )
        zone = f"{served.url}/atservicesrest/v1.0/zoneInformation"
        async with AutotaskClient(credentials, zone_url=zone, timeout=10) as client:
            ticket_id = await client.create("Tickets", ticket_body())
            with pytest.raises(AutotaskValidationError, match="status") as caught:
                await client.update("Tickets", {"id": ticket_id, "status": 99})

        assert not is_transient(caught.value)


class TestAdditionalConfigurationItems:
    """Further devices link to a ticket through its AdditionalConfigurationItems."""

    async def test_linked_item_is_listed_under_the_ticket(self, served):
        """A linked configuration item shows up under the ticket."""
        async with client_for(served) as client:
            ticket = (await client.post("Tickets", json=ticket_body())).json()["itemId"]
            linked = await client.post(
                f"Tickets/{ticket}/AdditionalConfigurationItems",
                json={"configurationItemID": 2001},
            )
            listed = await client.get(f"Tickets/{ticket}/AdditionalConfigurationItems")

        assert linked.status_code == 200
        assert [i["configurationItemID"] for i in listed.json()["items"]] == [2001]

    async def test_unknown_configuration_item_is_refused(self, served):
        """Only existing, active configuration items can be linked."""
        async with client_for(served) as client:
            ticket = (await client.post("Tickets", json=ticket_body())).json()["itemId"]
            response = await client.post(
                f"Tickets/{ticket}/AdditionalConfigurationItems",
                json={"configurationItemID": 99},
            )

        assert response.status_code == 500
        assert "configurationItemID" in response.json()["errors"][0]


class TestLimits:
    """Thread limit per integration code and entity; hourly request threshold."""

    async def test_fourth_concurrent_call_on_an_entity_is_refused(self, bundled_seed):
        """With 3 calls in flight on Companies, further ones get 429 Itgenatr005."""
        emulator = AutotaskEmulator(bundled_seed, latency_seconds=0.3)
        with serve_in_thread(emulator) as server:
            async with client_for(server) as client:
                calls = [client.get("Companies/0") for _ in range(6)]
                responses = await asyncio.gather(*calls)

        statuses = sorted(r.status_code for r in responses)
        refused = [r.json()["errors"][0] for r in responses if r.status_code == 429]
        assert statuses == [200, 200, 200, 429, 429, 429]
        assert all("thread threshold of 3 threads" in text for text in refused)
        assert all("Itgenatr005" in text for text in refused)

    async def test_thread_limit_is_counted_per_entity(self, bundled_seed):
        """Three calls each on two entities all succeed."""
        emulator = AutotaskEmulator(bundled_seed, latency_seconds=0.3)
        with serve_in_thread(emulator) as server:
            async with client_for(server) as client:
                calls = [client.get(f"{e}/0") for e in ("Companies", "Resources") * 3]
                responses = await asyncio.gather(*calls)

        assert [r.status_code for r in responses] == [200] * 6

    async def test_hourly_threshold_refuses_calls_until_the_hour_rolls(
        self, bundled_seed
    ):
        """Past the threshold calls get 429 with Retry-After, until an hour passes."""
        now = [1000.0]
        emulator = AutotaskEmulator(
            bundled_seed,
            request_threshold=3,
            threshold_retry_after=30,
            threshold_delays=(0.0, 0.0),
            clock=lambda: now[0],
        )
        with serve_in_thread(emulator) as server:
            async with client_for(server) as client:
                usage = [
                    (await client.get("ThresholdInformation")).json() for _ in range(3)
                ]
                refused = await client.get("Companies/0")
                now[0] += 3601
                later = await client.get("Companies/0")

        assert [u["currentTimeframeRequestCount"] for u in usage] == [1, 2, 3]
        assert usage[0]["externalRequestThreshold"] == 3
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "30"
        assert later.status_code == 200

    def test_responses_slow_down_past_half_of_the_threshold(self, bundled_seed):
        """Usage at 50 % and 75 % of the threshold adds the configured delays."""
        emulator = AutotaskEmulator(bundled_seed, request_threshold=4)

        delays = [emulator.count_request() for _ in range(4)]

        assert delays == [0.0, 0.5, 1.0, 1.0]


class TestSeed:
    """The bundled seed and seed validation."""

    def test_bundled_seed_is_the_generator_output(self):
        """The seed file is exactly what the generator makes, so it can be rebuilt."""
        assert load_seed() == json.loads(json.dumps(build_seed()))

    def test_seed_with_unknown_field_names_the_record(self, tmp_path):
        """A typo in a hand-written seed fails with the record and field."""
        seed = tmp_path / "seed.json"
        seed.write_text(json.dumps({"companies": [{"id": 1, "companyNme": "x"}]}))

        with pytest.raises(EmulatorSeedError, match=r"companies\[0\].*companyNme"):
            AutotaskEmulator.from_seed(seed)

    def test_seed_with_wrong_value_type_names_the_field(self, tmp_path):
        """A value of the wrong type fails with its location."""
        seed = tmp_path / "seed.json"
        seed.write_text(json.dumps({"resources": [{"id": 1, "isActive": "yes"}]}))

        with pytest.raises(EmulatorSeedError, match=r"resources\[0\]\.isActive"):
            AutotaskEmulator.from_seed(seed)


class TestServing:
    """serve_in_thread starts and stops a real server."""

    def test_server_stops_listening_when_the_block_ends(self, bundled_seed):
        """After the block the port refuses connections."""
        with serve_in_thread(AutotaskEmulator(bundled_seed)) as server:
            url = f"{server.url}/atservicesrest/versioninformation"
            during = httpx.get(url)

        assert during.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(url)

    def test_busy_port_fails_with_a_start_error(self, shared_server):
        """Serving on a port in use raises instead of hanging."""
        port = int(shared_server.url.rsplit(":", 1)[1])

        with (
            pytest.raises(EmulatorStartError, match="cannot listen"),
            serve_in_thread(AutotaskEmulator(), port=port),
        ):
            pass
