"""Payload shapes, ids and bad input for the SentinelOne threat parser."""

import copy
import json
import pickle
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s1_autotask.sentinelone import (
    MAX_THREATS_PER_CALL,
    SentinelOneError,
    Threat,
    ThreatPayloadError,
    parse_threats,
    parse_threats_json,
)
from s1_autotask.sentinelone.parse import threat_items

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sentinelone"
MITRE = "v21-windows-suspicious-mitre-mitigated"
V20 = "v20-flat-windows-malicious-mitigated"
BIG_ID = "1373834705420286869"


def _load(name: str) -> dict[str, Any]:
    threat: dict[str, Any] = json.loads(
        (FIXTURES / f"{name}.json").read_text(encoding="utf-8")
    )
    return threat


def _changed(threat: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """Copy a threat with the value at a dotted path replaced (removed for `...`)."""
    changed = copy.deepcopy(threat)
    *parents, last = path.split(".")
    target = changed
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return changed


def _error(payload: object) -> ThreatPayloadError:
    with pytest.raises(ThreatPayloadError) as caught:
        parse_threats(payload)
    return caught.value


def _json_error(text: str | bytes) -> ThreatPayloadError:
    with pytest.raises(ThreatPayloadError) as caught:
        parse_threats_json(text)
    return caught.value


class TestPayloadShapes:
    """One threat, a list, or the API envelope all give a list of threats."""

    def test_single_threat_gives_one_threat(self) -> None:
        threats = parse_threats(_load(MITRE))

        assert [threat.id for threat in threats] == [BIG_ID]

    def test_list_gives_threats_in_order(self) -> None:
        threats = parse_threats([_load(MITRE), _load(V20)])

        assert [threat.id for threat in threats] == [BIG_ID, "715723437013282014"]
        assert [threat.api_version for threat in threats] == ["2.1", "2.0"]

    def test_api_envelope_gives_its_data(self) -> None:
        envelope = {
            "data": [_load(MITRE), _load(V20)],
            "pagination": {"nextCursor": None, "totalItems": 2},
        }

        threats = parse_threats_json(json.dumps(envelope))

        assert [threat.id for threat in threats] == [BIG_ID, "715723437013282014"]

    def test_json_bytes_and_text_give_the_same_threat(self) -> None:
        text = (FIXTURES / f"{MITRE}.json").read_text(encoding="utf-8")

        from_bytes = parse_threats_json(text.encode("utf-8"))

        assert from_bytes == parse_threats_json(text)

    def test_unknown_keys_are_ignored(self) -> None:
        threat = _load(MITRE) | {"EventTime": "2022-03-11 14:14:54", "newKey": {}}
        threat["threatInfo"]["futureField"] = [1, 2, 3]

        [parsed] = parse_threats(threat)

        assert parsed.id == BIG_ID

    def test_threat_info_id_is_used_when_top_level_id_is_absent(self) -> None:
        threat = _changed(_load(MITRE), "id", ...)

        [parsed] = parse_threats(threat)

        assert parsed.id == BIG_ID

    def test_nulls_everywhere_optional_still_parse(self) -> None:
        threat = {
            "id": "42",
            "threatInfo": {"threatName": None, "engines": None, "createdAt": None},
            "agentRealtimeInfo": None,
            "agentDetectionInfo": None,
            "indicators": [{"ids": None, "tactics": [{"techniques": None}]}],
            "mitigationStatus": None,
            "containerInfo": None,
        }

        [parsed] = parse_threats(threat)

        assert parsed.name == ""
        assert parsed.engines == []
        assert parsed.created_at is None
        assert parsed.technique_ids == []
        assert parsed.container is None

    def test_technique_without_a_name_is_left_out(self) -> None:
        threat = _load(MITRE)
        tactic = threat["indicators"][1]["tactics"][0]
        tactic["techniques"] += [{"name": None, "link": "x"}, {"name": ""}]

        [parsed] = parse_threats(threat)

        assert parsed.indicators[1].tactics[0].techniques[-1].name == "T1053.005"

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("2022-03-11T12:44:19.192413Z", "2022-03-11T12:44:19.192413+00:00"),
            ("2023-03-16T18:23:01Z", "2023-03-16T18:23:01+00:00"),
            ("2023-03-16T18:23:01", "2023-03-16T18:23:01+00:00"),
            ("2023-03-16 18:23:01", "2023-03-16T18:23:01+00:00"),
            ("2023-03-16T20:23:01+02:00", "2023-03-16T18:23:01+00:00"),
            ("2023-03-16T18:23:01.1234567Z", "2023-03-16T18:23:01.123456+00:00"),
        ],
    )
    def test_timestamp_forms_become_utc(self, raw: str, expected: str) -> None:
        threat = _changed(_load(MITRE), "threatInfo.createdAt", raw)

        [parsed] = parse_threats(threat)

        assert parsed.created_at is not None
        assert parsed.created_at.isoformat() == expected

    def test_boolean_where_a_timestamp_belongs_reads_as_unknown(self) -> None:
        threat = _changed(_load(MITRE), "threatInfo.updatedAt", True)

        [parsed] = parse_threats(threat)

        assert parsed.updated_at is None

    def test_ipv4_string_is_split_and_blanks_dropped(self) -> None:
        threat = _changed(
            _load(MITRE), "agentDetectionInfo.agentIpV4", " 10.0.0.1,,10.0.0.2, "
        )

        [parsed] = parse_threats(threat)

        assert parsed.endpoint.ipv4 == ["10.0.0.1", "10.0.0.2"]

    def test_v20_threat_needs_only_its_flat_keys(self) -> None:
        [parsed] = parse_threats({"id": 7, "agentComputerName": "pc-1"})

        assert (parsed.id, parsed.endpoint.computer_name) == ("7", "pc-1")
        assert parsed.api_version == "2.0"

    def test_exactly_the_maximum_number_of_threats_is_accepted(self) -> None:
        payload = [
            {"id": str(n), "threatInfo": {}} for n in range(MAX_THREATS_PER_CALL)
        ]

        threats = parse_threats(payload)

        assert len(threats) == MAX_THREATS_PER_CALL


