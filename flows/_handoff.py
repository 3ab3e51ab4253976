"""Hand a webhook delivery on to Prefect: start runs of the threat-to-ticket flow.

The receiver itself knows no Prefect; this is the one place that turns its handoffs
into flow runs. A run is started, not awaited (``timeout=0``), and Prefect keeps the
idempotency key in its database, so handing the same delivery on twice returns the
run it already started instead of starting another.
"""

from __future__ import annotations

from prefect.deployments.flow_runs import arun_deployment

from s1_autotask.receiver.handoff import Handoff

RUN_TAGS = ("sentinelone", "webhook")


class PrefectDispatcher:
    """Starts one flow run of ``deployment`` per handoff."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment

    async def start(self, handoff: Handoff) -> str:
        """Start the run and return its id; Prefect being down raises."""
        run = await arun_deployment(
            self.deployment,
            parameters=handoff.parameters,
            idempotency_key=handoff.idempotency_key,
            timeout=0,
            as_subflow=False,
            tags=list(RUN_TAGS),
        )
        return str(run.id)
