"""Telling whole threats from doorbells and Unified Alerts, and refusing the rest."""

import json
from pathlib import Path
from typing import Any

import pytest

from s1_autotask.sentinelone import ThreatPayloadError
from s1_autotask.sentinelone.intake import merge_ids, read_request, read_request_json

FIXTURES = Path(__file__).parent.parent / "fixtures"
MITRE = FIXTURES / "sentinelone" / "v21-windows-suspicious-mitre-mitigated.json"
ALERT = FIXTURES / "unified-alert" / "edr-alert-graphql.json"
BIG_ID = "1373834705420286869"


def _alert() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(ALERT.read_text(encoding="utf-8"))
    return payload


def _error(payload: object) -> ThreatPayloadError:
    with pytest.raises(ThreatPayloadError) as caught:
        read_request(payload)
    return caught.value


class TestWholeThreats:
    def test_a_threat_is_carried_whole(self):
        request = read_request_json(MITRE.read_bytes())

        assert request.kind == "threats"
        assert [t.id for t in request.threats] == [BIG_ID]
        assert request.threat_ids == ()

    def test_an_envelope_of_threats_is_carried_whole(self):
        threat = json.loads(MITRE.read_text(encoding="utf-8"))

        request = read_request({"data": [threat, threat]})

        assert request.kind == "threats"
        assert request.ids() == [BIG_ID]

    @pytest.mark.parametrize(
        "other",
        [
            {"threatId": "222"},
            {"threatIds": ["222"]},
            {"externalId": "333"},
            {"alert": {"externalId": "444"}},
            {"data": {"alert": {"externalId": "555"}}},
            {"data": [{"id": "666", "classification": "Malware"}]},
        ],
        ids=["threatId", "threatIds", "externalId", "alert", "data.alert", "data"],
    )
    @pytest.mark.parametrize(
        "threat",
        [
            {"id": "111", "classification": "Malware"},
            {"id": "111", "agentComputerName": "pc-1"},
            {"id": "111", "threatInfo": {"threatName": "x"}},
        ],
        ids=["v20-classification", "v20-computer", "v21"],
    )
    def test_a_threat_is_a_threat_whatever_other_keys_it_has(self, threat, other):
        alone = read_request(threat | other)
        listed = read_request([threat | other])

        assert (alone.kind, alone.ids()) == ("threats", ["111"])
        assert (listed.kind, listed.ids()) == ("threats", ["111"])


class TestDoorbells:
    @pytest.mark.parametrize(
        "payload",
        [
            {"threatId": BIG_ID},
            {"threat_id": BIG_ID, "siteName": "Example Site"},
            {"threatIds": [BIG_ID]},
            {"threat_ids": [BIG_ID, BIG_ID]},
            BIG_ID,
            int(BIG_ID),
        ],
        ids=["threatId", "threat_id", "threatIds", "threat_ids", "string", "number"],
    )
    def test_a_body_naming_a_threat_asks_for_it_by_id(self, payload):
        request = read_request(payload)

        assert request.kind == "threat_ids"
        assert request.threat_ids == (BIG_ID,)
        assert request.threats == ()

    def test_a_bare_number_above_2_53_keeps_every_digit(self):
        request = read_request_json(b'{"threatId": 1373834705420286869}')

        assert request.threat_ids == ("1373834705420286869",)

    @pytest.mark.parametrize(
        ("payload", "location", "problem"),
        [
            ({"threatId": "12 34"}, "threatId", "'12 34' is not a SentinelOne"),
            ({"threatId": True}, "threatId", "true is not a SentinelOne threat id"),
            ({"threatId": -5}, "threatId", "-5 is not a SentinelOne threat id"),
            ({"threatIds": []}, "threatIds", "expected a non-empty list"),
            ({"threatIds": "1"}, "threatIds", "got '1'"),
            ({"threatIds": ["1", None]}, "threatIds[1]", "null is not a"),
            ("../etc/passwd", "payload", "'../etc/passwd' is not a SentinelOne"),
        ],
        ids=["space", "bool", "negative", "empty", "not a list", "null", "path"],
    )
    def test_a_doorbell_with_a_bad_id_names_where(self, payload, location, problem):
        error = _error(payload)

        assert error.location == location
        assert problem in str(error)

    def test_too_many_ids_at_once_are_refused(self):
        error = _error({"threatIds": [str(n) for n in range(1001)]})

        assert "names 1001 threats in threatIds; at most 1000" in str(error)

    def test_the_id_cap_counts_every_key_together(self):
        ids = [str(n) for n in range(1000)]

        error = _error({"threatId": "x", "threatIds": ids, "threat_ids": ids})

        assert error.location == "payload"
        assert str(error) == (
            "Threat payload names 2001 threats in threatId, threatIds and "
            "threat_ids; at most 1000 are accepted in one call."
        )

    def test_ids_up_to_the_cap_across_keys_are_accepted(self):
        ids = [str(n) for n in range(999)]

        request = read_request({"threatId": "x", "threat_ids": ids})

        assert len(request.threat_ids) == 1000


class TestUnifiedAlerts:
    def test_a_graphql_alert_asks_for_its_external_id(self):
        request = read_request(_alert())

        assert request.kind == "unified_alert"
        assert request.threat_ids == (BIG_ID,)

    def test_a_templated_hyperautomation_body_asks_for_its_external_id(self):
        body = {"alertId": "019a2b3c", "externalId": BIG_ID, "severity": "HIGH"}

        request = read_request(body)

        assert request.kind == "unified_alert"
        assert request.threat_ids == (BIG_ID,)

    def test_an_alert_without_external_id_names_the_field(self):
        payload = _alert()
        del payload["data"]["alert"]["externalId"]

        error = _error(payload)

        assert error.location == "data.alert.externalId"
        assert "needs its externalId (the threat id)" in str(error)

    def test_an_alert_from_another_product_is_no_threat(self):
        payload = _alert()
        payload["data"]["alert"]["detectionSource"]["product"] = "Identity"

        error = _error(payload)

        assert error.location == "data.alert.detectionSource.product"
        assert "from 'Identity' is not an EDR threat" in str(error)


class TestRefusals:
    @pytest.mark.parametrize(
        ("payload", "problem"),
        [
            ({"hello": 1}, "an object with keys 'hello'"),
            (None, "got null"),
            ([], "the list is empty"),
            (True, "got true"),
        ],
        ids=["unknown object", "null", "empty list", "bool"],
    )
    def test_a_payload_that_asks_for_nothing_says_what_was_expected(
        self, payload, problem
    ):
        error = _error(payload)

        assert problem in str(error)

    def test_the_refusal_lists_every_accepted_shape(self):
        error = _error({"hello": 1})

        assert '{"threatId": "..."}' in str(error)
        assert "Unified Alert" in str(error)

    def test_broken_json_is_refused_with_its_position(self):
        with pytest.raises(ThreatPayloadError) as caught:
            read_request_json(b'{"threatId": ')

        assert "not valid JSON" in str(caught.value)
        assert "line 1, column 14" in str(caught.value)


class TestMergeIds:
    def test_ids_from_a_rerun_join_those_the_payload_named(self):
        request = read_request({"threatId": "1"})

        assert merge_ids(request, ["2", 1, "2"]) == ["1", "2"]

    def test_a_bad_rerun_id_names_its_position(self):
        with pytest.raises(ThreatPayloadError) as caught:
            merge_ids(None, ["1", "x y"])

        assert caught.value.location == "threat_ids[1]"
