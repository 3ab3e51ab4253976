"""Commands that serve: the two vendor emulators and the webhook receiver."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from s1_autotask.emulators.autotask import FaultPlan


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
    faults: Annotated[
        str | None,
        typer.Option(
            help=(
                "Fail calls on purpose: 'thread_limit=0.05,rate_limited=0.05,"
                "server_error=0.05,slow=0.02,dropped=0.03,lost_answer=0.02', or "
                "one total rate such as 0.2 spread over every kind."
            )
        ),
    ] = None,
    fault_seed: Annotated[int, typer.Option(help="Seed of the fault draws.")] = 0,
    slow_seconds: Annotated[
        float, typer.Option(help="How long a 'slow' fault holds a call.")
    ] = 35.0,
) -> None:
    """Serve the local Autotask REST emulator until interrupted."""
    from s1_autotask.emulators.autotask import (
        AutotaskEmulator,
        EmulatorSeedError,
        EmulatorStartError,
        FaultPlanError,
    )
    from s1_autotask.emulators.autotask import run as serve

    try:
        plan = _fault_plan(faults, fault_seed, slow_seconds) if faults else None
        state = AutotaskEmulator.from_seed(
            data,
            username=username,
            secret=secret,
            integration_code=integration_code,
            faults=plan,
        )
        serve(
            state,
            host=host,
            port=port,
            on_listening=lambda url: typer.echo(
                f"Autotask emulator on {url}/atservicesrest/v1.0/"
            ),
        )
    except (EmulatorSeedError, EmulatorStartError, FaultPlanError) as exc:
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


def _fault_plan(spec: str, seed: int, slow_seconds: float) -> FaultPlan:
    from s1_autotask.emulators.autotask import FaultPlan, FaultPlanError

    try:
        rate = float(spec)
    except ValueError:
        return FaultPlan.from_spec(spec, seed=seed, slow_seconds=slow_seconds)
    if not 0 <= rate <= 1:
        msg = f"--faults {spec} is not a rate between 0 and 1."
        raise FaultPlanError(msg)
    return FaultPlan.uniform(rate, seed=seed, slow_seconds=slow_seconds)
