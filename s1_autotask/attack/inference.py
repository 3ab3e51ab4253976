"""Techniques that a SentinelOne classification implies on its own.

Static and custom-rule detections often carry no technique data at all. A few
classifications name behaviour that ATT&CK has a technique for, so much so that the
classification cannot hold without the technique: those, and only those, are inferred
here. Each rule states why it holds. An inferred technique is always marked as such in
the ticket, never passed off as something SentinelOne reported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InferenceRule:
    """A classification, the technique it implies, and why the implication holds."""

    classifications: frozenset[str]
    technique_id: str
    why: str


RULES: tuple[InferenceRule, ...] = (
    InferenceRule(
        frozenset({"ransomware"}),
        "T1486",
        "ransomware is malware that encrypts the victim's data to extort them, which "
        "is what Data Encrypted for Impact describes",
    ),
    InferenceRule(
        frozenset({"cryptominer", "coinminer", "miner"}),
        "T1496",
        "a coin miner exists to spend the host's compute for the attacker, which is "
        "what Resource Hijacking describes",
    ),
    InferenceRule(
        frozenset({"downloader"}),
        "T1105",
        "a downloader exists to bring further tools or payloads onto the host, which "
        "is what Ingress Tool Transfer describes",
    ),
    InferenceRule(
        frozenset({"keylogger"}),
        "T1056.001",
        "a keylogger records keystrokes by definition, which is what Input Capture: "
        "Keylogging describes",
    ),
)


def inferred_techniques(classification: str | None) -> list[InferenceRule]:
    """The rules that apply to a classification (case is ignored)."""
    if not classification:
        return []
    wanted = classification.strip().casefold()
    return [rule for rule in RULES if wanted in rule.classifications]
