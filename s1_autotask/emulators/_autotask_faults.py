"""Fault injection for the Autotask emulator: a plan, its random draws, its counters.

A `FaultPlan` says how often each kind of failure hits an authenticated API call;
zone lookups are never touched, as real Autotask does not limit them either. One
seeded draw per eligible call picks at most one fault, so a run with the same seed
and the same sequence of calls fails the same way every time.

What each kind does to a call:

- `thread_limit`: refused with the thread-threshold error (Itgenatr005) and the
  emulator's thread-limit status, as if three other calls were in flight.
- `rate_limited`: refused with 429 and the hourly-threshold error.
- `server_error`: refused with Autotask's opaque 500 "An unexpected error has
  occurred", before anything is applied.
- `slow`: held for `slow_seconds` before it is processed, in its thread slot. A
  write still lands after a client that stopped waiting has gone.
- `dropped`: the connection is cut before anything is processed or answered.
- `lost_answer` (writes only): processed and saved, then the connection is cut, so
  the client cannot tell that it worked.
"""

import asyncio
import logging
import math
import random
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any, Self

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from s1_autotask.emulators._autotask_errors import EmulatedApiError, server_error

__all__ = [
    "DEFAULT_SLOW_SECONDS",
    "ConnectionCut",
    "EmulatorCounters",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "FaultPlanError",
    "InjectedFault",
    "remember_transport",
    "unexpected_error",
]

logger = logging.getLogger(__name__)

# Just past the Autotask client's default 30 s timeout, so a slow answer trips it.
DEFAULT_SLOW_SECONDS = 35.0
MAX_SLOW_SECONDS = 3600.0
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_TRANSPORT_KEY = "s1_autotask.emulator.transport"


class FaultKind(StrEnum):
    """A way the emulated Autotask can fail one call; values are the spec names."""

    THREAD_LIMIT = "thread_limit"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    SLOW = "slow"
    DROPPED = "dropped"
    LOST_ANSWER = "lost_answer"


# Kinds answered with an Autotask error body instead of being processed.
REFUSALS = frozenset(
    {FaultKind.THREAD_LIMIT, FaultKind.RATE_LIMITED, FaultKind.SERVER_ERROR}
)


class FaultPlanError(ValueError):
    """A fault plan or its spec cannot be used; the message names the bad part."""


