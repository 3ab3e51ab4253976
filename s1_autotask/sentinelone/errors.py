"""Exceptions raised for SentinelOne data and calls.

SentinelOneError
└── ThreatPayloadError   a payload that is not a usable threat (or list of threats)
"""


class SentinelOneError(Exception):
    """Base class for every SentinelOne problem this package reports."""


class ThreatPayloadError(SentinelOneError):
    """A payload could not be read as SentinelOne threats.

    `location` is the path of the offending value, such as
    `data[2].threatInfo.createdAt`, or `payload` when the payload as a whole is wrong.
    `threat_id` is set when the id of the threat at fault could be read.
    """

    def __init__(
        self, message: str, *, location: str, threat_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.location = location
        self.threat_id = threat_id

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are lost by the default exception pickling, and
        # Prefect pickles exceptions raised inside tasks.
        return (_rebuild_payload_error, (str(self), self.location, self.threat_id))


def _rebuild_payload_error(
    message: str, location: str, threat_id: str | None
) -> ThreatPayloadError:
    return ThreatPayloadError(message, location=location, threat_id=threat_id)
