"""Fixtures shared by the Autotask client and picklist tests."""

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "autotask"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def ticket_fields():
    """The ``fields`` list of a real-shaped ``Tickets/entityInformation/fields``."""
    payload = json.loads((FIXTURES / "ticket-fields.json").read_text(encoding="utf-8"))
    return payload["fields"]
