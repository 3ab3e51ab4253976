"""Commands that turn threats into tickets: demo, run and backfill."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from s1_autotask.cli._app import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    VerboseOption,
    app,
    fail,
    printable,
    quiet_prefect,
    require_autotask,
    use_config,
)
from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.intake import read_request, split_for_parameters
from s1_autotask.sentinelone.parse import load_json

if TYPE_CHECKING:
    from collections.abc import Iterator

    from s1_autotask.outcome import ThreatFailure, TicketOutcome

# Credentials the bundled emulator accepts in the demo; they guard nothing real.
DEMO_USERNAME = "api-user@example.com"
DEMO_SECRET = "emulator-secret"  # noqa: S105 - the emulator's documented demo value
DEMO_INTEGRATION_CODE = "EMULATOR-CODE"
DEMO_CONSOLE_URL = "https://console.example.invalid"
# The demo's routing: one SentinelOne site by id and one by name go to companies of
# the bundled seed; threats whose site is redacted land on the MSP's own company.
DEMO_COMPANY_MAP = {"1592057602649133141": 29683056, "Default site": 29686630}
DEMO_FALLBACK_COMPANY_ID = 0
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024


def bundled_samples() -> list[Path]:
    """The real SentinelOne threats shipped with the package, in name order."""
    folder = resources.files("s1_autotask.emulators") / "data" / "threats"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json"))


@app.command()
def demo(
    payloads: Annotated[
        list[Path] | None,
        typer.Argument(help="Threat JSON files; the bundled samples when omitted."),
    ] = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run the whole path on the bundled Autotask emulator and ephemeral Prefect."""
    files = payloads or bundled_samples()
    jobs = [job for path in files for job in _jobs_for(path)]
    quiet_prefect(verbose)

    from s1_autotask.emulators.autotask import AutotaskEmulator, serve_in_thread

    emulator = AutotaskEmulator.from_seed(
        username=DEMO_USERNAME,
        secret=DEMO_SECRET,
        integration_code=DEMO_INTEGRATION_CODE,
    )
    with serve_in_thread(emulator) as server, _demo_environment(server.url):
        results = asyncio.run(run_jobs(jobs, dry_run=False))
    raise typer.Exit(report(results, as_json=as_json, show_tickets=False))


