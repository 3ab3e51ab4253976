"""The ``s1-autotask`` command line: demo, run, and the emulator.

This module is the application shell. It is the one place in the package that starts
Prefect flows, and it imports them inside the commands, so that importing the library
never imports Prefect.
"""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from s1_autotask.sentinelone.errors import ThreatPayloadError
from s1_autotask.sentinelone.parse import parse_threats_json

if TYPE_CHECKING:
    from collections.abc import Iterator

    from s1_autotask.outcome import TicketOutcome

app = typer.Typer(
    name="s1-autotask",
    help="Turn SentinelOne threats into Autotask tickets, orchestrated by Prefect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

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
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of lines.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs.")
    ] = False,
) -> None:
    """Run the whole path on the bundled Autotask emulator and ephemeral Prefect."""
    files = payloads or bundled_samples()
    loaded = [(path, _read_payload(path)) for path in files]
    _quiet_prefect(verbose)

    from s1_autotask.emulators.autotask import AutotaskEmulator, serve_in_thread

    emulator = AutotaskEmulator.from_seed(
        username=DEMO_USERNAME,
        secret=DEMO_SECRET,
        integration_code=DEMO_INTEGRATION_CODE,
    )
    with serve_in_thread(emulator) as server, _demo_environment(server.url):
        results = asyncio.run(_run_all(loaded, dry_run=False))
    raise typer.Exit(_report(results, as_json=as_json, show_tickets=False))


@app.command()
def run(
    payload: Annotated[Path, typer.Argument(help="Threat JSON file.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Resolve everything; create nothing.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list instead of text.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML configuration file.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs.")
    ] = False,
) -> None:
    """Run the flow on one payload file against the configured Autotask tenant."""
    loaded = [(payload, _read_payload(payload))]
    if config is not None:
        from s1_autotask.config import load_settings

        try:
            load_settings(config)
        except (FileNotFoundError, ValueError) as exc:
            _fail(f"configuration: {exc}")
    _quiet_prefect(verbose)

    results = asyncio.run(_run_all(loaded, dry_run=dry_run))
    raise typer.Exit(_report(results, as_json=as_json, show_tickets=dry_run))


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8089,
    data: Annotated[
        Path | None,
        typer.Option(help="Seed JSON: companies, resources, configurationItems."),
    ] = None,
    username: Annotated[
        str, typer.Option(help="API username the emulator accepts.")
    ] = DEMO_USERNAME,
    secret: Annotated[
        str, typer.Option(help="API secret the emulator accepts.")
    ] = DEMO_SECRET,
    integration_code: Annotated[
        str, typer.Option(help="Integration code the emulator accepts.")
    ] = DEMO_INTEGRATION_CODE,
) -> None:
    """Serve the local Autotask REST emulator until interrupted."""
    from s1_autotask.emulators.autotask import AutotaskEmulator
    from s1_autotask.emulators.autotask import run as serve

    state = AutotaskEmulator.from_seed(
        data, username=username, secret=secret, integration_code=integration_code
    )
    typer.echo(f"Autotask emulator on http://{host}:{port}/atservicesrest/v1.0/")
    serve(state, host=host, port=port)


def _read_payload(path: Path) -> Any:
    """Read and check a payload file, exiting with a message that names the problem."""
    try:
        size = path.stat().st_size
        if size > MAX_PAYLOAD_BYTES:
            _fail(f"{path}: {size} bytes is over the {MAX_PAYLOAD_BYTES} byte limit")
        raw = path.read_bytes()
    except OSError as exc:
        _fail(f"{path}: cannot read the file ({exc.strerror or exc})")

    try:
        parse_threats_json(raw)
        return json.loads(raw)
    except ThreatPayloadError as exc:
        _fail(f"{path}: {exc}")


async def _run_all(
    loaded: list[tuple[Path, Any]], *, dry_run: bool
) -> list[tuple[Path, list[TicketOutcome] | BaseException]]:
    from flows.threat_to_ticket import threat_to_ticket

    results: list[tuple[Path, list[TicketOutcome] | BaseException]] = []
    for path, payload in loaded:
        try:
            outcomes = await threat_to_ticket(payload, dry_run=dry_run)
        except Exception as exc:  # noqa: BLE001 - reported per file; the next file still runs
            results.append((path, exc))
            continue
        results.append((path, outcomes))
    return results


def _report(
    results: list[tuple[Path, list[TicketOutcome] | BaseException]],
    *,
    as_json: bool,
    show_tickets: bool,
) -> int:
    """Print the results; the exit code is 0 only when every threat got its ticket."""
    outcomes = [o for _, r in results if not isinstance(r, BaseException) for o in r]
    failures = [(p, r) for p, r in results if isinstance(r, BaseException)]

    if as_json:
        typer.echo(json.dumps([o.cli_json() for o in outcomes], indent=2))
    else:
        for outcome in outcomes:
            typer.echo(_line(outcome))
            if show_tickets:
                typer.echo(_ticket_text(outcome))
    for path, exc in failures:
        typer.echo(f"FAILED {path.name}: {exc}", err=True)
    return 1 if failures else 0


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


def _quiet_prefect(verbose: bool) -> None:
    """Keep Prefect's console logs out of the way unless asked; set before import.

    Failures are still reported: each one is printed as a FAILED line by the report.
    """
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def main() -> None:
    """Entry point for ``python -m s1_autotask``."""
    app(prog_name="s1-autotask")


if __name__ == "__main__":
    main()
