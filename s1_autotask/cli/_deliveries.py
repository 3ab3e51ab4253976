"""The ``deliveries`` commands: what the webhook receiver has kept, and replays."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated, cast

import typer

from s1_autotask.cli._app import (
    ConfigOption,
    app,
    fail,
    printable,
    quiet_prefect,
    receiver_settings,
    use_config,
)

if TYPE_CHECKING:
    from s1_autotask.receiver import Delivery, DeliveryStatus

SHOWN_BODY_BYTES = 4000

deliveries = typer.Typer(
    help="Webhook deliveries kept by the receiver: list them, replay one.",
    no_args_is_help=True,
)
app.add_typer(deliveries, name="deliveries")


@deliveries.command("list")
def list_command(
    status: Annotated[
        str | None,
        typer.Option(help="Only pending, dispatching, done, failed or rejected."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """The newest deliveries first: status, threats, attempts and the last error."""
    from s1_autotask.receiver import ReceiverError, list_deliveries, open_store
    from s1_autotask.receiver.delivery import STATUSES

    use_config(config)
    if status is not None and status not in STATUSES:
        fail(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    try:
        store = open_store(receiver_settings(), create=False)
        found = list_deliveries(store, status=_status(status), limit=limit)
    except ReceiverError as exc:
        fail(str(exc))

    if as_json:
        typer.echo(json.dumps([_summary(d) for d in found], indent=2))
        return
    for delivery in found:
        typer.echo(_line(delivery))
    if not found:
        typer.echo("no deliveries" + (f" with status {status}" if status else ""))


@deliveries.command("show")
def show_command(
    delivery_id: Annotated[str, typer.Argument(help="Id from 'deliveries list'.")],
    body: Annotated[
        bool, typer.Option("--body", help="Write only the body, byte for byte.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """One delivery in full: its record, and the body as it was received."""
    from s1_autotask.receiver import ReceiverError, open_store

    use_config(config)
    try:
        delivery = open_store(receiver_settings(), create=False).get(delivery_id)
    except ReceiverError as exc:
        fail(str(exc))

    if body:
        if sys.stdout.isatty():
            fail("--body writes raw bytes; redirect it to a file: --body > body.json")
        sys.stdout.buffer.write(delivery.body)
        return
    for key, value in _summary(delivery).items():
        typer.echo(f"{key}: {printable(str(value))}")
    shown = delivery.body[:SHOWN_BODY_BYTES].decode("utf-8", errors="replace")
    more = len(delivery.body) - SHOWN_BODY_BYTES
    typer.echo("body:")
    typer.echo(printable(shown).replace("\\n", "\n"))
    if more > 0:
        typer.echo(f"... and {more} more bytes (--body writes all of it)")


@deliveries.command("replay")
def replay_command(
    delivery_id: Annotated[str, typer.Argument(help="Id from 'deliveries list'.")],
    config: ConfigOption = None,
) -> None:
    """Hand a delivery on to Prefect again now, whatever became of it before."""
    from flows._handoff import PrefectDispatcher, require_prefect_api
    from s1_autotask.receiver import ReceiverError, open_store, replay

    use_config(config)
    quiet_prefect(verbose=False)
    problem = require_prefect_api()
    if problem:
        fail(problem)
    settings = receiver_settings()
    try:
        store = open_store(settings, create=False)
        delivery = asyncio.run(
            replay(
                store,
                delivery_id,
                PrefectDispatcher(settings.deployment),
                settings=settings,
            )
        )
    except ReceiverError as exc:
        fail(str(exc))

    typer.echo(_line(delivery))
    if delivery.status != "done":
        raise typer.Exit(1)


def _summary(delivery: Delivery) -> dict[str, object]:
    return {
        "id": delivery.id,
        "received_at": delivery.received_at.isoformat(),
        "status": delivery.status,
        "kind": delivery.kind,
        "threat_ids": list(delivery.threat_ids),
        "attempts": delivery.attempts,
        "replays": delivery.replays,
        "next_attempt_at": (
            delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else None
        ),
        "last_error": delivery.last_error,
        "flow_run_ids": list(delivery.flow_run_ids),
        "bytes": len(delivery.body),
    }


def _line(delivery: Delivery) -> str:
    threats = ",".join(delivery.threat_ids[:3]) or "-"
    if len(delivery.threat_ids) > 3:
        threats += f",+{len(delivery.threat_ids) - 3}"
    line = (
        f"{delivery.id}  {delivery.received_at:%Y-%m-%d %H:%M:%S}  "
        f"{delivery.status:<11} {delivery.kind or '-':<13} threats {threats}  "
        f"attempts {delivery.attempts}"
    )
    if delivery.last_error:
        line += f"  last error: {delivery.last_error}"
    return line


def _status(value: str | None) -> DeliveryStatus | None:
    """The status named on the command line, already checked against STATUSES."""
    return cast("DeliveryStatus | None", value)
