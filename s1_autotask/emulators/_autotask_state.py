"""The state of one emulated Autotask tenant: credentials, records, limits, writes.

Everything a request can read or change lives here behind one lock, so the
emulator can be served from a background thread while a test or the demo reads
its tickets from another. The fault plan and the counters a benchmark reads live
here too.
"""

import hmac
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from s1_autotask.emulators._autotask_entities import (
    CONFIGURATION_ITEMS,
    TICKET_ADDITIONAL_CONFIGURATION_ITEMS,
    TICKET_NOTES,
    TICKETS,
    EntitySpec,
)
from s1_autotask.emulators._autotask_errors import EmulatedApiError, server_error
from s1_autotask.emulators._autotask_faults import (
    EmulatorCounters,
    FaultInjector,
    FaultKind,
    FaultPlan,
    InjectedFault,
    unexpected_error,
)
from s1_autotask.emulators._autotask_query import project
from s1_autotask.emulators._autotask_seed import (
    build_tables,
    load_bundled_fields,
    load_seed,
)
from s1_autotask.emulators._autotask_tickets import (
    FieldMetadata,
    TicketRules,
    coerce_body,
    format_datetime,
)

__all__ = [
    "DEFAULT_INTEGRATION_CODE",
    "DEFAULT_SECRET",
    "DEFAULT_USERNAME",
    "AutotaskEmulator",
]

logger = logging.getLogger(__name__)

