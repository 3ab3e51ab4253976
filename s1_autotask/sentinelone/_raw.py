"""Wire models of the SentinelOne threat object, v2.1 (nested) and v2.0 (flat).

They read only the fields the service uses, ignore every other key, and absorb the
quirks seen in real payloads: null for any value, "" for a missing value, ids as
strings or bare numbers, a boolean where a timestamp belongs, IPv4 addresses as one
comma-joined string, v2.0 indicators as plain integers. Each leaf rejects a value of
the wrong kind with a short sentence that quotes at most a truncated value; the
parser adds the field path, and `_normalise` maps the result onto `Threat`.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    with_config,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

# The error type of every problem raised here; its message is a complete sentence.
PROBLEM_ERROR_TYPE = "s1_value"

_QUOTE_LIMIT = 80
# An ISO-8601 timestamp with microseconds and an offset is 32 characters; anything
# much longer is not one, and is not worth handing to the parser.
_TIMESTAMP_LIMIT = 64
# SentinelOne ids are 64-bit; the margin still keeps int-to-str conversion cheap.
_ID_BITS_LIMIT = 128


def quote(text: str) -> str:
    """Quote a payload string for an error message, cut to a readable length."""
    if len(text) <= _QUOTE_LIMIT:
        return repr(text)
    return f"{text[:_QUOTE_LIMIT]!r}... ({len(text)} characters)"


def describe(value: object) -> str:
    """Describe a payload value for an error message without echoing much of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > _ID_BITS_LIMIT:
            return f"an integer of {value.bit_length()} bits"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        return f"an object with {_count_of(len(value), 'key')}"
    if isinstance(value, list | tuple):
        return f"a list of {_count_of(len(value), 'item')}"
    return f"a {type(value).__name__}"


