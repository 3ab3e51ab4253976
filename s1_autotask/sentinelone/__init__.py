"""SentinelOne threats: normalised models, payload parsing and their errors."""

from s1_autotask.sentinelone.errors import SentinelOneError, ThreatPayloadError
from s1_autotask.sentinelone.models import (
    ContainerInfo,
    Endpoint,
    Indicator,
    IndicatorTactic,
    IndicatorTechnique,
    MitigationAction,
    Scope,
    Threat,
)
from s1_autotask.sentinelone.parse import (
    MAX_THREATS_PER_CALL,
    parse_threats,
    parse_threats_json,
)

__all__ = [
    "MAX_THREATS_PER_CALL",
    "ContainerInfo",
    "Endpoint",
    "Indicator",
    "IndicatorTactic",
    "IndicatorTechnique",
    "MitigationAction",
    "Scope",
    "SentinelOneError",
    "Threat",
    "ThreatPayloadError",
    "parse_threats",
    "parse_threats_json",
]