@app.command()
def run(
    payload: Annotated[
        Path | None,
        typer.Argument(help="Threat JSON file: threats, a threat id or an alert."),
    ] = None,
    threat_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--threat-id", help="Fetch this threat from SentinelOne (repeatable)."
        ),
    ] = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Run the flow on a payload file or threat ids against the configured tenant."""
    if payload is None and not threat_ids:
        fail("give a payload file, --threat-id, or both")
    jobs = _jobs_for(payload) if payload else [Job("threat ids")]
    jobs[0] = replace(jobs[0], threat_ids=threat_ids or [])
    use_config(config)
    require_autotask()
    quiet_prefect(verbose)

    results = asyncio.run(run_jobs(jobs, dry_run=dry_run))
    raise typer.Exit(report(results, as_json=as_json, show_tickets=dry_run))


@dataclass(frozen=True)
class Job:
    """One flow run to make: what it is called in the report, and its parameters."""

    label: str
    payload: Any = None
    threat_ids: list[str] = field(default_factory=list)


Result = tuple[Job, "list[TicketOutcome] | BaseException"]


def _jobs_for(path: Path) -> list[Job]:
    """The flow runs one payload file needs: one, or one per part when it is large."""
    parts = _read_payload(path)
    if len(parts) == 1:
        return [Job(path.name, parts[0])]
    return [
        Job(f"{path.name} part {n} of {len(parts)}", part)
        for n, part in enumerate(parts, start=1)
    ]


def _read_payload(path: Path) -> list[Any]:
    """Read and check a payload file, exiting with a message that names the problem.

    Returns the payload split into parts that each fit one flow run's parameters.
    """
    raw = _read_file(path)
    try:
        payload = load_json(raw)
        read_request(payload)
        return split_for_parameters(payload)
    except ThreatPayloadError as exc:
        fail(f"{path}: {exc}")


def _read_file(path: Path) -> bytes:
    # Read at most one byte past the limit: a pipe or a device has no size to
    # check beforehand, and /dev/zero never ends.
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            fail(f"{path}: not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(MAX_PAYLOAD_BYTES + 1)
    except OSError as exc:
        fail(f"{path}: cannot read the file ({exc.strerror or exc})")
    if len(raw) > MAX_PAYLOAD_BYTES:
        fail(f"{path}: the file is over the {MAX_PAYLOAD_BYTES} byte limit")
    return raw


async def run_jobs(
    jobs: list[Job], *, dry_run: bool, after_each: Callable[[Job], None] | None = None
) -> list[Result]:
    """Run the flow once per job, in order; a failed job does not stop the rest."""
    from flows.threat_to_ticket import threat_to_ticket

    results: list[Result] = []
    for job in jobs:
        try:
            outcomes = await threat_to_ticket(
                job.payload, threat_ids=job.threat_ids or None, dry_run=dry_run
            )
        except Exception as exc:  # noqa: BLE001 - reported per job; the next still runs
            results.append((job, exc))
        else:
            results.append((job, outcomes))
        if after_each is not None:
            after_each(job)
    return results


def report(results: list[Result], *, as_json: bool, show_tickets: bool) -> int:
    """Print the results; the exit code is 0 only when every threat got its ticket.

    A run that failed as a whole (an unreadable payload, SentinelOne not configured)
    is one failure naming the job; a run where some threats failed reports both the
    tickets it made and each threat that got none.
    """
    outcomes = [o for _, r in results for o in _outcomes_of(r)]
    failures = [(job, r) for job, r in results if isinstance(r, BaseException)]

    if as_json:
        entries = [o.cli_json() for o in outcomes]
        entries += [entry for job, exc in failures for entry in _failed_json(job, exc)]
        typer.echo(json.dumps(entries, indent=2))
    else:
        for outcome in outcomes:
            typer.echo(_line(outcome))
            if show_tickets:
                typer.echo(_ticket_text(outcome))
    for job, exc in failures:
        typer.echo(f"FAILED {job.label}: {printable(str(exc))}", err=True)
    return 1 if failures else 0


def _outcomes_of(result: list[TicketOutcome] | BaseException) -> list[TicketOutcome]:
    """What a run did, including the threats that got a ticket when others failed."""
    if isinstance(result, BaseException):
        return list(getattr(result, "outcomes", []))
    return result


def _failed_json(job: Job, exc: BaseException) -> list[dict[str, Any]]:
    failed: list[ThreatFailure] = list(getattr(exc, "failures", []))
    if failed:
        return [f.cli_json() for f in failed]
    return [
        {"threat_id": None, "action": "failed", "error": str(exc), "job": job.label}
    ]


def _line(outcome: TicketOutcome) -> str:
    ticket = outcome.ticket_number or (
        str(outcome.ticket_id) if outcome.ticket_id else "-"
    )
    return (
        f"{outcome.action:<12} threat {outcome.threat_id}  ticket {ticket}  "
        f"company {outcome.company.id} {outcome.company.name!r} "
        f"({outcome.company.match})  priority {outcome.priority}  {outcome.title}"
    )


def _ticket_text(outcome: TicketOutcome) -> str:
    ticket = outcome.ticket
    fields = {k: v for k, v in ticket.items() if k not in ("title", "description")}
    return "\n".join(
        [
            "",
            f"Title: {ticket.get('title', '')}",
            f"Fields: {json.dumps(fields, sort_keys=True)}",
            "Description:",
            str(ticket.get("description", "")),
            "",
        ]
    )


@contextmanager
def _demo_environment(emulator_url: str) -> Iterator[None]:
    """Point the settings at the emulator, ignoring the user's own S1AT_ variables."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("S1AT_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(
        {
            "S1AT_AUTOTASK__USERNAME": DEMO_USERNAME,
            "S1AT_AUTOTASK__SECRET": DEMO_SECRET,
            "S1AT_AUTOTASK__INTEGRATION_CODE": DEMO_INTEGRATION_CODE,
            "S1AT_AUTOTASK__ZONE_URL": (
                f"{emulator_url}/atservicesrest/v1.0/zoneInformation"
            ),
            "S1AT_SENTINELONE__CONSOLE_URL": DEMO_CONSOLE_URL,
            "S1AT_MAPPING__COMPANIES": json.dumps(DEMO_COMPANY_MAP),
            "S1AT_MAPPING__FALLBACK_COMPANY_ID": str(DEMO_FALLBACK_COMPANY_ID),
        }
    )
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("S1AT_")]:
            del os.environ[key]
        os.environ.update(saved)
