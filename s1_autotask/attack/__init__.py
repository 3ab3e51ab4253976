"""MITRE ATT&CK lookups and the ATT&CK analysis of a SentinelOne threat."""

from s1_autotask.attack.analysis import (
    AttackAnalysis,
    MitigationFinding,
    TechniqueFinding,
    analyze_techniques,
    analyze_threat,
)
from s1_autotask.attack.data import (
    AttackData,
    AttackDataError,
    Mitigation,
    Tactic,
    Technique,
    get_attack_data,
    technique_url,
)

__all__ = [
    "AttackAnalysis",
    "AttackData",
    "AttackDataError",
    "Mitigation",
    "MitigationFinding",
    "Tactic",
    "Technique",
    "TechniqueFinding",
    "analyze_techniques",
    "analyze_threat",
    "get_attack_data",
    "technique_url",
]
