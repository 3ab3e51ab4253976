"""Map the wire models of both API versions onto the public `Threat`.

v2.1 splits the agent into its current state (`agentRealtimeInfo`) and a snapshot
taken at detection (`agentDetectionInfo`); the current state wins and the snapshot
fills its gaps. v2.0 keeps everything at the top level under older names.
"""

import re
from collections.abc import Iterable

from pydantic import TypeAdapter

from s1_autotask.sentinelone._raw import (
    RawAgentDetectionInfo,
    RawAgentRealtimeInfo,
    RawIndicator,
    RawThreatV20,
    RawThreatV21,
)
from s1_autotask.sentinelone.models import (
    ContainerInfo,
    Endpoint,
    Indicator,
    MitigationAction,
    Scope,
    Threat,
)

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_INDICATOR_LIST = TypeAdapter(list[Indicator])


def to_threat(raw: RawThreatV21 | RawThreatV20, threat_id: str) -> Threat:
    """Build the public model from a validated wire model and its resolved id."""
    if isinstance(raw, RawThreatV21):
        return _from_v21(raw, threat_id)
    return _from_v20(raw, threat_id)


def _first(*values: str | None) -> str | None:
    for value in values:
        if value is not None and value.strip():
            return value
    return None


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(value.strip() for value in values if value))


def _indicators(raw: list[RawIndicator]) -> list[Indicator]:
    # One validation call for the whole list: far faster than a model at a time when
    # a hostile payload holds a hundred thousand indicators. A technique without a
    # name has nothing to look up, so it is left out.
    return _INDICATOR_LIST.validate_python(
        [
            {
                "category": indicator.get("category"),
                "description": indicator.get("description"),
                "ids": [
                    number for number in indicator.get("ids", []) if number is not None
                ],
                "tactics": [
                    {
                        "name": tactic.get("name"),
                        "source": tactic.get("source"),
                        "techniques": [
                            {"name": name, "link": technique.get("link")}
                            for technique in tactic.get("techniques", [])
                            if (name := technique.get("name")) and name.strip()
                        ],
                    }
                    for tactic in indicator.get("tactics", [])
                ],
            }
            for indicator in raw
        ]
    )


def _from_v21(raw: RawThreatV21, threat_id: str) -> Threat:
    info = raw.threat_info
    now = raw.agent_realtime_info or RawAgentRealtimeInfo()
    then = raw.agent_detection_info or RawAgentDetectionInfo()
    return Threat(
        id=threat_id,
        name=info.threat_name or "",
        classification=info.classification,
        classification_source=info.classification_source,
        confidence_level=info.confidence_level,
        analyst_verdict=info.analyst_verdict,
        incident_status=info.incident_status,
        mitigation_status=info.mitigation_status,
        detection_type=info.detection_type,
        engines=info.engines,
        initiated_by=info.initiated_by,
        created_at=info.created_at,
        updated_at=info.updated_at,
        identified_at=info.identified_at,
        file_path=info.file_path,
        sha1=info.sha1,
        sha256=info.sha256,
        md5=info.md5,
        command_line=info.malicious_process_arguments,
        process_user=info.process_user,
        originator_process=info.originator_process,
        storyline=info.storyline,
        publisher=info.publisher_name,
        certificate_id=info.certificate_id,
        file_size=info.file_size,
        is_fileless=info.is_fileless,
        external_ticket_id=info.external_ticket_id,
        endpoint=_endpoint_v21(now, then),
        scope=Scope(
            account_id=_first(now.account_id, then.account_id),
            account_name=_first(now.account_name, then.account_name),
            site_id=_first(now.site_id, then.site_id),
            site_name=_first(now.site_name, then.site_name),
            group_id=_first(now.group_id, then.group_id),
            group_name=_first(now.group_name, then.group_name),
        ),
        indicators=_indicators(raw.indicators),
        mitigation_actions=[
            MitigationAction(
                action=item.action,
                status=item.status,
                started_at=item.mitigation_started_at,
                ended_at=item.mitigation_ended_at,
            )
            for item in raw.mitigation_status
        ],
        container=_container_v21(raw),
        api_version="2.1",
    )


