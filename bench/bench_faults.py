"""Play threats, redeliveries and state changes against a failing Autotask.

Run with `uv run python bench/bench_faults.py` (add `--json` for one JSON object).
The Autotask emulator fails a share of calls on purpose (the thread limit, 429,
500, slow answers, dropped connections, creates saved but answered with a cut
connection); flow runs on ephemeral Prefect carry the threats in batches, several at
once, so redeliveries race their originals. Afterwards, with faults off, it checks
that every threat has exactly one ticket and every state change exactly one note,
prints what it counted, and exits 1 if anything is off.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[1] / "s1_autotask/emulators/data/threats"
CHANGE_NOTE = "Mitigation: not mitigated -> mitigated"
COMPLETE = "5"  # the emulator's "Complete" status, the default close status
# What the emulator accepts; it guards nothing real.
USERNAME = "api-user@example.com"
SECRET = "bench-secret-0123456789"  # noqa: S105 - the emulator's, for this run only
CODE = "BENCH-CODE-0123456789"


def main() -> int:
    options = _arguments()
    _isolate(options)

    from s1_autotask.emulators.autotask import (
        AutotaskEmulator,
        FaultPlan,
        serve_in_thread,
    )

    counting = _count_retries()
    emulator = AutotaskEmulator.from_seed(
        username=USERNAME, secret=SECRET, integration_code=CODE
    )
    with serve_in_thread(emulator) as server:
        _point_at(server.url)
        plan = FaultPlan.uniform(
            options.fault_rate, seed=options.seed, slow_seconds=options.slow_seconds
        )
        emulator.faults = plan
        originals, phases = _deliveries(options)
        started = time.perf_counter()
        failed, task_retries = asyncio.run(_play(phases, options))
        elapsed = time.perf_counter() - started
        emulator.faults = None
        figures = _check(emulator, originals, failed, options)
        figures |= {
            "client_repeats": counting.count,
            "task_retries": task_retries,
            "seconds": round(elapsed, 1),
        }
    _print(figures, as_json=options.json)
    return 0 if figures["ok"] else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threats", type=int, default=200)
    parser.add_argument("--redeliveries", type=int, default=50)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument(
        "--closes", type=int, default=15, help="changed threats then resolved"
    )
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=5, help="threats per flow run")
    parser.add_argument("--parallel", type=int, default=6, help="flow runs at once")
    parser.add_argument("--slow-seconds", type=float, default=1.5)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def _isolate(options: argparse.Namespace) -> None:
    """A Prefect home, lock folder and settings of the benchmark's own."""
    home = Path(tempfile.mkdtemp(prefix="s1at-bench-faults-"))
    os.environ.update(
        {
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
            "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
            # The client gives up after 1 s, before a slow answer (1.5 s) lands,
            # and a task waits past that before it looks the ticket up again.
            "S1AT_AUTOTASK__TIMEOUT_SECONDS": "1",
            "S1AT_TASK_RETRY_DELAYS": "1,1,2,2,2,2,2,2",
            "S1AT_AUTOTASK__SETTLE_SECONDS": "2",
            "S1AT_LOCKS__FOLDER": str(home / "locks"),
        }
    )
    for key in [k for k in os.environ if k.startswith("S1AT_MAPPING")]:
        del os.environ[key]


def _point_at(url: str) -> None:
    os.environ.update(
        {
            "S1AT_AUTOTASK__USERNAME": USERNAME,
            "S1AT_AUTOTASK__SECRET": SECRET,
            "S1AT_AUTOTASK__INTEGRATION_CODE": CODE,
            "S1AT_AUTOTASK__ZONE_URL": f"{url}/atservicesrest/v1.0/zoneInformation",
            "S1AT_MAPPING__FALLBACK_COMPANY_ID": "0",
        }
    )