def _count_of(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _problem(sentence: str) -> PydanticCustomError:
    # The sentence goes in as context, so braces in payload text are never expanded.
    return PydanticCustomError(PROBLEM_ERROR_TYPE, "{problem}", {"problem": sentence})


def _is_small_int(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value.bit_length() <= _ID_BITS_LIMIT
    )


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return _valid_unicode(value)
    if value is None:
        return value
    if _is_small_int(value):
        return str(value)
    msg = f"is not text: got {describe(value)}"
    raise _problem(msg)


def _valid_unicode(value: str) -> str:
    """Replace lone surrogates (JSON allows "\\ud800"), which no UTF-8 text can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def _identifier(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _valid_unicode(value).strip() or None
    if _is_small_int(value):
        return str(value)
    if isinstance(value, float):
        msg = (
            f"is a floating-point number ({describe(value)}), which cannot hold an "
            "id exactly; send ids as strings or integers"
        )
        raise _problem(msg)
    msg = f"is not an id: got {describe(value)}"
    raise _problem(msg)


def _timestamp(value: object) -> datetime | None:
    # A boolean has been seen where a timestamp belongs (agentDecommissionedAt: true);
    # it carries no time, so it reads as unknown rather than failing the threat.
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        parsed: datetime | None = value
    elif isinstance(value, str) and not value.strip():
        return None
    elif isinstance(value, str) and len(value) <= _TIMESTAMP_LIMIT:
        parsed = _parse_iso(value.strip())
    else:
        parsed = None
    if parsed is None:
        msg = f"is not a timestamp: {describe(value)}"
        raise _problem(msg)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        msg = f"is outside the range of dates that can be stored: {describe(value)}"
        raise _problem(msg) from None


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _flag(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    msg = f"is not true or false: got {describe(value)}"
    raise _problem(msg)


def _count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and _is_small_int(value):
        return value
    msg = f"is not a whole number: got {describe(value)}"
    raise _problem(msg)


def _null_to_list(value: object) -> object:
    return [] if value is None else value


def _drop_blanks(values: list[str | None]) -> list[str]:
    return [value for value in values if value is not None and value.strip()]


def _address_list(value: object) -> object:
    # agentIpV4 is one comma-joined string ("192.168.56.1,10.4.4.69").
    if isinstance(value, str):
        return value.split(",")
    return _null_to_list(value)


def _indicator_item(value: object) -> object:
    # v2.0 lists indicators as bare behavioural-indicator ids.
    if _is_small_int(value):
        return {"ids": [value]}
    if isinstance(value, Mapping):
        return value
    msg = f"is neither an indicator object nor an id: got {describe(value)}"
    raise _problem(msg)


Text = Annotated[str | None, BeforeValidator(_text)]
Identifier = Annotated[str | None, BeforeValidator(_identifier)]
Timestamp = Annotated[datetime | None, BeforeValidator(_timestamp)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]
Count = Annotated[int | None, BeforeValidator(_count)]
TextList = Annotated[
    list[Text], BeforeValidator(_null_to_list), AfterValidator(_drop_blanks)
]
AddressList = Annotated[
    list[Text], BeforeValidator(_address_list), AfterValidator(_drop_blanks)
]


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, extra="ignore", hide_input_in_errors=True
    )


_DICT_CONFIG = ConfigDict(extra="ignore", hide_input_in_errors=True)


# Indicators are plain dicts rather than models: a hostile payload can hold a
# hundred thousand of them, and dicts validate several times faster.
@with_config(_DICT_CONFIG)
class RawTechnique(TypedDict, total=False):
    name: Text
    link: Text


@with_config(_DICT_CONFIG)
class RawTactic(TypedDict, total=False):
    name: Text
    source: Text
    techniques: Annotated[list[RawTechnique], BeforeValidator(_null_to_list)]


@with_config(_DICT_CONFIG)
class RawIndicator(TypedDict, total=False):
    category: Text
    description: Text
    ids: Annotated[list[Count], BeforeValidator(_null_to_list)]
    tactics: Annotated[list[RawTactic], BeforeValidator(_null_to_list)]


IndicatorList = Annotated[
    list[Annotated[RawIndicator, BeforeValidator(_indicator_item)]],
    BeforeValidator(_null_to_list),
]


class RawMitigationAction(_Wire):
    action: Text = None
    status: Text = None
    mitigation_started_at: Timestamp = None
    mitigation_ended_at: Timestamp = None


class RawContainerInfo(_Wire):
    id: Text = None
    image: Text = None
    name: Text = None
    labels: TextList = []


class RawNetworkInterface(_Wire):
    inet: TextList = []


class RawThreatInfo(_Wire):
    threat_id: Identifier = None
    threat_name: Text = None
    classification: Text = None
    classification_source: Text = None
    confidence_level: Text = None
    analyst_verdict: Text = None
    incident_status: Text = None
    mitigation_status: Text = None
    detection_type: Text = None
    engines: TextList = []
    initiated_by: Text = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    identified_at: Timestamp = None
    file_path: Text = None
    sha1: Text = None
    sha256: Text = None
    md5: Text = None
    malicious_process_arguments: Text = None
    process_user: Text = None
    originator_process: Text = None
    storyline: Text = None
    publisher_name: Text = None
    certificate_id: Text = None
    file_size: Count = None
    is_fileless: Flag = None
    external_ticket_id: Text = None


class RawAgentRealtimeInfo(_Wire):
    account_id: Identifier = None
    account_name: Text = None
    site_id: Identifier = None
    site_name: Text = None
    group_id: Identifier = None
    group_name: Text = None
    agent_id: Identifier = None
    agent_uuid: Text = None
    agent_computer_name: Text = None
    agent_domain: Text = None
    agent_os_type: Text = None
    agent_os_name: Text = None
    agent_os_revision: Text = None
    agent_machine_type: Text = None
    agent_mitigation_mode: Text = None
    agent_network_status: Text = None
    agent_version: Text = None
    agent_is_active: Flag = None
    agent_is_decommissioned: Flag = None
    agent_decommissioned_at: Timestamp = None
    network_interfaces: Annotated[
        list[RawNetworkInterface], BeforeValidator(_null_to_list)
    ] = []


class RawAgentDetectionInfo(_Wire):
    account_id: Identifier = None
    account_name: Text = None
    site_id: Identifier = None
    site_name: Text = None
    group_id: Identifier = None
    group_name: Text = None
    agent_id: Identifier = None
    agent_uuid: Text = None
    agent_domain: Text = None
    agent_os_name: Text = None
    agent_os_revision: Text = None
    agent_mitigation_mode: Text = None
    agent_version: Text = None
    agent_ip_v4: AddressList = []
    external_ip: Text = None
    agent_last_logged_in_user_name: Text = None


class RawThreatV21(_Wire):
    """A threat as `GET /web/api/v2.1/threats` returns it."""

    id: Identifier = None
    threat_info: RawThreatInfo
    agent_realtime_info: RawAgentRealtimeInfo | None = None
    agent_detection_info: RawAgentDetectionInfo | None = None
    indicators: IndicatorList = []
    mitigation_status: Annotated[
        list[RawMitigationAction], BeforeValidator(_null_to_list)
    ] = []
    container_info: RawContainerInfo | None = None

    def threat_id(self) -> str | None:
        return self.id or self.threat_info.threat_id


class RawMitigationReportEntry(_Wire):
    status: Text = None


class RawThreatV20(_Wire):
    """A threat in the legacy flat shape of `GET /web/api/v2.0/threats`."""

    id: Identifier = None
    threat_name: Text = None
    file_display_name: Text = None
    classification: Text = None
    classification_source: Text = None
    confidence_level: Text = None
    analyst_verdict: Text = None
    incident_status: Text = None
    resolved: Flag = None
    mitigation_status: Text = None
    mitigation_report: dict[str, RawMitigationReportEntry | None] | None = None
    engines: TextList = []
    initiated_by: Text = None
    created_at: Timestamp = None
    updated_at: Timestamp = None
    created_date: Timestamp = None
    file_path: Text = None
    file_content_hash: Text = None
    file_sha256: Text = None
    malicious_process_arguments: Text = None
    username: Text = None
    malicious_group_id: Text = None
    publisher: Text = None
    cert_id: Text = None
    external_ticket_id: Text = Field(
        default=None,
        validation_alias=AliasChoices("external_ticket_id", "externalTicketId"),
    )
    indicators: IndicatorList = []
    account_id: Identifier = None
    account_name: Text = None
    site_id: Identifier = None
    site_name: Text = None
    agent_id: Identifier = None
    agent_uuid: Text = None
    agent_computer_name: Text = None
    agent_domain: Text = None
    agent_os_type: Text = None
    agent_os_name: Text = None
    agent_machine_type: Text = None
    agent_network_status: Text = None
    agent_version: Text = None
    agent_ip: AddressList = []
    agent_is_active: Flag = None
    agent_is_decommissioned: Flag = None
    mitigation_mode: Text = None

    def threat_id(self) -> str | None:
        return self.id
