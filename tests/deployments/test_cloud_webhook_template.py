"""The Prefect Cloud webhook template turns each SentinelOne body into our event."""

import json
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from s1_autotask.sentinelone.intake import read_request
from tests.conftest import FIXTURES, SAMPLES

TEMPLATE = Path(__file__).parents[2] / "deployments" / "cloud-webhook-template.json"
ALERT = FIXTURES / "unified-alert" / "edr-alert-graphql.json"


def render(body):
    """Render as Prefect Cloud does: a sandboxed Jinja template over the request."""
    template = ImmutableSandboxedEnvironment().from_string(TEMPLATE.read_text())
    headers = {"content-type": "application/json"}
    return json.loads(template.render(body=body, headers=headers, method="POST"))


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


class TestCloudWebhookTemplate:
    @pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
    def test_a_threat_becomes_an_event_about_that_threat(self, sample):
        body = load(sample)

        event = render(body)

        assert event["event"] == "sentinelone.threat.received"
        resource_id = event["resource"]["prefect.resource.id"]
        assert resource_id == f"sentinelone.threat.{body['id']}"
        assert event["payload"]["body"] == body

    @pytest.mark.parametrize(
        ("body", "threat_id"),
        [
            ({"threatId": "1373834705420286869"}, "1373834705420286869"),
            ({"threat_id": 42}, "42"),
            ({"externalId": "77", "severity": "HIGH"}, "77"),
            (load(ALERT), "1373834705420286869"),
            ([{"id": "1"}, {"id": "2"}], "batch"),
            ("1373834705420286869", "batch"),
        ],
        ids=["doorbell", "numeric doorbell", "templated alert", "alert", "list", "str"],
    )
    def test_every_accepted_shape_gets_a_resource_id(self, body, threat_id):
        event = render(body)

        assert event["resource"]["prefect.resource.id"] == (
            f"sentinelone.threat.{threat_id}"
        )

    def test_the_flow_reads_what_the_event_carries(self):
        body = load(ALERT)

        request = read_request(render(body)["payload"]["body"])

        assert request.threat_ids == ("1373834705420286869",)

    def test_a_hostile_id_cannot_break_the_event_json(self):
        body = {"threatId": '1", "event": "evil' + "x" * 200}

        event = render(body)

        assert event["event"] == "sentinelone.threat.received"
        assert len(event["resource"]["prefect.resource.id"]) == 80
