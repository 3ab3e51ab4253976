"""Hand a webhook delivery on to Prefect: start runs of the threat-to-ticket flow.

The receiver itself knows no Prefect; this is the one place that turns its handoffs
into flow runs. A run is started, not awaited (``timeout=0``), and Prefect keeps the
idempotency key in its database, so handing the same delivery on twice returns the
run it already started instead of starting another.
"""

from __future__ import annotations

from prefect.deployments.flow_runs import arun_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL

from s1_autotask.receiver.errors import HandoffError
from s1_autotask.receiver.handoff import Handoff

RUN_TAGS = ("sentinelone", "webhook")


class PrefectDispatcher:
    """Starts one flow run of ``deployment`` per handoff."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment

    async def start(self, handoff: Handoff) -> str:
        """Start the run and return its id; Prefect being down raises."""
        try:
            run = await arun_deployment(
                self.deployment,
                parameters=handoff.parameters,
                idempotency_key=handoff.idempotency_key,
                timeout=0,
                as_subflow=False,
                tags=list(RUN_TAGS),
            )
        except ObjectNotFound as exc:
            msg = (
                f"Prefect has no deployment {self.deployment!r}: deploy it (prefect "
                "deploy --prefect-file deployments/prefect.yaml --all) or set "
                "S1AT_RECEIVER__DEPLOYMENT."
            )
            raise HandoffError(msg) from exc
        return str(run.id)


def require_prefect_api() -> str | None:
    """Why this process cannot hand runs on, or None when a Prefect API is set.

    Without ``PREFECT_API_URL`` Prefect would start a temporary server of its own,
    which has no deployments and vanishes with the process.
    """
    if PREFECT_API_URL.value():
        return None
    return (
        "PREFECT_API_URL is not set: point it at the Prefect server or Cloud "
        "workspace the deployments live in, such as http://127.0.0.1:4200/api."
    )