DEFAULT_USERNAME = "api-user@example.com"
DEFAULT_SECRET = "emulator-secret"  # noqa: S105 - documented demo value, guards nothing
DEFAULT_INTEGRATION_CODE = "EMULATOR-CODE"
ZONE_ERROR = "Zone information could not be determined"
# SOAP-era wording; REST answers a bad code with a 500 whose text is not captured.
INTEGRATION_CODE_ERROR = "IntegrationCode is invalid."
THRESHOLD_WINDOW_SECONDS = 3600.0
_WRITE_COUNTERS = ("tickets_created", "tickets_updated", "notes_created")
_FIRST_IDS = {
    TICKETS.name: 128901,
    TICKET_NOTES.name: 30777601,
    TICKET_ADDITIONAL_CONFIGURATION_ITEMS.name: 4101,
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AutotaskEmulator:
    """The state of one emulated Autotask tenant, safe to share between threads.

    Args:
        seed: entity lists as read by `load_seed`; None serves an empty tenant.
        username / secret / integration_code: the API user the tenant accepts;
            the defaults are the documented demo values.
        latency_seconds: delay added to every authenticated call, to provoke the
            thread limit in tests.
        thread_limit / thread_limit_status: concurrent calls allowed per
            (integration code, entity) and the status of the call that exceeds them.
        request_threshold / threshold_status / threshold_retry_after: requests
            allowed per rolling hour, the status once exceeded, and an optional
            Retry-After header value in seconds.
        threshold_delays: seconds added at 50 % and at 75 % of the threshold.
        strict_operators: refuse unknown filter operators instead of ignoring them.
        faults: how often authenticated calls fail on purpose; None for never.
            Change it while serving through the `faults` property.
    """

    def __init__(
        self,
        seed: Mapping[str, Any] | None = None,
        *,
        username: str = DEFAULT_USERNAME,
        secret: str = DEFAULT_SECRET,
        integration_code: str = DEFAULT_INTEGRATION_CODE,
        latency_seconds: float = 0.0,
        thread_limit: int = 3,
        thread_limit_status: int = 429,
        request_threshold: int = 10_000,
        threshold_status: int = 429,
        threshold_retry_after: int | None = None,
        threshold_delays: tuple[float, float] = (0.5, 1.0),
        strict_operators: bool = False,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.username = username
        self._secret = secret
        self.integration_code = integration_code
        self.latency_seconds = latency_seconds
        self.thread_limit = thread_limit
        self.thread_limit_status = thread_limit_status
        self.request_threshold = request_threshold
        self.threshold_status = threshold_status
        self.threshold_retry_after = threshold_retry_after
        self.threshold_delays = threshold_delays
        self.strict_operators = strict_operators
        self._clock = clock
        self._now = now

        self._lock = threading.RLock()
        self._seed: Mapping[str, Any] = seed or {}
        self._tables = build_tables(self._seed)
        self._in_flight: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._requests: deque[float] = deque()
        self._faults = FaultInjector(faults)
        self._writes = dict.fromkeys(_WRITE_COUNTERS, 0)
        self.ticket_fields = FieldMetadata(load_bundled_fields("ticket-fields.json"))
        self.note_fields = FieldMetadata(load_bundled_fields("ticket-note-fields.json"))
        self._rules = TicketRules(
            TICKETS, self.ticket_fields, TICKET_NOTES, self.note_fields, self
        )

    @classmethod
    def from_seed(cls, path: Path | None = None, **options: Any) -> "AutotaskEmulator":
        """Build an emulator from a seed file (the bundled seed when `path` is None)."""
        return cls(load_seed(path), **options)

    def reset(self) -> None:
        """Forget created tickets, notes and usage: back to the seeded tenant.

        The fault plan stays in force, its random source restarted, so a run
        after a reset fails as the first one did.
        """
        tables = build_tables(self._seed)
        with self._lock:
            self._tables = tables
            self._requests.clear()
            self._writes = dict.fromkeys(_WRITE_COUNTERS, 0)
        self._faults.restart()

    # Faults and counters

    @property
    def faults(self) -> FaultPlan:
        """The fault plan in force; a plan without faults unless one was given.

        Assign a plan to switch while serving, or None to stop faults; the
        counters carry on across the switch.
        """
        return self._faults.plan

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        self._faults.use(plan)

    @property
    def counters(self) -> EmulatorCounters:
        """Calls seen, faults injected per kind and writes saved, as of now."""
        requests, faults = self._faults.counts()
        with self._lock:
            writes = dict(self._writes)
        return EmulatorCounters(requests=requests, faults=faults, **writes)

    def draw_fault(
        self, method: str, path: str, *, write: bool
    ) -> InjectedFault | None:
        """Count one authenticated call and pick the fault it suffers, if any."""
        return self._faults.draw(method, path, write=write)

    def fault_error(self, fault: InjectedFault, endpoint: str) -> EmulatedApiError:
        """The error answering a call refused by `fault`."""
        if fault.kind is FaultKind.THREAD_LIMIT:
            return self.thread_limit_error(endpoint)
        if fault.kind is FaultKind.RATE_LIMITED:
            return self._threshold_error(status=429)
        if fault.kind is FaultKind.SERVER_ERROR:
            return unexpected_error(fault.error_id)
        msg = f"Fault {fault.kind} is not answered with an error."
        raise ValueError(msg)

    # Authentication and limits

    def knows_user(self, username: str) -> bool:
        """Whether zone discovery would find this API user."""
        return username.casefold() == self.username.casefold()

    def authenticate(self, headers: Mapping[str, str]) -> None:
        """Check the three auth headers, failing as Autotask does for each."""
        username = headers.get("username")
        secret = headers.get("secret")
        if username is None and secret is None:
            raise EmulatedApiError(401)
        if username is None or not self.knows_user(username):
            raise server_error(ZONE_ERROR)
        if secret is None or not hmac.compare_digest(secret, self._secret):
            raise EmulatedApiError(401)
        code = headers.get("apiintegrationcode") or ""
        if not hmac.compare_digest(code, self.integration_code):
            raise server_error(INTEGRATION_CODE_ERROR)

    def count_request(self) -> float:
        """Count one call against the hourly threshold; return the delay to add."""
        with self._lock:
            now = self._clock()
            while (
                self._requests and self._requests[0] <= now - THRESHOLD_WINDOW_SECONDS
            ):
                self._requests.popleft()
            if len(self._requests) >= self.request_threshold:
                raise self._threshold_error()
            self._requests.append(now)
            used = len(self._requests) / self.request_threshold

        # Autotask slows responses down as a tenant nears its threshold.
        if used >= 0.75:
            return self.threshold_delays[1]
        if used >= 0.5:
            return self.threshold_delays[0]
        return 0.0

    def threshold_information(self) -> dict[str, int]:
        """The `ThresholdInformation` body for the current rolling hour."""
        with self._lock:
            now = self._clock()
            used = sum(1 for t in self._requests if t > now - THRESHOLD_WINDOW_SECONDS)
        return {
            "externalRequestThreshold": self.request_threshold,
            "requestThresholdTimeframe": 60,
            "currentTimeframeRequestCount": used,
        }

    @contextmanager
    def thread_slot(self, endpoint: str) -> Iterator[None]:
        """Hold one of the concurrent-call slots of `endpoint`, or refuse the call."""
        key = (self.integration_code, endpoint.lower())
        with self._lock:
            if self._in_flight[key] >= self.thread_limit:
                raise self.thread_limit_error(endpoint)
            self._in_flight[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[key] -= 1

    def thread_limit_error(self, endpoint: str) -> EmulatedApiError:
        """The refusal of a call beyond the thread limit of `endpoint`."""
        text = (
            f"The Autotask API thread threshold of {self.thread_limit} threads "
            f"has been exceeded. Endpoint: {endpoint}. Error code: Itgenatr005"
        )
        return EmulatedApiError(self.thread_limit_status, [text])

    def _threshold_error(self, status: int | None = None) -> EmulatedApiError:
        # The real wording and status are not documented; this follows the docs' terms.
        text = (
            f"The API request threshold of {self.request_threshold} requests per 60 "
            "minutes has been exceeded."
        )
        headers = {}
        if self.threshold_retry_after is not None:
            headers["Retry-After"] = str(self.threshold_retry_after)
        status = self.threshold_status if status is None else status
        return EmulatedApiError(status, [text], headers=headers)

    # Reading

    def find(self, entity: str, item_id: int) -> dict[str, Any] | None:
        """Return a copy of one stored record, or None."""
        with self._lock:
            record = self._tables[entity].get(item_id)
            return dict(record) if record is not None else None

    def records(self, entity: str) -> list[dict[str, Any]]:
        """Return copies of every stored record of `entity`."""
        with self._lock:
            return [dict(record) for record in self._tables[entity].values()]

    def get_item(self, entity: EntitySpec, item_id: int) -> dict[str, Any] | None:
        """Return one record rendered as `GET {Entity}/{id}` returns it."""
        record = self.find(entity.name, item_id)
        return project(record, entity, None) if record is not None else None

    @property
    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket, as the API returns it, in id order."""
        return self._rendered(TICKETS)

    @property
    def ticket_notes(self) -> list[dict[str, Any]]:
        """Every ticket note, as the API returns it, in id order."""
        return self._rendered(TICKET_NOTES)

    def _rendered(self, entity: EntitySpec) -> list[dict[str, Any]]:
        rows = sorted(self.records(entity.name), key=lambda r: r["id"])
        return [project(row, entity, None) for row in rows]

    # Writing

    def create_ticket(self, body: object) -> int:
        """Validate and store a new ticket; return its id."""
        row = coerce_body(body, TICKETS)
        row.pop("id", None)
        with self._lock:
            self._rules.check_ticket(row)
            moment = self._now()
            now = format_datetime(moment)
            ticket_id = self._next_id(TICKETS)
            number = self._ticket_number(moment)
            row.update(
                id=ticket_id,
                ticketNumber=number,
                createDate=now,
                lastActivityDate=now,
                creatorResourceID=self._api_resource_id(),
                creatorType=1,
            )
            row.setdefault("userDefinedFields", [])
            self._tables[TICKETS.name][ticket_id] = row
            self._writes["tickets_created"] += 1
        logger.info("Emulator created ticket %s (%s)", ticket_id, number)
        return ticket_id

    def update_ticket(self, body: object, *, replace: bool = False) -> int:
        """Apply a PATCH (changed fields) or PUT (all writable fields) to a ticket."""
        row = coerce_body(body, TICKETS)
        ticket_id = row.pop("id", None)
        if ticket_id is None:
            msg = "An id is required to update a Ticket."
            raise server_error(msg)
        with self._lock:
            current = self._tables[TICKETS.name].get(int(ticket_id))
            if current is None:
                msg = "No matching records found."
                raise server_error(msg)
            if replace:
                kept = {
                    s.name: current.get(s.name) for s in TICKETS.fields if s.read_only
                }
                kept["userDefinedFields"] = current.get("userDefinedFields", [])
                updated = kept | row
            else:
                updated = current | row
            self._rules.check_ticket(updated, updating=True)
            now = format_datetime(self._now())
            updated.update(lastActivityDate=now, lastTrackedModificationDateTime=now)
            self._tables[TICKETS.name][current["id"]] = updated
            self._writes["tickets_updated"] += 1
        logger.info("Emulator updated ticket %s", current["id"])
        return int(current["id"])

    def create_ticket_note(self, ticket_id: int, body: object) -> int:
        """Validate and store a note on an existing ticket; return its id."""
        row = coerce_body(body, TICKET_NOTES)
        row.pop("id", None)
        row["ticketID"] = ticket_id
        with self._lock:
            ticket = self._tables[TICKETS.name].get(ticket_id)
            if ticket is None:
                raise server_error(_missing_ticket_message())
            self._rules.check_note(row)
            now = format_datetime(self._now())
            note_id = self._next_id(TICKET_NOTES)
            row.update(
                id=note_id,
                createDateTime=now,
                lastActivityDate=now,
                creatorResourceID=self._api_resource_id(),
            )
            row.setdefault("userDefinedFields", [])
            self._tables[TICKET_NOTES.name][note_id] = row
            ticket["lastActivityDate"] = now
            self._writes["notes_created"] += 1
        logger.info("Emulator created note %s on ticket %s", note_id, ticket_id)
        return note_id

    def add_ticket_configuration_item(self, ticket_id: int, body: object) -> int:
        """Link a further configuration item to a ticket; return the link id."""
        entity = TICKET_ADDITIONAL_CONFIGURATION_ITEMS
        row = coerce_body(body, entity)
        row.pop("id", None)
        row["ticketID"] = ticket_id
        with self._lock:
            if ticket_id not in self._tables[TICKETS.name]:
                raise server_error(_missing_ticket_message())
            item_id = row.get("configurationItemID")
            item = self._tables[CONFIGURATION_ITEMS.name].get(item_id or -1)
            if item is None or item.get("isActive") is False:
                msg = (
                    "Reference value on field: configurationItemID of type: "
                    "ConfigurationItem does not exist or is invalid."
                )
                raise server_error(msg)
            link_id = self._next_id(entity)
            row.update(id=link_id, userDefinedFields=[])
            self._tables[entity.name][link_id] = row
        return link_id

    def _next_id(self, entity: EntitySpec) -> int:
        table = self._tables[entity.name]
        return max([_FIRST_IDS.get(entity.name, 1), *(i + 1 for i in table)])

    def _ticket_number(self, moment: datetime) -> str:
        prefix = f"T{moment.astimezone(UTC):%Y%m%d}."
        numbers = [
            str(ticket.get("ticketNumber") or "")
            for ticket in self._tables[TICKETS.name].values()
        ]
        used = [n.removeprefix(prefix) for n in numbers if n.startswith(prefix)]
        sequence = max((int(n) for n in used if n.isdigit()), default=0) + 1
        return f"{prefix}{sequence:04d}"

    def _api_resource_id(self) -> int | None:
        wanted = self.username.casefold()
        for resource in self._tables["Resources"].values():
            names = (resource.get("email"), resource.get("userName"))
            if any(str(name or "").casefold() == wanted for name in names):
                return int(resource["id"])
        return None


def _missing_ticket_message() -> str:
    return (
        "Reference value on field: ticketID of type: Ticket does not exist or is "
        "invalid."
    )
