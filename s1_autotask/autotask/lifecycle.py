"""A threat's ticket through its life: what changed since the ticket last said, and
what to do about it.

The ticket is the record. Its description and every note this service writes end
with one state line, so whichever worker handles the next update, after whatever
crash, reads what the ticket last said and compares it with the threat now. Nothing
else has to be kept anywhere, and a redelivery whose state did not change does
nothing.

What counts as a change is what an analyst acts on: confidence, mitigation, incident
status, verdict, ATT&CK techniques and mitigation actions. Our own write-backs to
SentinelOne (the ticket number, a note) bump the threat's ``updatedAt`` without
changing any of these, so they come back round as "unchanged".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from s1_autotask.text import clean

if TYPE_CHECKING:
    from s1_autotask.attack.analysis import AttackAnalysis
    from s1_autotask.sentinelone.models import Threat

STATE_PREFIX = "s1-autotask state (kept by the integration, do not edit): "
# Enough to name every technique of a real threat; a list longer than this is kept
# as a count and a digest, so the state line stays short.
MAX_LISTED = 40
_NOTE_TITLE_LIMIT = 250

Action = Literal["unchanged", "updated", "closed", "reopened"]


class ThreatState(BaseModel):
    """What the ticket last said about the threat, in the fields that matter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    confidence: str | None = None
    mitigation: str | None = None
    incident: str | None = None
    verdict: str | None = None
    techniques: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    updated_at: datetime | None = Field(
        default=None,
        description="SentinelOne's updatedAt of this state: orders, never compared.",
    )

    @classmethod
    def of(cls, threat: Threat, analysis: AttackAnalysis) -> ThreatState:
        """The state of a threat as SentinelOne reports it now."""
        actions = {
            f"{action.action}: {action.status or 'unknown'}"
            for action in threat.mitigation_actions
            if action.action
        }
        return cls(
            confidence=_norm(threat.confidence_level),
            mitigation=_norm(threat.mitigation_status),
            incident=_norm(threat.incident_status),
            verdict=_norm(threat.analyst_verdict),
            techniques=_bounded(t.id for t in analysis.techniques),
            actions=_bounded(actions),
            updated_at=threat.updated_at,
        )

    def line(self) -> str:
        """The state line that ends a description or a note."""
        return STATE_PREFIX + self.model_dump_json()

    @classmethod
    def read(cls, text: str | None) -> ThreatState | None:
        """The last state line in ``text``, or None when it has none we can read."""
        for line in reversed((text or "").splitlines()):
            if not line.startswith(STATE_PREFIX):
                continue
            try:
                return cls.model_validate_json(line[len(STATE_PREFIX) :])
            except ValidationError:
                # A hand-edited line; an older one, or none, is the next best.
                continue
        return None

    def is_older_than(self, other: ThreatState | None) -> bool:
        """Whether this state was reported before ``other`` (deliveries reorder).

        A state without a time is older than one with: it cannot show it is not.
        """
        if other is None or other.updated_at is None:
            return False
        return self.updated_at is None or self.updated_at < other.updated_at

    @property
    def closes_ticket(self) -> bool:
        """Resolved in SentinelOne, or marked a false positive by an analyst."""
        return self.incident == "resolved" or self.verdict == "false_positive"


@dataclass(frozen=True)
class TicketPlan:
    """What to do with an existing ticket: a note, and perhaps a status to set."""

    action: Action
    changes: tuple[str, ...] = ()
    note_title: str | None = None
    note_text: str | None = None
    status_label: str | None = None

    def with_remarks(self, remarks: Sequence[str]) -> TicketPlan:
        """The same plan, its note telling ``remarks`` just before the state line."""
        if not remarks or self.note_text is None:
            return self
        body, _, state = self.note_text.rpartition("\n\n")
        text = "\n".join([body, "", *remarks, "", state])
        return replace(self, note_text=text)


@dataclass(frozen=True)
class KnownState:
    """What the ticket last said, and whether one of our notes said it."""

    state: ThreatState | None
    from_note: bool


def latest_state(
    description: str | None, notes: Iterable[Mapping[str, Any]]
) -> KnownState:
    """What the ticket last said: its newest note with a state line, else its text."""
    for note in sorted(notes, key=_note_order, reverse=True):
        state = ThreatState.read(note.get("description"))
        if state is not None:
            return KnownState(state, from_note=True)
    return KnownState(ThreatState.read(description), from_note=False)


def ticket_link(web_url: str | None, ticket_number: str | None) -> str | None:
    """The address that opens a ticket in Autotask's web UI, by ticket number."""
    if not web_url or not ticket_number:
        return None
    query = urlencode({"Code": "OpenTicketDetail", "TicketNumber": ticket_number})
    base = web_url if web_url.endswith("/") else web_url + "/"
    return f"{base}Autotask/AutotaskExtend/ExecuteCommand.aspx?{query}"