@dataclass(frozen=True)
class FaultPlan:
    """How often each fault kind hits an eligible call, and which calls are eligible.

    Rates are probabilities per call (0..1) and may total at most 1, since one draw
    picks at most one fault. `lost_answer` only ever hits writes; on other calls
    its share of the draw passes without a fault.

    Args:
        seed: seeds the random source, so a run can be repeated exactly.
        slow_seconds: how long a `slow` call is held.
        methods: HTTP methods eligible for faults; None for every method.
        paths: case-insensitive glob patterns on the path below `v1.0/`, such as
            `Tickets` (ticket creates and updates), `Tickets/*/Notes` or
            `*/query`; `*` also matches `/`. None for every path.
    """

    thread_limit: float = 0.0
    rate_limited: float = 0.0
    server_error: float = 0.0
    slow: float = 0.0
    dropped: float = 0.0
    lost_answer: float = 0.0
    seed: int = 0
    slow_seconds: float = DEFAULT_SLOW_SECONDS
    methods: Collection[str] | None = None
    paths: Collection[str] | None = None

    def __post_init__(self) -> None:
        for kind in FaultKind:
            _check_rate(self.rate(kind), f"Fault rate {kind}")
        _check_total(self.rates.values(), "Fault rates")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            msg = f"Fault seed {self.seed!r} is not an integer."
            raise FaultPlanError(msg)
        slow_seconds: object = self.slow_seconds
        if not isinstance(slow_seconds, int | float) or not (
            0 < slow_seconds <= MAX_SLOW_SECONDS
        ):
            msg = (
                f"Fault slow_seconds {self.slow_seconds!r} is outside "
                f"0..{MAX_SLOW_SECONDS:g} (zero excluded)."
            )
            raise FaultPlanError(msg)
        # Normalised once here, so matching a call is a plain lookup.
        object.__setattr__(self, "methods", _normalise_methods(self.methods))
        if self.paths is not None:
            patterns = tuple(p.strip("/").lower() for p in _strings(self.paths, "path"))
            object.__setattr__(self, "paths", patterns)

    @classmethod
    def from_spec(cls, spec: str, **options: Any) -> Self:
        """Build a plan from `kind=rate` parts joined by commas.

        For example `"thread_limit=0.05,server_error=0.05,dropped=0.03"`; an empty
        spec gives a plan without faults. `options` are the other fields (`seed`,
        `slow_seconds`, `methods`, `paths`).
        """
        # Typed loosely: the dataclass machinery checks each rate against every field.
        rates: dict[str, Any] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name, equals, text = (s.strip() for s in part.partition("="))
            if not equals:
                msg = f"Fault spec part {part!r} is not written kind=rate."
                raise FaultPlanError(msg)
            kind = _kind_named(name, part)
            if kind in rates:
                msg = f"Fault spec part {part!r} repeats the kind {kind}."
                raise FaultPlanError(msg)
            try:
                rate = float(text)
            except ValueError:
                msg = f"Fault spec part {part!r} has a rate that is not a number."
                raise FaultPlanError(msg) from None
            rates[kind] = _check_rate(rate, f"Fault spec part {part!r}")
        _check_total(rates.values(), f"Fault spec {spec!r}")
        return replace(cls(**options), **rates)

    @classmethod
    def uniform(cls, rate: float, **options: Any) -> Self:
        """Spread one total `rate` evenly over every fault kind.

        Reads cannot lose an answer, so their total fault rate is 5/6 of `rate`.
        """
        _check_rate(rate, "Uniform fault rate")
        shares: dict[str, Any] = dict.fromkeys(FaultKind, rate / len(FaultKind))
        return replace(cls(**options), **shares)

    @property
    def rates(self) -> dict[FaultKind, float]:
        """The rate of every kind, zeros included."""
        return {kind: self.rate(kind) for kind in FaultKind}

    def rate(self, kind: FaultKind) -> float:
        """The probability that `kind` hits an eligible call."""
        value: float = getattr(self, kind.value)
        return value

    @property
    def active(self) -> bool:
        """Whether any kind has a rate above zero."""
        return any(rate > 0 for rate in self.rates.values())

    def to_spec(self) -> str:
        """The non-zero rates as a `from_spec` string, rounded for display."""
        return ",".join(f"{k}={r:g}" for k, r in self.rates.items() if r > 0)

    def covers(self, method: str, path: str) -> bool:
        """Whether a call to `path` (below `v1.0/`) with `method` is eligible."""
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.paths is None:
            return True
        target = path.strip("/").lower()
        return any(fnmatchcase(target, pattern) for pattern in self.paths)

    def pick(self, draw: float, *, write: bool) -> FaultKind | None:
        """The kind a uniform draw in [0, 1) lands on, or None for no fault."""
        edge = 0.0
        for kind, rate in self.rates.items():
            edge += rate
            if draw < edge:
                if kind is FaultKind.LOST_ANSWER and not write:
                    return None
                return kind
        return None


@dataclass(frozen=True)
class InjectedFault:
    """The fault drawn for one call, with what its handling needs."""

    kind: FaultKind
    delay: float = 0.0
    error_id: int = 0


@dataclass(frozen=True)
class EmulatorCounters:
    """What the emulator saw and did since it started or was last reset.

    `requests` counts the API calls that passed authentication and the hourly
    threshold; faults are drawn among them. Writes count what was saved, including
    writes whose answer a `lost_answer` fault then cut off.
    """

    requests: int = 0
    faults: Mapping[FaultKind, int] = field(
        default_factory=lambda: dict.fromkeys(FaultKind, 0)
    )
    tickets_created: int = 0
    tickets_updated: int = 0
    notes_created: int = 0

    @property
    def faults_injected(self) -> int:
        """Faults of every kind together."""
        return sum(self.faults.values())

    def as_dict(self) -> dict[str, int]:
        """Flat name-to-count pairs, for a benchmark to print or dump as JSON."""
        counts = {f.name: getattr(self, f.name) for f in fields(self)}
        del counts["faults"]
        return counts | {f"faults.{kind}": n for kind, n in self.faults.items()}


