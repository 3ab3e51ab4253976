"""The ``backfill`` command: tickets for every threat SentinelOne updated since a date.

Threats are read from the API page by page and handed to the threat-to-ticket flow in
batches, one flow run per batch, so a long backfill shows up in the Prefect UI as
runs of a readable size and a failed batch can be rerun on its own. Threats that
already have their ticket are found by external id and left alone.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from s1_autotask.cli._app import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    VerboseOption,
    app,
    fail,
    quiet_prefect,
    require_autotask,
    use_config,
)
from s1_autotask.cli._tickets import Job, Result, report, run_jobs

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


@app.command()
def backfill(
    since: Annotated[
        datetime,
        typer.Option(formats=DATE_FORMATS, help="Threats updated at or after (UTC)."),
    ],
    until: Annotated[
        datetime | None,
        typer.Option(formats=DATE_FORMATS, help="...and at or before (UTC)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=200, help="Threats per flow run.")
    ] = 50,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Create the missing tickets for threats SentinelOne updated in a period."""
    start, end = _utc(since), _utc(until) if until else None
    if end is not None and end < start:
        fail("--until is before --since")
    use_config(config)
    require_autotask()
    quiet_prefect(verbose)

    from s1_autotask.sentinelone.errors import SentinelOneError

    try:
        results = asyncio.run(_backfill(start, end, batch_size, dry_run=dry_run))
    except SentinelOneError as exc:
        fail(str(exc))
    raise typer.Exit(report(results, as_json=as_json, show_tickets=False))


async def _backfill(
    since: datetime, until: datetime | None, batch_size: int, *, dry_run: bool
) -> list[Result]:
    """Read the period's threats and run the flow on each batch, showing progress."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from s1_autotask.config import load_settings
    from s1_autotask.sentinelone._http import format_timestamp
    from s1_autotask.sentinelone.client import SentinelOneClient

    before = format_timestamp(until) if until else None
    settings = load_settings().sentinelone
    results: list[Result] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    # Progress goes to stderr, so --json output on stdout stays machine-readable.
    client = SentinelOneClient.from_settings(settings, why="Backfill")
    with Progress(*columns, console=Console(stderr=True)) as progress:
        async with client:
            total = await client.count_threats(
                updated_since=since, updatedAt__lte=before
            )
            bar = progress.add_task("Threats", total=total)
            batch: list[dict[str, Any]] = []
            seen = 0
            async for raw in client.iter_raw_threats(
                updated_since=since, updatedAt__lte=before
            ):
                seen += 1
                unreadable = _unreadable(raw)
                if unreadable is not None:
                    results.append(unreadable)
                    progress.advance(bar)
                    continue
                batch.append(raw)
                if len(batch) == batch_size:
                    results += await _run_batch(batch, seen, progress, bar, dry_run)
                    batch = []
            if batch:
                results += await _run_batch(batch, seen, progress, bar, dry_run)
    return results


async def _run_batch(
    batch: list[dict[str, Any]],
    seen: int,
    progress: Progress,
    bar: TaskID,
    dry_run: bool,
) -> list[Result]:
    from s1_autotask.sentinelone.intake import split_for_parameters

    label = f"threats {seen - len(batch) + 1} to {seen}"
    jobs = [Job(label, part) for part in split_for_parameters({"data": batch})]
    outcome = await run_jobs(jobs, dry_run=dry_run)
    progress.advance(bar, len(batch))
    return outcome


def _unreadable(raw: dict[str, Any]) -> Result | None:
    """A failed result for a threat that cannot be read, so it cannot sink a batch."""
    from s1_autotask.sentinelone.errors import ThreatPayloadError
    from s1_autotask.sentinelone.parse import parse_threats

    try:
        parse_threats(raw)
    except ThreatPayloadError as exc:
        return Job(f"threat {exc.threat_id or '(no id)'}"), exc
    return None


def _utc(moment: datetime) -> datetime:
    """A date given without an offset is UTC, as the option's help says."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
