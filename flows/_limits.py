"""Make sure the global concurrency limit around Autotask exists before it is used.

Prefect skips a missing limit with only a warning and runs unthrottled, which would
break Autotask's thread limit; so the flow creates it, and every acquisition is strict.
An existing limit is left as its owner configured it.
"""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.logging import get_logger

logger = get_logger(__name__)


async def ensure_concurrency_limit(name: str, slots: int) -> int:
    """Create the limit ``name`` with ``slots`` slots unless it exists; its size.

    An existing limit keeps the size its owner gave it, and callers must not ask
    for more slots than that: Prefect refuses such a request outright.
    """
    async with get_client() as client:
        try:
            existing = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            pass
        else:
            return existing.limit

        try:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=slots)
            )
        except ObjectAlreadyExists:
            # Another run created it between our read and our create.
            existing = await client.read_global_concurrency_limit_by_name(name)
            return existing.limit
    logger.info("Created global concurrency limit %r with %d slots", name, slots)
    return slots
