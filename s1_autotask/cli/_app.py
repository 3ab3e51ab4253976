"""The Typer application every command registers on, and what commands share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from s1_autotask.config import ReceiverSettings

# Options several commands share, spelt once.
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Resolve everything; create nothing.")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print a JSON list instead of text.")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML configuration file.")
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs.")
]

app = typer.Typer(
    name="s1-autotask",
    help="Turn SentinelOne threats into Autotask tickets, orchestrated by Prefect.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> NoReturn:
    """Print an error and exit 2, the code for bad input or configuration."""
    typer.echo(f"error: {printable(message)}", err=True)
    raise typer.Exit(2)


def printable(text: str) -> str:
    """Escape what a terminal would act on: controls, escapes, bidi overrides."""
    # Messages quote payload text, and a payload must not be able to redraw the
    # operator's terminal or fake a line of output.
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def require_autotask() -> None:
    """Exit at once, naming the variables, when Autotask credentials are missing."""
    from pydantic import ValidationError

    from s1_autotask.config import load_settings

    try:
        missing = load_settings().autotask.missing()
    except ValidationError as exc:
        fail(f"configuration: {exc}")
    if missing:
        fail(f"Autotask is not configured: set {', '.join(missing)}")


def use_config(config: Path | None) -> None:
    """Check and select a TOML configuration file before anything reads settings."""
    if config is None:
        return
    from s1_autotask.config import load_settings

    try:
        load_settings(config)
    except (FileNotFoundError, ValueError) as exc:
        fail(f"configuration: {exc}")


def quiet_prefect(verbose: bool) -> None:
    """Keep Prefect's console logs out of the way unless asked; set before import.

    Failures are still reported: each one is printed as a FAILED line by the report.
    Analytics are off because these machines may have no route to Prefect's
    telemetry endpoint, and the failed attempt would print an error. The ephemeral
    server gets longer than Prefect's 20 seconds to start: on a busy two-core
    machine it was seen to need more, and the whole command then failed.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")


def receiver_settings() -> ReceiverSettings:
    """The receiver's section of the settings, or exit naming what is wrong."""
    from pydantic import ValidationError

    from s1_autotask.config import load_settings

    try:
        return load_settings().receiver
    except ValidationError as exc:
        fail(f"configuration: {exc}")