def _deliveries(
    options: argparse.Namespace,
) -> tuple[dict[str, dict[str, Any]], list[list[dict[str, Any]]]]:
    """The threats, and two phases of deliveries: first sight, then changes."""
    rng = random.Random(options.seed)
    templates = [
        raw
        for path in sorted(SAMPLES.glob("*.json"))
        if "threatInfo" in (raw := json.loads(path.read_text(encoding="utf-8")))
    ]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    originals: dict[str, dict[str, Any]] = {}
    for n in range(options.threats):
        raw = copy.deepcopy(templates[n % len(templates)])
        threat_id = str(10**18 + n)
        raw["id"] = raw["threatInfo"]["threatId"] = threat_id
        raw["threatInfo"].update(
            {
                "mitigationStatus": "not_mitigated",
                "incidentStatus": "unresolved",
                "analystVerdict": "undefined",
                "updatedAt": _stamp(start + timedelta(minutes=n)),
            }
        )
        raw["mitigationStatus"] = []
        originals[threat_id] = raw

    ids = list(originals)
    first = list(originals.values())
    first += [
        copy.deepcopy(originals[rng.choice(ids)]) for _ in range(options.redeliveries)
    ]
    changed = rng.sample(ids, options.changes)
    second = [_mitigated(originals[tid], start) for tid in changed]
    # Some originals again beside their changes: late redeliveries of old news.
    again = rng.sample(changed, len(changed) // 3)
    second += [copy.deepcopy(originals[tid]) for tid in again]
    closed = rng.sample(changed, min(options.closes, len(changed)))
    third = [_resolved(originals[tid], start) for tid in closed]
    third += [_resolved(originals[tid], start) for tid in closed[: len(closed) // 3]]
    for phase in (first, second, third):
        rng.shuffle(phase)
    for tid in changed:
        originals[tid]["_changed"] = True
    for tid in closed:
        originals[tid]["_closed"] = True
    return originals, [first, second, third]


def _resolved(raw: dict[str, Any], start: datetime) -> dict[str, Any]:
    resolved = _mitigated(raw, start)
    resolved["threatInfo"]["incidentStatus"] = "resolved"
    resolved["threatInfo"]["updatedAt"] = _stamp(start + timedelta(days=3))
    return resolved


def _mitigated(raw: dict[str, Any], start: datetime) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    changed["threatInfo"]["mitigationStatus"] = "mitigated"
    changed["threatInfo"]["updatedAt"] = _stamp(start + timedelta(days=2))
    changed["mitigationStatus"] = [{"action": "kill", "status": "success"}]
    return changed


async def _play(
    phases: list[list[dict[str, Any]]], options: argparse.Namespace
) -> tuple[list[str], dict[str, int]]:
    """Run every phase's deliveries as flow runs: failed runs' messages, retries."""
    from flows.threat_to_ticket import threat_to_ticket

    failed: list[str] = []
    gate = asyncio.Semaphore(options.parallel)

    async def run(batch: list[dict[str, Any]]) -> None:
        async with gate:
            try:
                await threat_to_ticket({"data": batch})
            except Exception as exc:  # noqa: BLE001 - counted; the check says what is missing
                failed.append(str(exc)[:300])

    for deliveries in phases:
        batches = [
            deliveries[i : i + options.batch]
            for i in range(0, len(deliveries), options.batch)
        ]
        await asyncio.gather(*(run(batch) for batch in batches))
    return failed, await _task_retries()


class _Counter(logging.Handler):
    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.count += 1


def _count_retries() -> _Counter:
    """Count the client's repeats of requests from its log lines, kept off screen."""
    client = _Counter("trying again")
    client_logger = logging.getLogger("s1_autotask.autotask.client")
    client_logger.setLevel(logging.INFO)
    client_logger.propagate = False
    client_logger.addHandler(client)
    return client


async def _task_retries() -> dict[str, int]:
    """Retries per task name, as Prefect recorded them: runs beyond the first."""
    from prefect.client.orchestration import get_client

    retries: Counter[str] = Counter()
    async with get_client() as client:
        offset = 0
        while True:
            page = await client.read_task_runs(limit=200, offset=offset)
            for run in page:
                retries[run.name.rsplit("-", 1)[0]] += max(run.run_count - 1, 0)
            if len(page) < 200:
                return {name: n for name, n in retries.items() if n}
            offset += 200


def _check(
    emulator: Any,
    originals: dict[str, dict[str, Any]],
    failed: list[str],
    options: argparse.Namespace,
) -> dict[str, Any]:
    tickets = Counter(t["externalID"] for t in emulator.tickets)
    by_threat = {t["externalID"]: t for t in emulator.tickets}
    notes = Counter(n["ticketID"] for n in emulator.ticket_notes)
    changed = [tid for tid, raw in originals.items() if raw.get("_changed")]
    closed = {tid for tid, raw in originals.items() if raw.get("_closed")}
    missing = [tid for tid in originals if tickets[tid] == 0]
    duplicated = [tid for tid in originals if tickets[tid] > 1]
    # A changed threat's ticket has its change note, and a close note if resolved;
    # every other ticket has none.
    wrong_notes = [
        tid
        for tid, ticket in by_threat.items()
        if notes[ticket["id"]] != (tid in changed) + (tid in closed)
    ]
    unnoted = [
        tid
        for tid in changed
        if tid in by_threat
        and not any(
            CHANGE_NOTE in n["description"]
            for n in emulator.ticket_notes
            if n["ticketID"] == by_threat[tid]["id"]
        )
    ]
    wrong_status = [
        tid
        for tid, ticket in by_threat.items()
        if (str(ticket["status"]) == COMPLETE) != (tid in closed)
    ]
    counters = emulator.counters
    return {
        "ok": not (missing or duplicated or unnoted or wrong_notes or wrong_status),
        "threats": len(originals),
        "redeliveries": options.redeliveries,
        "state_changes": len(changed),
        "closes": len(closed),
        "fault_rate": options.fault_rate,
        "seed": options.seed,
        "requests": counters.requests,
        "faults_injected": counters.faults_injected,
        "faults": {str(kind): n for kind, n in counters.faults.items()},
        "tickets": sum(tickets.values()),
        "threats_without_ticket": len(missing),
        "threats_with_duplicates": len(duplicated),
        "changes_without_note": len(unnoted),
        "tickets_with_wrong_notes": len(wrong_notes),
        "tickets_with_wrong_status": len(wrong_status),
        "failed_flow_runs": len(failed),
        "failures": failed[:5],
    }


def _print(figures: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures))
        return
    for key, value in figures.items():
        print(f"{key:>26}: {value}")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


if __name__ == "__main__":
    sys.exit(main())
