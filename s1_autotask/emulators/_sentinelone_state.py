"""The state of one emulated SentinelOne console: its token, threats, notes, tickets.

Threats are kept as the raw objects the v2.1 API returns, keyed by id, behind one
lock, so the emulator can be served from a background thread while a test adds or
changes threats from another. Everything handed out is a copy.
"""

import copy
import hmac
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Self

from s1_autotask.emulators._sentinelone_errors import EmulatedApiError
from s1_autotask.emulators._sentinelone_query import (
    Page,
    PageRequest,
    ThreatFilter,
    format_timestamp,
    paginate,
    parse_timestamp,
)
from s1_autotask.sentinelone.parse import THREAT_ID

__all__ = ["DEFAULT_TOKEN", "EmulatorDataError", "SentinelOneEmulator"]

DEFAULT_TOKEN = "emulator-s1-token"  # noqa: S105 - documented demo value, guards nothing
# The console user a write-back is attributed to; a real console names the token's
# owner.
_NOTE_CREATOR = "Emulator API user"
_NOTE_CREATOR_ID = "1000000000000000001"
_FIRST_NOTE_ID = 2_000_000_000_000_000_001
_SAMPLES = ("data", "threats")


class EmulatorDataError(ValueError):
    """A threat file cannot be read, or holds an object the emulator cannot serve."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SentinelOneEmulator:
    """The threats of one emulated console, safe to share between threads.

    Args:
        threats: raw v2.1 threat objects; each needs a string `id` and a
            `threatInfo` with ISO-8601 `createdAt` and `updatedAt`.
        token: the API token the console accepts (`Authorization: ApiToken ...`).
        write_backs_bump_updated_at: whether a note or a new external ticket id
            moves `threatInfo.updatedAt` to now. Public sources do not say whether
            SentinelOne does this; it is on by default because a poller must then
            not mistake its own write-back for news.
        now: the clock behind `updatedAt` bumps and note times.
    """

    def __init__(
        self,
        threats: Iterable[Mapping[str, Any]] = (),
        *,
        token: str = DEFAULT_TOKEN,
        write_backs_bump_updated_at: bool = True,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._token = token
        self.write_backs_bump_updated_at = write_backs_bump_updated_at
        self._now = now
        self._lock = threading.RLock()
        self._seed = _unique(
            (checked_threat(raw, f"threats[{index}]"), f"threats[{index}]")
            for index, raw in enumerate(threats)
        )
        self._threats: dict[str, dict[str, Any]] = {}
        self._notes: dict[str, list[dict[str, Any]]] = {}
        self._note_ids = itertools.count(_FIRST_NOTE_ID)
        self.reset()

    @classmethod
    def from_samples(cls, **options: Any) -> Self:
        """An emulator serving the bundled sample threats."""
        folder = resources.files("s1_autotask.emulators").joinpath(*_SAMPLES)
        threats = []
        for entry in sorted(folder.iterdir(), key=lambda item: item.name):
            if not entry.name.endswith(".json"):
                continue
            raw = json.loads(entry.read_text(encoding="utf-8"))
            # The v2.0 flat sample is skipped, not converted: the v2.1 API never
            # returns that shape, and a conversion would invent the nested fields.
            if isinstance(raw, dict) and "threatInfo" in raw:
                threats.append(raw)
        return cls(threats, **options)

    @classmethod
    def from_files(cls, paths: Iterable[Path], **options: Any) -> Self:
        """An emulator serving the threats in `paths`.

        A file holds one threat, a list of threats or an API answer
        `{"data": [...]}`; a folder stands for the `*.json` files in it.
        """
        found = [
            (raw, where)
            for path in _expand(paths)
            for raw, where in _read_threat_file(path)
        ]
        # Checked here so that a duplicate names its file, not a list index.
        checked = _unique((checked_threat(raw, where), where) for raw, where in found)
        return cls(checked, **options)

    def reset(self) -> None:
        """Forget notes, ticket ids and added or changed threats: back to the seed."""
        with self._lock:
            self._threats = {raw["id"]: copy.deepcopy(raw) for raw in self._seed}
            self._notes = {}

    # Authentication

    def authenticate(self, authorization: str | None) -> bool:
        """Tell whether an `Authorization` header carries this console's token."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.casefold() != "apitoken" or not self._token:
            return False
        return hmac.compare_digest(token.strip().encode(), self._token.encode())

    # What tests and the demo change and read back

    def add_threat(self, raw: Mapping[str, Any]) -> str:
        """Add a raw v2.1 threat, as if SentinelOne had just indexed it; return its id.

        Its `updatedAt` is kept as given, so a threat indexed late (updated in the
        past) can be simulated.
        """
        threat = checked_threat(raw, "threat")
        with self._lock:
            if threat["id"] in self._threats:
                msg = f"Threat {threat['id']} exists already; use update_threat."
                raise EmulatorDataError(msg)
            self._threats[threat["id"]] = threat
        return str(threat["id"])

    def update_threat(self, threat_id: str, /, **changes: Any) -> dict[str, Any]:
        """Change `threatInfo` fields of a threat and return a copy of it.

        `updatedAt` moves to now unless `changes` gives one (a string or datetime).
        """
        changes = {
            key: format_timestamp(value) if isinstance(value, datetime) else value
            for key, value in changes.items()
        }
        changes.setdefault("updatedAt", format_timestamp(self._now()))
        with self._lock:
            current = self._require(threat_id)
            changed = copy.deepcopy(current)
            changed["threatInfo"].update(copy.deepcopy(changes))
            self._threats[threat_id] = checked_threat(changed, f"threat {threat_id}")
            return copy.deepcopy(self._threats[threat_id])

    def threat(self, threat_id: str) -> dict[str, Any] | None:
        """A copy of the threat with this id, or None."""
        with self._lock:
            found = self._threats.get(threat_id)
            return copy.deepcopy(found) if found is not None else None

    def threats(self) -> list[dict[str, Any]]:
        """Copies of every threat, in the order they were added."""
        with self._lock:
            return [copy.deepcopy(raw) for raw in self._threats.values()]

    def notes(self, threat_id: str) -> list[dict[str, Any]]:
        """Copies of the notes written to a threat, oldest first."""
        with self._lock:
            return copy.deepcopy(self._notes.get(threat_id, []))

    def external_ticket_id(self, threat_id: str) -> str | None:
        """The external ticket id stored on a threat, or None."""
        with self._lock:
            value = self._require(threat_id)["threatInfo"].get("externalTicketId")
            return value if isinstance(value, str) else None

    # What the API endpoints do

    def list_threats(self, selection: ThreatFilter, request: PageRequest) -> Page:
        """One page of the threats `selection` matches."""
        with self._lock:
            matching = [raw for raw in self._threats.values() if selection.matches(raw)]
            page = paginate(matching, request, _threat_sort_value)
            return Page(copy.deepcopy(page.items), page.next_cursor, page.total)

    def list_notes(self, threat_id: str, request: PageRequest) -> Page:
        """One page of a threat's notes; a threat without notes has an empty list."""
        with self._lock:
            page = paginate(self._notes.get(threat_id, []), request, _note_sort_value)
            return Page(copy.deepcopy(page.items), page.next_cursor, page.total)

    def write_note(self, selection: ThreatFilter, text: str) -> int:
        """Add a note to every matching threat; return how many got one."""
        with self._lock:
            now = format_timestamp(self._now())
            targets = [raw for raw in self._threats.values() if selection.matches(raw)]
            for raw in targets:
                note = {
                    "id": str(next(self._note_ids)),
                    "text": text,
                    "createdAt": now,
                    "updatedAt": now,
                    "creator": _NOTE_CREATOR,
                    "creatorId": _NOTE_CREATOR_ID,
                    "edited": False,
                }
                self._notes.setdefault(raw["id"], []).append(note)
                self._touch(raw, now)
            return len(targets)

    def write_external_ticket_id(self, selection: ThreatFilter, ticket_id: str) -> int:
        """Set the external ticket id on every matching threat; return how many changed.

        A threat that already carries this ticket id is not counted, which is how
        SentinelOne reports a write-back that changed nothing.
        """
        with self._lock:
            now = format_timestamp(self._now())
            affected = 0
            for raw in self._threats.values():
                info = raw["threatInfo"]
                if (
                    not selection.matches(raw)
                    or info.get("externalTicketId") == ticket_id
                ):
                    continue
                info["externalTicketId"] = ticket_id
                info["externalTicketExists"] = True
                self._touch(raw, now)
                affected += 1
            return affected

    def _touch(self, raw: dict[str, Any], now: str) -> None:
        if self.write_backs_bump_updated_at:
            raw["threatInfo"]["updatedAt"] = now

    def _require(self, threat_id: str) -> dict[str, Any]:
        found = self._threats.get(threat_id)
        if found is None:
            msg = f"The emulator has no threat {threat_id}."
            raise KeyError(msg)
        return found