def _endpoint_v21(now: RawAgentRealtimeInfo, then: RawAgentDetectionInfo) -> Endpoint:
    # Addresses at detection time are what the analyst needs; old payloads lack
    # them, and then the agent's current interfaces are the best remaining clue.
    addresses = then.agent_ip_v4 or [
        address for interface in now.network_interfaces for address in interface.inet
    ]
    return Endpoint(
        computer_name=now.agent_computer_name,
        os_type=now.agent_os_type,
        os_name=_first(now.agent_os_name, then.agent_os_name),
        os_revision=_first(now.agent_os_revision, then.agent_os_revision),
        domain=_first(now.agent_domain, then.agent_domain),
        machine_type=now.agent_machine_type,
        network_status=now.agent_network_status,
        mitigation_mode=_first(now.agent_mitigation_mode, then.agent_mitigation_mode),
        agent_id=_first(now.agent_id, then.agent_id),
        agent_uuid=_first(now.agent_uuid, then.agent_uuid),
        agent_version=_first(now.agent_version, then.agent_version),
        last_logged_in_user=then.agent_last_logged_in_user_name,
        ipv4=_unique(addresses),
        external_ip=then.external_ip,
        is_active=now.agent_is_active,
        is_decommissioned=now.agent_is_decommissioned,
        decommissioned_at=now.agent_decommissioned_at,
    )


def _container_v21(raw: RawThreatV21) -> ContainerInfo | None:
    # Every non-container threat carries an all-null containerInfo.
    info = raw.container_info
    if info is None or not (info.id or info.image or info.name or info.labels):
        return None
    return ContainerInfo(
        id=info.id, image=info.image, name=info.name, labels=info.labels
    )


def _from_v20(raw: RawThreatV20, threat_id: str) -> Threat:
    return Threat(
        id=threat_id,
        name=_first(raw.threat_name, raw.file_display_name) or "",
        classification=raw.classification,
        classification_source=raw.classification_source,
        confidence_level=raw.confidence_level,
        analyst_verdict=raw.analyst_verdict,
        incident_status=_incident_status_v20(raw),
        mitigation_status=raw.mitigation_status,
        engines=raw.engines,
        # v2.0 spells the values in camelCase (agentPolicy); v2.1 uses agent_policy.
        initiated_by=_CAMEL_HUMP.sub("_", raw.initiated_by).lower()
        if raw.initiated_by is not None
        else None,
        created_at=raw.created_at,
        updated_at=raw.updated_at,
        identified_at=raw.created_date,
        file_path=raw.file_path,
        sha1=raw.file_content_hash,
        sha256=raw.file_sha256,
        command_line=raw.malicious_process_arguments,
        process_user=raw.username,
        storyline=raw.malicious_group_id,
        publisher=raw.publisher,
        certificate_id=raw.cert_id,
        external_ticket_id=raw.external_ticket_id,
        endpoint=Endpoint(
            computer_name=raw.agent_computer_name,
            os_type=raw.agent_os_type,
            os_name=raw.agent_os_name,
            domain=raw.agent_domain,
            machine_type=raw.agent_machine_type,
            network_status=raw.agent_network_status,
            mitigation_mode=raw.mitigation_mode,
            agent_id=raw.agent_id,
            agent_uuid=raw.agent_uuid,
            agent_version=raw.agent_version,
            ipv4=_unique(raw.agent_ip),
            is_active=raw.agent_is_active,
            is_decommissioned=raw.agent_is_decommissioned,
        ),
        scope=Scope(
            account_id=raw.account_id,
            account_name=raw.account_name,
            site_id=raw.site_id,
            site_name=raw.site_name,
        ),
        indicators=_indicators(raw.indicators),
        # The report names every possible action; a null status means not taken.
        mitigation_actions=[
            MitigationAction(action=action, status=entry.status)
            for action, entry in (raw.mitigation_report or {}).items()
            if entry is not None and entry.status is not None
        ],
        api_version="2.0",
    )


def _incident_status_v20(raw: RawThreatV20) -> str | None:
    # v2.0 has only the `resolved` flag where v2.1 has incidentStatus.
    if raw.incident_status is not None or raw.resolved is None:
        return raw.incident_status
    return "resolved" if raw.resolved else "unresolved"
