"""The self-hosted webhook receiver: keep every delivery, then hand it on to Prefect.

SentinelOne signs nothing it pushes: a Hyperautomation HTTP step posts the body its
author templated, with static headers. So the receiver authenticates a shared-secret
header, commits the body to SQLite before it answers 202, and hands each threat on as
one flow run through a `Dispatcher`, retrying with backoff until it succeeds.
"""

from s1_autotask.receiver.app import create_app
from s1_autotask.receiver.delivery import Delivery, DeliveryStatus, DeliverySummary
from s1_autotask.receiver.errors import (
    DeliveryNotFoundError,
    HandoffError,
    ReceiverConfigError,
    ReceiverError,
    ReplayError,
    StoreError,
)
from s1_autotask.receiver.handoff import Dispatcher, Handoff, plan_handoffs
from s1_autotask.receiver.service import list_deliveries, open_store, replay, serve
from s1_autotask.receiver.store import DeliveryStore

__all__ = [
    "Delivery",
    "DeliveryNotFoundError",
    "DeliveryStatus",
    "DeliveryStore",
    "DeliverySummary",
    "Dispatcher",
    "HandoffError",
    "Handoff",
    "ReceiverConfigError",
    "ReceiverError",
    "ReplayError",
    "StoreError",
    "create_app",
    "list_deliveries",
    "open_store",
    "plan_handoffs",
    "replay",
    "serve",
]
