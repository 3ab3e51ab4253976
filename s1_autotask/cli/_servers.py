"""Commands that serve: the two vendor emulators and the webhook receiver."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from s1_autotask.cli._app import (
    ConfigOption,
    app,
    fail,
    quiet_prefect,
    receiver_settings,
    use_config,
)
from s1_autotask.cli._tickets import (
    DEMO_INTEGRATION_CODE,
    DEMO_SECRET,
    DEMO_USERNAME,
)
from s1_autotask.emulators.sentinelone import DEFAULT_TOKEN as S1_DEMO_TOKEN


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
    from s1_autotask.emulators.autotask import (
        AutotaskEmulator,
        EmulatorSeedError,
        EmulatorStartError,
    )
    from s1_autotask.emulators.autotask import run as serve

    try:
        state = AutotaskEmulator.from_seed(
            data, username=username, secret=secret, integration_code=integration_code
        )
        serve(
            state,
            host=host,
            port=port,
            on_listening=lambda url: typer.echo(
                f"Autotask emulator on {url}/atservicesrest/v1.0/"
            ),
        )
    except (EmulatorSeedError, EmulatorStartError) as exc:
        fail(str(exc))


@app.command("s1-emulator")
def s1_emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    data: Annotated[
        list[Path] | None,
        typer.Option(help="Threat JSON file(s) to serve instead of the samples."),
    ] = None,
    token: Annotated[
        str, typer.Option(help="API token the emulator accepts.")
    ] = S1_DEMO_TOKEN,
) -> None:
    """Serve the local SentinelOne API emulator until interrupted."""
    from s1_autotask.emulators.sentinelone import (
        EmulatorDataError,
        EmulatorStartError,
        SentinelOneEmulator,
    )
    from s1_autotask.emulators.sentinelone import run as serve

    try:
        state = (
            SentinelOneEmulator.from_files(data, token=token)
            if data
            else SentinelOneEmulator.from_samples(token=token)
        )
        serve(
            state,
            host=host,
            port=port,
            on_listening=lambda url: typer.echo(
                f"SentinelOne emulator on {url}/web/api/v2.1/"
            ),
        )
    except (EmulatorDataError, EmulatorStartError) as exc:
        fail(str(exc))


@app.command()
def receiver(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (S1AT_RECEIVER__HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (S1AT_RECEIVER__PORT).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Receive SentinelOne webhooks, keep each one, and start a flow run per threat."""
    use_config(config)
    quiet_prefect(verbose=True)
    settings = receiver_settings()
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)

    from flows._handoff import PrefectDispatcher, require_prefect_api
    from s1_autotask.receiver import ReceiverError, serve

    problem = require_prefect_api()
    if problem:
        fail(problem)
    # The Prefect client logs every request it makes at INFO through httpx; the
    # receiver's own line per delivery says what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        serve(settings, PrefectDispatcher(settings.deployment))
    except ReceiverError as exc:
        fail(str(exc))
