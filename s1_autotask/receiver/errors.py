"""Exceptions raised by the webhook receiver.

ReceiverError
├── ReceiverConfigError     the receiver cannot start as configured (no secret)
├── StoreError              the delivery store cannot be opened, read or written
├── DeliveryNotFoundError   no delivery has the id asked for
├── ReplayError             a delivery cannot be handed on again
└── HandoffError            a delivery could not be turned into flow runs
"""


class ReceiverError(Exception):
    """Base class for every problem the receiver reports."""


class ReceiverConfigError(ReceiverError):
    """The receiver's settings do not allow it to serve."""


class StoreError(ReceiverError):
    """The SQLite file holding deliveries could not be used."""


class DeliveryNotFoundError(ReceiverError):
    """No delivery with the given id is in the store."""

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"There is no delivery {delivery_id!r} in the store.")
        self.delivery_id = delivery_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.delivery_id,))


class ReplayError(ReceiverError):
    """A delivery cannot be replayed, for example a rejected body still unusable."""


class HandoffError(ReceiverError):
    """A delivery or one of its threats could not be handed on to a flow run.

    Dispatchers raise it (or any other exception) when a run cannot be started.
    """
