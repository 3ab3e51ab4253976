"""Payloads built to break the parser get a ThreatPayloadError naming the field."""

import pytest

from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.parse import parse_threats


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