class TestThreatItems:
    """The items a payload's threats are read from, where they are in it."""

    def test_items_of_a_list_and_an_envelope_come_with_their_locations(self) -> None:
        first, second = _load(MITRE), _load(V20)

        listed = threat_items([first, second])
        enveloped = threat_items({"data": [first, second]})

        assert listed == [("[0]", first), ("[1]", second)]
        assert enveloped == [("data[0]", first), ("data[1]", second)]

    def test_a_threat_holding_a_data_list_is_one_item_itself(self) -> None:
        threat = {"id": "111", "classification": "Malware", "data": [_load(MITRE)]}

        items = threat_items(threat)
        [parsed] = parse_threats(threat)

        assert items == [("", threat)]
        assert parsed.id == "111"

    def test_the_nth_threat_is_parsed_from_the_nth_item(self) -> None:
        payload = [_load(V20), _load(MITRE), {"id": "7", "agentComputerName": "pc"}]

        pairs = zip(threat_items(payload), parse_threats(payload), strict=True)

        assert all(parse_threats(item) == [threat] for (_, item), threat in pairs)


class TestIds:
    """Ids stay exact strings, however they were sent."""

    def test_bare_json_number_id_keeps_every_digit(self) -> None:
        text = json.dumps(_load(MITRE)).replace(f'"{BIG_ID}"', BIG_ID)

        [parsed] = parse_threats_json(text)

        assert f'"id": {BIG_ID},' in text
        assert parsed.id == BIG_ID
        # Read through a float, the id would have come back as ...976.
        assert str(int(float(BIG_ID))) != BIG_ID

    def test_bare_numbers_for_scope_ids_keep_every_digit(self) -> None:
        text = json.dumps(_load(MITRE)).replace(
            '"1083054176741832911"', "1083054176741832911"
        )

        [parsed] = parse_threats_json(text)

        assert parsed.scope.site_id == "1083054176741832911"

    def test_float_id_is_refused_with_a_clear_message(self) -> None:
        threat = _changed(_load(MITRE), "id", float(BIG_ID))

        error = _error([threat])

        assert error.location == "[0].id"
        assert "floating-point" in str(error)
        assert "[0].id" in str(error)

    def test_float_site_id_is_refused(self) -> None:
        text = json.dumps(_load(MITRE)).replace(
            '"siteId": "1083054176741832911"', '"siteId": 1.083054176741833e18', 1
        )

        error = _json_error(text)

        assert error.location == "agentDetectionInfo.siteId"
        assert "floating-point" in str(error)


