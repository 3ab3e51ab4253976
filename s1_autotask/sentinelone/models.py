"""Normalised SentinelOne threat models used by the rest of the service.

Both wire shapes (v2.1 nested, legacy v2.0 flat) end up as one `Threat`. The models
are frozen and JSON round-trippable, so they can travel between Prefect tasks.
Attacker-influenced strings (names, paths, command lines, host names) are kept as
sent: escaping them is the ticket renderer's job.
"""

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _blank_to_none(value: str | None) -> str | None:
    # SentinelOne sends "" and null interchangeably for an absent hash, path or name.
    if value is None or not value.strip():
        return None
    return value


def _to_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


OptionalText = Annotated[str | None, AfterValidator(_blank_to_none)]
UtcDatetime = Annotated[datetime | None, AfterValidator(_to_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Endpoint(_Model):
    """The agent and host a threat was detected on."""

    computer_name: OptionalText = None
    os_type: OptionalText = None
    os_name: OptionalText = None
    os_revision: OptionalText = None
    domain: OptionalText = None
    machine_type: OptionalText = None
    network_status: OptionalText = None
    mitigation_mode: OptionalText = None
    agent_id: OptionalText = None
    agent_uuid: OptionalText = None
    agent_version: OptionalText = None
    last_logged_in_user: OptionalText = None
    ipv4: list[str] = Field(default_factory=list)
    external_ip: OptionalText = None
    is_active: bool | None = None
    is_decommissioned: bool | None = None
    decommissioned_at: UtcDatetime = None


class Scope(_Model):
    """Where the agent sits in the console hierarchy: account, site, group."""

    account_id: OptionalText = None
    account_name: OptionalText = None
    site_id: OptionalText = None
    site_name: OptionalText = None
    group_id: OptionalText = None
    group_name: OptionalText = None


class IndicatorTechnique(_Model):
    """An ATT&CK technique as SentinelOne reports it; the id is not validated."""

    name: str
    link: OptionalText = None


class IndicatorTactic(_Model):
    """An ATT&CK tactic attached to an indicator, with its techniques."""

    name: OptionalText = None
    source: OptionalText = None
    techniques: list[IndicatorTechnique] = Field(default_factory=list)


class Indicator(_Model):
    """A behavioural indicator; v2.0 payloads give only its numeric id."""

    category: OptionalText = None
    description: OptionalText = None
    ids: list[int] = Field(default_factory=list)
    tactics: list[IndicatorTactic] = Field(default_factory=list)


class MitigationAction(_Model):
    """One mitigation step the agent took (kill, quarantine, remediate, ...)."""

    action: OptionalText = None
    status: OptionalText = None
    started_at: UtcDatetime = None
    ended_at: UtcDatetime = None


class ContainerInfo(_Model):
    """The container a threat ran in, when the agent protects container workloads."""

    id: OptionalText = None
    image: OptionalText = None
    name: OptionalText = None
    labels: list[str] = Field(default_factory=list)


class Threat(_Model):
    """A SentinelOne threat, whichever API version it came from."""

    id: Annotated[str, Field(min_length=1)]
    name: str = ""
    classification: OptionalText = None
    classification_source: OptionalText = None
    confidence_level: OptionalText = None
    analyst_verdict: OptionalText = None
    incident_status: OptionalText = None
    mitigation_status: OptionalText = None
    detection_type: OptionalText = None
    engines: list[str] = Field(default_factory=list)
    initiated_by: OptionalText = None
    created_at: UtcDatetime = None
    updated_at: UtcDatetime = None
    identified_at: UtcDatetime = None
    file_path: OptionalText = None
    sha1: OptionalText = None
    sha256: OptionalText = None
    md5: OptionalText = None
    command_line: OptionalText = None
    process_user: OptionalText = None
    originator_process: OptionalText = None
    storyline: OptionalText = None
    publisher: OptionalText = None
    certificate_id: OptionalText = None
    file_size: int | None = None
    is_fileless: bool | None = None
    external_ticket_id: OptionalText = None
    endpoint: Endpoint = Field(default_factory=Endpoint)
    scope: Scope = Field(default_factory=Scope)
    indicators: list[Indicator] = Field(default_factory=list)
    mitigation_actions: list[MitigationAction] = Field(default_factory=list)
    container: ContainerInfo | None = None
    api_version: Literal["2.1", "2.0"] = "2.1"

    @property
    def technique_ids(self) -> list[str]:
        """Technique names from every indicator tactic, de-duplicated, first seen first.

        The same technique is often listed under several tactics and indicators.
        """
        seen: dict[str, None] = {}
        for indicator in self.indicators:
            for tactic in indicator.tactics:
                for technique in tactic.techniques:
                    seen.setdefault(technique.name, None)
        return list(seen)