class FaultInjector:
    """Applies one plan at a time: its random source and the request and fault counts.

    Safe to share between the server thread and a test reading the counters.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._plan = plan if plan is not None else FaultPlan()
        self._random = _random_source(self._plan.seed)
        self._requests = 0
        self._faults = dict.fromkeys(FaultKind, 0)

    @property
    def plan(self) -> FaultPlan:
        """The plan in force."""
        return self._plan

    def use(self, plan: FaultPlan | None) -> None:
        """Switch to `plan` (None for no faults), restarting its random source.

        Counts carry on, so a run that changes plans midway still adds up.
        """
        plan = plan if plan is not None else FaultPlan()
        with self._lock:
            self._plan = plan
            self._random = _random_source(plan.seed)

    def restart(self) -> None:
        """Zero the counts and restart the random source of the plan in force."""
        with self._lock:
            self._random = _random_source(self._plan.seed)
            self._requests = 0
            self._faults = dict.fromkeys(FaultKind, 0)

    def draw(self, method: str, path: str, *, write: bool) -> InjectedFault | None:
        """Count one call and pick its fault, if any."""
        with self._lock:
            self._requests += 1
            plan = self._plan
            # No draw without a fault to give, so an idle plan leaves the random
            # sequence where it was.
            if not plan.active or not plan.covers(method, path):
                return None
            kind = plan.pick(self._random.random(), write=write)
            if kind is None:
                return None
            self._faults[kind] += 1
            error_id = 0
            if kind is FaultKind.SERVER_ERROR:
                error_id = self._random.randint(1000, 99999)
        logger.info("Emulator injects %s into %s %s", kind, method, path)
        delay = plan.slow_seconds if kind is FaultKind.SLOW else 0.0
        return InjectedFault(kind, delay=delay, error_id=error_id)

    def counts(self) -> tuple[int, dict[FaultKind, int]]:
        """The calls seen and the faults injected per kind."""
        with self._lock:
            return self._requests, dict(self._faults)


def unexpected_error(error_id: int) -> EmulatedApiError:
    """Autotask's opaque answer to an internal failure: 500, an error id, no cause."""
    return server_error(
        "An unexpected error has occurred. If the problem persists, please contact "
        f"Autotask Support and reference Error ID: {error_id}"
    )


def remember_transport(scope: Scope, send: Send) -> None:
    """Keep the server's connection transport in the scope, for `ConnectionCut`.

    ASGI has no way to drop a connection without answering it, so the transport is
    taken from uvicorn's `send`, a bound method of its request cycle. This must see
    the server's own `send`: any middleware wraps it.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if isinstance(transport, asyncio.Transport):
        scope[_TRANSPORT_KEY] = transport


class ConnectionCut(Response):
    """A response that sends nothing and closes the connection instead.

    The client sees the connection end before any status line: a transport error
    such as httpx's `RemoteProtocolError`, never an HTTP status.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport: asyncio.Transport | None = scope.get(_TRANSPORT_KEY)
        if transport is None:
            msg = "Cutting a connection needs the emulator served by uvicorn."
            raise RuntimeError(msg)
        transport.abort()
        # Return only once the server has seen the connection go: returning before
        # would make it answer 500 itself and log that nothing was sent.
        while (await receive())["type"] != "http.disconnect":
            pass


def _random_source(seed: int) -> random.Random:
    # Reproducible fault draws, not secrets.
    return random.Random(seed)  # noqa: S311


def _check_rate(rate: float, label: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        msg = f"{label}: the rate {rate!r} is not a number."
        raise FaultPlanError(msg)
    if not 0.0 <= rate <= 1.0:  # also refuses NaN
        msg = f"{label}: the rate {rate!r} is outside 0..1."
        raise FaultPlanError(msg)
    return float(rate)


def _check_total(rates: Iterable[float], label: str) -> None:
    total = math.fsum(rates)
    # A little slack, so rates such as 1/3 + 1/3 + 1/3 still add up to one.
    if total > 1.0 + 1e-9:
        msg = f"{label} total {total:g}; one draw per call allows at most 1."
        raise FaultPlanError(msg)


def _kind_named(name: str, part: str) -> FaultKind:
    try:
        return FaultKind(name.lower())
    except ValueError:
        known = ", ".join(FaultKind)
        msg = f"Fault spec part {part!r} names no fault kind; the kinds are {known}."
        raise FaultPlanError(msg) from None


def _normalise_methods(methods: Collection[str] | None) -> frozenset[str] | None:
    if methods is None:
        return None
    normalised = frozenset(m.strip().upper() for m in _strings(methods, "method"))
    unknown = sorted(normalised - _METHODS)
    if unknown:
        msg = f"Fault methods {', '.join(unknown)} are not HTTP methods the API uses."
        raise FaultPlanError(msg)
    return normalised


def _strings(values: Iterable[str], label: str) -> list[str]:
    if isinstance(values, str):
        # A bare string would otherwise be read as its characters.
        values = [values]
    listed = list(values)
    bad = [v for v in listed if not isinstance(v, str)]
    if bad:
        msg = f"Fault {label} {bad[0]!r} is not a string."
        raise FaultPlanError(msg)
    return listed
