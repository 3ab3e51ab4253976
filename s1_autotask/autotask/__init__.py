"""Autotask PSA: the REST client, its exceptions, and picklist resolution."""

from s1_autotask.autotask.client import (
    DEFAULT_ZONE_URL,
    AutotaskClient,
    AutotaskCredentials,
)
from s1_autotask.autotask.errors import (
    AutotaskAuthError,
    AutotaskError,
    AutotaskPermissionError,
    AutotaskQueryError,
    AutotaskRateLimitError,
    AutotaskStatusError,
    AutotaskTransportError,
    AutotaskValidationError,
    AutotaskZoneError,
    PicklistError,
    is_transient,
)
from s1_autotask.autotask.picklists import EntityField, Picklists, PicklistValue

__all__ = [
    "DEFAULT_ZONE_URL",
    "AutotaskAuthError",
    "AutotaskClient",
    "AutotaskCredentials",
    "AutotaskError",
    "AutotaskPermissionError",
    "AutotaskQueryError",
    "AutotaskRateLimitError",
    "AutotaskStatusError",
    "AutotaskTransportError",
    "AutotaskValidationError",
    "AutotaskZoneError",
    "EntityField",
    "PicklistError",
    "PicklistValue",
    "Picklists",
    "is_transient",
]