def describe_changes(before: ThreatState | None, after: ThreatState) -> list[str]:
    """One sentence per change, from what to what, in the order an analyst reads."""
    if before is None:
        return ["The ticket carried no state from this integration; recorded it now."]
    found: list[str] = []
    for field, label in _FIELDS:
        old, new = getattr(before, field), getattr(after, field)
        if old != new:
            found.append(f"{label}: {_shown(old)} -> {_shown(new)}")
    found += _list_changes("ATT&CK techniques", before.techniques, after.techniques)
    found += _list_changes("Mitigation actions", before.actions, after.actions)
    return found


def plan_update(
    known: KnownState,
    current: ThreatState,
    *,
    ticket_closed: bool,
    close_status: str | None,
    reopen_status: str | None,
) -> TicketPlan:
    """Decide what an existing ticket needs, given what it last said.

    The status is changed only together with a change in the threat, so the
    service never fights a person: a ticket an analyst reopens stays open until
    the threat changes again, one an analyst closes stays closed unless the threat
    comes back from resolved. The one exception is the first close of a ticket
    made for an already resolved threat, which has no note of ours yet.
    """
    last = known.state
    if current.is_older_than(last):
        # A delivery overtaken by a newer one the ticket already told: applying it
        # would walk the story backwards.
        return TicketPlan(action="unchanged")
    changes = describe_changes(last, current)
    closing = close_status is not None and current.closes_ticket and not ticket_closed
    if closing and (changes or not known.from_note):
        why = _closing_reason(current)
        return _plan("closed", changes, f"Closed: {why}", why, close_status, current)
    came_back = last is not None and last.closes_ticket and not current.closes_ticket
    if ticket_closed and came_back and reopen_status:
        why = "the threat is active again in SentinelOne"
        return _plan(
            "reopened", changes, f"Reopened: {why}", why, reopen_status, current
        )
    if changes:
        title = "SentinelOne update: " + "; ".join(changes)
        return _plan("updated", changes, title, None, None, current)
    return TicketPlan(action="unchanged")


def refreshed_title(current: str | None, new: str) -> str | None:
    """The new title when the ticket's title is still the one this service wrote.

    Titles end with the threat's state in brackets, so a title whose part before
    them is unchanged is ours and is kept current. One a person rewrote is theirs,
    and is left alone.
    """
    if not current or current == new:
        return None
    return new if _headline(current) == _headline(new) else None


def _headline(title: str) -> str:
    head, bracket, _ = title.rpartition(" (")
    return head if bracket and title.endswith(")") else title


def _plan(
    action: Action,
    changes: list[str],
    title: str,
    why: str | None,
    status: str | None,
    current: ThreatState,
) -> TicketPlan:
    lines = [f"{why[0].upper()}{why[1:]}." if why else "The threat changed."]
    if status:
        lines.append(f"Ticket status set to {status}.")
    if changes:
        lines += ["", "Changes in SentinelOne:", *(f"- {c}" for c in changes)]
    lines += ["", current.line()]
    return TicketPlan(
        action=action,
        changes=tuple(changes),
        note_title=clean(title, _NOTE_TITLE_LIMIT),
        note_text="\n".join(lines),
        status_label=status,
    )


def _note_order(note: Mapping[str, Any]) -> int:
    # Autotask ids grow with time; creation times are strings whose trailing zeros
    # the API may trim, so they do not sort reliably.
    identifier = note.get("id")
    return identifier if isinstance(identifier, int) else -1


def _closing_reason(state: ThreatState) -> str:
    if state.verdict == "false_positive":
        return "an analyst marked the threat a false positive in SentinelOne"
    return "SentinelOne marks the incident resolved"


_FIELDS = (
    ("confidence", "Confidence"),
    ("mitigation", "Mitigation"),
    ("incident", "Incident status"),
    ("verdict", "Analyst verdict"),
)


def _list_changes(label: str, old: tuple[str, ...], new: tuple[str, ...]) -> list[str]:
    if old == new:
        return []
    if _is_digest(old) or _is_digest(new):
        return [f"{label} changed: now {_count(new)}"]
    added = [v for v in new if v not in old]
    gone = [v for v in old if v not in new]
    found = []
    if added:
        found.append(f"{label} added: {', '.join(added)}")
    if gone:
        found.append(f"{label} no longer reported: {', '.join(gone)}")
    return found


def _bounded(values: Iterable[str]) -> tuple[str, ...]:
    listed = sorted(set(values))
    if len(listed) <= MAX_LISTED:
        return tuple(listed)
    digest = hashlib.sha256(json.dumps(listed).encode()).hexdigest()[:16]
    return (f"{len(listed)} values, digest {digest}",)


def _is_digest(values: tuple[str, ...]) -> bool:
    return len(values) == 1 and ", digest " in values[0]


def _count(values: tuple[str, ...]) -> str:
    if _is_digest(values):
        return values[0].split(",", 1)[0]
    return f"{len(values)} values"


def _norm(value: str | None) -> str | None:
    return value.strip().lower() if value and value.strip() else None


def _shown(value: str | None) -> str:
    return (value or "none").replace("_", " ")
