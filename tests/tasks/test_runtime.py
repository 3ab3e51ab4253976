"""Tests for the retry policy shared by the Autotask tasks."""

import pytest
from prefect.states import Failed

from s1_autotask.autotask.errors import (
    AutotaskRateLimitError,
    AutotaskTransportError,
    AutotaskValidationError,
)
from tasks._runtime import retry_transient_only

pytestmark = pytest.mark.anyio


class TestRetryTransientOnly:
    """Only failures that may pass on their own are retried."""

    @pytest.mark.parametrize(
        ("exc", "expected"),
        [
            (AutotaskTransportError("Autotask GET Companies timed out"), True),
            (
                AutotaskRateLimitError(
                    429, ["thread threshold of 3 threads exceeded"], "Tickets"
                ),
                True,
            ),
            (
                AutotaskValidationError(
                    500, ["String value exceeds maximum length"], "Tickets"
                ),
                False,
            ),
            (ValueError("not a threat"), False),
        ],
    )
    async def test_decision_follows_the_failure(self, exc, expected):
        state = Failed(data=exc)

        assert await retry_transient_only(None, None, state) is expected
