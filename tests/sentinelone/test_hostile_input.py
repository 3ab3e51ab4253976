"""Payloads built to break the parser get a ThreatPayloadError naming the field."""

import json

import pytest

from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.intake import split_for_parameters
from s1_autotask.sentinelone.parse import load_json, parse_threats


def threat(**top):
    return {"id": "1373834705420286869", "threatInfo": {}} | top


class TestHostileThreatIds:
    """Only plain SentinelOne ids are accepted; they travel into URLs and keys."""

    @pytest.mark.parametrize(
        "bad_id",
        [
            "12\ud800",
            "abc_def-1",
            "../../etc/passwd",
            "1234\x1b[2J\nFAKE LINE",
            "1" * 51,
            "-5",
            "12 34",
        ],
    )
    def test_id_that_is_not_letters_and_digits_is_refused(self, bad_id):
        with pytest.raises(ThreatPayloadError) as caught:
            parse_threats(threat(id=bad_id))

        assert caught.value.location == "id"
        assert "not a SentinelOne threat id" in str(caught.value)
        assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


class TestHostileValues:
    """Odd values are repaired or refused, never a crash."""

    def test_lone_surrogate_in_text_is_replaced(self):
        parsed = parse_threats(threat(threatInfo={"threatName": "evil\ud800name"}))[0]

        parsed.model_dump_json()
        assert parsed.name.startswith("evil") and parsed.name.endswith("name")

    @pytest.mark.parametrize(
        "stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
    )
    def test_timestamp_at_the_calendar_edge_is_refused_by_field(self, stamp):
        with pytest.raises(ThreatPayloadError) as caught:
            parse_threats(threat(threatInfo={"createdAt": stamp}))

        assert caught.value.location == "threatInfo.createdAt"


class TestHostileKeys:
    """A map key is payload text too; it must not forge a path or reach a terminal."""

    @pytest.mark.parametrize(
        "key",
        ["kill\x1b[31mRED\nFORGED LINE\u202eexe.gpj", "[0].threatInfo.createdAt"],
        ids=["escapes and bidi", "forged path"],
    )
    def test_a_hostile_key_is_quoted_with_escapes_in_the_location(self, key):
        payload = {"classification": "Malware", "id": "1", "mitigationReport": {key: 5}}

        with pytest.raises(ThreatPayloadError) as caught:
            parse_threats(payload)

        message = str(caught.value)
        assert message.isprintable()
        assert "mitigationReport.[" in caught.value.location
        assert "mitigationReport[0]" not in message


class TestWhatTravelsToPrefect:
    """What load_json returns can always be stored as a Prefect flow parameter."""

    def test_a_lone_surrogate_anywhere_becomes_one_replacement_character(self):
        raw = b'{"threatId": "1", "note": "Office\\ud800Timeline", "\\udfff": 1}'

        value = load_json(raw)

        assert value == {"threatId": "1", "note": "Office\ufffdTimeline", "\ufffd": 1}
        json.dumps(value).encode("utf-8")

    def test_deep_nesting_even_under_an_ignored_key_is_refused(self):
        raw = '{"threatId": "1", "extra": ' + "[" * 100 + "]" * 100 + "}"

        with pytest.raises(ThreatPayloadError, match="nested more than 64 levels"):
            load_json(raw)

    def test_a_payload_too_large_for_one_flow_run_is_split_in_envelopes(self):
        threats = [{"id": str(n), "threatInfo": {"pad": "x" * 1000}} for n in range(9)]

        parts = split_for_parameters({"data": threats}, limit=4000)

        assert [len(p["data"]) for p in parts] == [3, 3, 3]
        assert [t for p in parts for t in p["data"]] == threats

    def test_a_payload_that_fits_is_left_whole(self):
        payload = {"threatId": "1"}

        assert split_for_parameters(payload) == [payload]

    def test_one_threat_too_large_to_travel_is_named(self):
        threats = [{"id": "1"}, {"id": "2", "threatInfo": {"pad": "x" * 5000}}]

        with pytest.raises(ThreatPayloadError) as caught:
            split_for_parameters({"data": threats}, limit=4000)

        assert caught.value.location == "data[1]"
        assert "over the 4000 bytes a flow run can take" in str(caught.value)