BAD_THREAT_CASES = [
    pytest.param(
        "threatInfo.createdAt",
        "yesterday",
        "createdAt is not a timestamp: 'yesterday'",
        id="text timestamp",
    ),
    pytest.param(
        "threatInfo.updatedAt",
        1700000000,
        "updatedAt is not a timestamp: 1700000000",
        id="epoch timestamp",
    ),
    pytest.param(
        "threatInfo", None, "threatInfo must be an object, got null", id="null info"
    ),
    pytest.param(
        "threatInfo.fileSize",
        "big",
        "fileSize is not a whole number: got 'big'",
        id="text file size",
    ),
    pytest.param(
        "threatInfo.sha1",
        {"a": 1},
        "sha1 is not text: got an object with 1 key",
        id="object hash",
    ),
    pytest.param(
        "threatInfo.threatId",
        True,
        "threatId is not an id: got true",
        id="boolean id",
    ),
    pytest.param(
        "agentRealtimeInfo.agentIsActive",
        "yes",
        "agentIsActive is not true or false: got 'yes'",
        id="text flag",
    ),
    pytest.param(
        "agentRealtimeInfo",
        [],
        "agentRealtimeInfo must be an object, got a list of 0 items",
        id="list agent info",
    ),
    pytest.param(
        "indicators.0.ids.0",
        "62",
        "ids[0] is not a whole number: got '62'",
        id="text indicator id",
    ),
    pytest.param(
        "indicators.2",
        "evasion",
        "indicators[2] is neither an indicator object nor an id: got 'evasion'",
        id="text indicator",
    ),
    pytest.param(
        "indicators.0.tactics.1.techniques",
        "T1566.001",
        "techniques must be a list, got 'T1566.001'",
        id="text techniques",
    ),
    pytest.param(
        "mitigationStatus",
        "mitigated",
        "mitigationStatus must be a list, got 'mitigated'",
        id="v2.0 status in v2.1 threat",
    ),
]


class TestBadThreats:
    """A bad field fails the threat with its path and the problem in a sentence."""

    @pytest.mark.parametrize(("path", "value", "problem"), BAD_THREAT_CASES)
    def test_bad_field_is_named_in_the_envelope(
        self, path: str, value: object, problem: str
    ) -> None:
        envelope = {"data": [_load(V20), _changed(_load(MITRE), path, value)]}
        location = "data[1]." + _location(path)

        error = _error(envelope)

        assert error.location == location
        assert f"at {location}: {problem}" in str(error)
        assert error.threat_id == BIG_ID

    def test_missing_ids_are_reported_at_the_threat_info_id(self) -> None:
        threat = _changed(_changed(_load(MITRE), "id", ...), "threatInfo.threatId", "")

        error = _error({"data": [_load(MITRE), threat]})

        assert error.location == "data[1].threatInfo.threatId"
        assert "data[1].threatInfo.threatId: threat id is missing" in str(error)

    def test_missing_v20_id_is_reported_at_id(self) -> None:
        error = _error([_changed(_load(V20), "id", ...)])

        assert error.location == "[0].id"
        assert "threat id is missing" in str(error)

    def test_bad_v20_mitigation_report_is_named(self) -> None:
        threat = _changed(_load(V20), "mitigationReport.kill", "success")

        error = _error(threat)

        assert error.location == "mitigationReport.kill"
        assert "kill must be an object, got 'success'" in str(error)

    def test_count_of_further_problems_is_given(self) -> None:
        threat = _changed(_load(MITRE), "threatInfo.createdAt", "soon")
        threat["threatInfo"]["updatedAt"] = "later"

        error = _error(threat)

        assert "(1 more problems in this threat)" in str(error)