def checked_threat(raw: object, where: str) -> dict[str, Any]:
    """Copy a raw threat after checking the emulator can filter and sort it."""
    if not isinstance(raw, Mapping):
        msg = f"{where} is not a threat object."
        raise EmulatorDataError(msg)
    info = raw.get("threatInfo")
    if not isinstance(info, Mapping):
        kind = "a v2.0 flat threat" if "agentComputerName" in raw else "not a threat"
        msg = (
            f"{where} is {kind}: it has no threatInfo object, and the v2.1 API only "
            "serves threats that do."
        )
        raise EmulatorDataError(msg)
    threat_id = raw.get("id")
    if not isinstance(threat_id, str) or not THREAT_ID.fullmatch(threat_id):
        msg = f"{where} has no usable id: a string of letters and digits is needed."
        raise EmulatorDataError(msg)
    for field in ("createdAt", "updatedAt"):
        try:
            parse_timestamp(info.get(field), field)
        except EmulatedApiError:
            msg = f"{where} (threat {threat_id}) needs threatInfo.{field} in ISO-8601."
            raise EmulatorDataError(msg) from None
    return copy.deepcopy(dict(raw))


def _unique(
    threats: Iterable[tuple[dict[str, Any], str]],
) -> list[dict[str, Any]]:
    seen: dict[str, str] = {}
    kept = []
    for raw, where in threats:
        if raw["id"] in seen:
            msg = (
                f"{where} repeats threat {raw['id']}, first given in {seen[raw['id']]}."
            )
            raise EmulatorDataError(msg)
        seen[raw["id"]] = where
        kept.append(raw)
    return kept


def _expand(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.glob("*.json"))
        else:
            yield path


def _read_threat_file(path: Path) -> list[tuple[object, str]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"Cannot read the threat file {path}: {exc.strerror or exc}."
        raise EmulatorDataError(msg) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"The threat file {path} is not valid JSON: {exc}."
        raise EmulatorDataError(msg) from exc

    if isinstance(payload, dict) and "threatInfo" not in payload and "data" in payload:
        items, prefix = payload["data"], f"{path}: data"
    elif isinstance(payload, list):
        items, prefix = payload, f"{path}: "
    else:
        return [(payload, str(path))]
    if not isinstance(items, list):
        msg = f"{prefix} is not a list of threats."
        raise EmulatorDataError(msg)
    return [(item, f"{prefix}[{index}]") for index, item in enumerate(items)]


def _threat_sort_value(raw: Mapping[str, Any], field: str) -> str | None:
    return None if field == "id" else raw["threatInfo"][field]


def _note_sort_value(note: Mapping[str, Any], field: str) -> str | None:
    return None if field == "id" else note[field]