def _location(path: str) -> str:
    location = ""
    for part in path.split("."):
        location += f"[{part}]" if part.isdigit() else f".{part}"
    return location.lstrip(".")


BAD_PAYLOAD_CASES = [
    pytest.param({"hello": 1}, "payload", "got an object with keys 'hello'", id="dict"),
    pytest.param("a threat", "payload", "got 'a threat'", id="string"),
    pytest.param(42, "payload", "got 42", id="number"),
    pytest.param(None, "payload", "got null", id="null"),
    pytest.param([], "payload", "holds no threats", id="empty list"),
    pytest.param({"data": []}, "data", "holds no threats in data", id="empty data"),
    pytest.param({"data": "x"}, "data", "expected a list of threats", id="text data"),
    pytest.param([1], "[0]", "expected a SentinelOne threat", id="number item"),
    pytest.param(
        {"data": [{"hello": 1}]},
        "data[0]",
        "expected a SentinelOne threat (an object with threatInfo",
        id="unknown item",
    ),
    pytest.param(
        {"errors": [{"code": 4010010, "title": "Authentication Failed"}]},
        "payload",
        "error response, not threats: 'Authentication Failed' (code 4010010)",
        id="api error",
    ),
    pytest.param(
        {
            "id": "019a",
            "classification": "MALWARE",
            "severity": "HIGH",
            "detectionSource": {"product": "EDR"},
        },
        "payload",
        "a Unified Alert (UAM), not a threat",
        id="uam alert",
    ),
]


class TestBadPayloads:
    """A payload that is not threats is refused, saying what was expected."""

    @pytest.mark.parametrize(("payload", "location", "problem"), BAD_PAYLOAD_CASES)
    def test_payload_is_refused_with_its_location(
        self, payload: object, location: str, problem: str
    ) -> None:
        error = _error(payload)

        assert error.location == location
        assert location in str(error)
        assert problem in str(error)

    def test_more_than_the_maximum_number_of_threats_is_refused(self) -> None:
        payload = {"data": [{"id": "1", "threatInfo": {}}] * (MAX_THREATS_PER_CALL + 1)}

        error = _error(payload)

        assert error.location == "data"
        assert "1001 threats in data; at most 1000" in str(error)

    def test_error_is_a_sentinelone_error(self) -> None:
        assert isinstance(_error({"hello": 1}), SentinelOneError)


class TestJsonText:
    """JSON text that cannot be read fails as a payload error, not a crash."""

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            pytest.param("{", "not valid JSON: Expecting property name", id="cut"),
            pytest.param(b"\x80abc", "cannot be decoded as utf-8", id="bad bytes"),
            pytest.param("[" * 100_000, "nested too deeply", id="deep"),
            pytest.param('{"id": ' + "9" * 5000 + "}", "too many digits", id="digits"),
        ],
    )
    def test_unreadable_text_is_refused(self, text: str | bytes, problem: str) -> None:
        error = _json_error(text)

        assert error.location == "payload"
        assert problem in str(error)


class TestHostileInput:
    """Attacker-controlled values are kept, never echoed whole, and parse fast."""

    def test_huge_bad_value_is_truncated_in_the_message(self) -> None:
        threat = _changed(_load(MITRE), "threatInfo.createdAt", "x" * 1_000_000)

        error = _error(threat)

        assert "(1000000 characters)" in str(error)
        assert len(str(error)) < 400

    def test_huge_unknown_key_is_truncated_in_the_message(self) -> None:
        error = _error({"k" * 100_000: 1})

        assert len(str(error)) < 400

    def test_braces_in_a_bad_value_are_quoted_as_sent(self) -> None:
        threat = _changed(_load(MITRE), "threatInfo.createdAt", "{problem}")

        error = _error(threat)

        assert "createdAt is not a timestamp: '{problem}'" in str(error)

    def test_control_characters_and_huge_strings_are_kept(self) -> None:
        command_line = "\x00\x1b[31mcmd\r\n" + "A" * 5_000_000
        threat = _changed(
            _load(MITRE), "threatInfo.maliciousProcessArguments", command_line
        )

        [parsed] = parse_threats(threat)

        assert parsed.command_line == command_line

    def test_huge_inputs_parse_quickly(self) -> None:
        """Anything quadratic in these sizes would take minutes."""
        threat = _load(MITRE)
        threat["threatInfo"]["threatName"] = "\u202e" * 2_000_000
        threat["agentDetectionInfo"]["agentIpV4"] = "," * 1_000_000 + "10.0.0.1"
        threat["unknownKey"] = [[[[1]]]] * 100_000
        text = json.dumps(threat)

        started = time.perf_counter()
        [parsed] = parse_threats_json(text)
        elapsed = time.perf_counter() - started

        assert parsed.endpoint.ipv4 == ["10.0.0.1"]
        assert elapsed < 5

    def test_many_indicators_parse(self) -> None:
        threat = _load(MITRE)
        threat["indicators"] = threat["indicators"] * 500

        [parsed] = parse_threats(threat)

        assert len(parsed.indicators) == 3000
        assert len(parsed.technique_ids) == 8


class TestErrorTransport:
    """Payload errors survive the pickling Prefect does between processes."""

    def test_error_pickles_with_location_and_threat_id(self) -> None:
        error = _error(_changed(_load(MITRE), "threatInfo.createdAt", "yesterday"))

        # Only our own exception is unpickled here.
        again = pickle.loads(pickle.dumps(error))  # noqa: S301

        assert (str(again), again.location, again.threat_id) == (
            str(error),
            "threatInfo.createdAt",
            BIG_ID,
        )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
SAMPLE_NAMES = sorted(path.stem for path in FIXTURES.glob("*.json"))


def _value_paths(
    value: object, prefix: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    if isinstance(value, dict):
        return [prefix] + [
            path
            for key, item in value.items()
            for path in _value_paths(item, (*prefix, key))
        ]
    if isinstance(value, list):
        return [prefix] + [
            path
            for index, item in enumerate(value)
            for path in _value_paths(item, (*prefix, index))
        ]
    return [prefix]


class TestArbitraryInput:
    """Whatever arrives, the parser returns threats or raises ThreatPayloadError."""

    @settings(max_examples=200, deadline=None)
    @given(payload=JSON_VALUES)
    def test_arbitrary_json_never_escapes_as_another_error(
        self, payload: object
    ) -> None:
        try:
            threats = parse_threats(payload)
        except ThreatPayloadError as error:
            assert error.location
        else:
            assert all(isinstance(threat, Threat) for threat in threats)

    @settings(
        max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(data=st.data(), replacement=JSON_VALUES)
    def test_sample_with_one_value_replaced_parses_or_fails_cleanly(
        self, data: st.DataObject, replacement: object
    ) -> None:
        threat = _load(data.draw(st.sampled_from(SAMPLE_NAMES)))
        path = data.draw(st.sampled_from(_value_paths(threat)[1:]))
        target: Any = threat
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = replacement

        try:
            [parsed] = parse_threats(threat)
        except ThreatPayloadError as error:
            assert error.location
        else:
            assert Threat.model_validate(parsed.model_dump(mode="json")) == parsed
