"""Ticket and ticket-note write validation for the Autotask emulator.

Validation is driven by the served field metadata (`isRequired`, `length`, picklist
values with `isActive` and `parentValue`) plus the ticket business rules seen in real
error text. Messages are the observed Autotask strings where one is known; where none
is known the wording follows the nearest observed message and says so in a comment.
Like Autotask, the first failed rule answers the request.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from s1_autotask.emulators._autotask_entities import EntitySpec, FieldSpec
from s1_autotask.emulators._autotask_errors import EmulatedApiError, server_error
from s1_autotask.emulators._autotask_query import normalise_value, parse_datetime
from s1_autotask.text import utf16_len

__all__ = [
    "FieldMetadata",
    "ReferenceData",
    "TicketRules",
    "coerce_body",
    "format_datetime",
]

UPDATE_SUFFIX = " | Error updating entity for record number [1]."

_CLR_TYPES = {
    "integer": "System.Int32",
    "long": "System.Int64",
    "short": "System.Int16",
    "double": "System.Double",
    "decimal": "System.Decimal",
    "boolean": "System.Boolean",
}

# Message texts observed from Autotask (see the reference note, section 7).
ASSIGNMENT_NEEDS_ROLE = (
    "When assigning a Resource, you must assign both a assignedResourceID and "
    "assignedResourceRoleID."
)
# SOAP-era wording; no REST capture of this rule's message is known.
QUEUE_OR_ASSIGNMENT = (
    "Data violation: AssignedResourceID, AssignedResourceRoleID, and QueueID cannot "
    "all be empty. Supply a QueueID or both a AssignedResourceID and "
    "AssignedResourceRoleID.."
)
BAD_ROLE = "Role does not exist or is invalid"


class ReferenceData(Protocol):
    """Read access to the records that ticket references point at."""

    def find(self, entity: str, item_id: int) -> Mapping[str, Any] | None:
        """Return the record of `entity` with `item_id`, or None."""
        ...

    def records(self, entity: str) -> Sequence[Mapping[str, Any]]:
        """Return every record of `entity`."""
        ...


def format_datetime(moment: datetime) -> str:
    """Render a timestamp the way the emulator returns them: UTC, milliseconds, Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class FieldMetadata:
    """An `entityInformation/fields` list, looked up by field name in any case."""

    def __init__(self, fields: list[dict[str, Any]]) -> None:
        self.fields = fields
        self._by_lower = {str(f["name"]).lower(): f for f in fields}

    def get(self, name: str) -> dict[str, Any] | None:
        """Return the metadata of field `name`, or None when it is not described."""
        return self._by_lower.get(name.lower())


def coerce_body(body: object, entity: EntitySpec) -> dict[str, Any]:
    """Map a write body onto the entity's fields, converting values to field types.

    Property names match in any case. Unknown and read-only properties are dropped,
    as the JSON binder behind the real API ignores them; `id` is kept for updates.
    """
    if not isinstance(body, Mapping):
        msg = f"The {entity.singular} body must be a JSON object."
        raise server_error(msg)
    row: dict[str, Any] = {}
    for key, value in body.items():
        if str(key).lower() == "userdefinedfields":
            row["userDefinedFields"] = _udfs(value)
            continue
        spec = entity.get_field(str(key))
        if spec is None or (spec.read_only and spec.name != "id"):
            continue
        row[spec.name] = _coerce(value, spec, str(key))
    return row


class TicketRules:
    """Validate ticket and note rows against field metadata and reference data."""

    def __init__(
        self,
        ticket_entity: EntitySpec,
        ticket_fields: FieldMetadata,
        note_entity: EntitySpec,
        note_fields: FieldMetadata,
        references: ReferenceData,
    ) -> None:
        self._tickets = ticket_entity
        self._ticket_fields = ticket_fields
        self._notes = note_entity
        self._note_fields = note_fields
        self._references = references

    def check_ticket(self, row: Mapping[str, Any], *, updating: bool = False) -> None:
        """Raise the Autotask error for the first rule the ticket row breaks."""
        try:
            self._check_fields(row, self._tickets, self._ticket_fields)
            self._check_references(row)
            self._check_location(row)
            self._check_assignment(row)
        except EmulatedApiError as exc:
            if updating and exc.errors:
                # Autotask revalidates the whole row on update and says so.
                exc.errors = [text + UPDATE_SUFFIX for text in exc.errors]
            raise

    def check_note(self, row: Mapping[str, Any]) -> None:
        """Raise the Autotask error for the first rule the note row breaks."""
        self._check_fields(row, self._notes, self._note_fields)

    def _check_fields(
        self, row: Mapping[str, Any], entity: EntitySpec, metadata: FieldMetadata
    ) -> None:
        for spec in entity.fields:
            info = metadata.get(spec.name)
            required = bool(info["isRequired"]) if info else spec.required
            if required and not spec.read_only and row.get(spec.name) in (None, ""):
                raise server_error(_missing_message(spec.name, info))

        for spec in entity.fields:
            info = metadata.get(spec.name)
            length = int(info["length"]) if info else spec.length
            value = row.get(spec.name)
            if spec.data_type == "string" and length and isinstance(value, str):
                # Autotask is .NET: lengths count UTF-16 units, so emoji count twice.
                if utf16_len(value) > length:
                    msg = f"String value exceeds maximum length (field:{spec.name})."
                    raise server_error(msg)

        for spec in entity.fields:
            info = metadata.get(spec.name)
            if info and info.get("isPickList") and row.get(spec.name) is not None:
                self._check_picklist(row, spec.name, info, metadata)

    def _check_picklist(
        self,
        row: Mapping[str, Any],
        name: str,
        info: Mapping[str, Any],
        metadata: FieldMetadata,
    ) -> None:
        wanted = str(row[name])
        parent_field = str(info.get("picklistParentValueField") or "")
        parent_value = None
        if parent_field:
            parent_info = metadata.get(parent_field)
            parent_name = parent_info["name"] if parent_info else parent_field
            parent_value = row.get(parent_name)

        for option in info.get("picklistValues") or []:
            if str(option["value"]) != wanted:
                continue
            # Inactive values are refused like unknown ones: an assumption, as no
            # source shows Autotask's answer for them.
            if not option.get("isActive", True):
                break
            if parent_field and str(option.get("parentValue")) != str(parent_value):
                break
            return
        raise server_error(_picklist_message(name))

    def _check_references(self, row: Mapping[str, Any]) -> None:
        checked = {
            "Company": "Companies",
            "Resource": "Resources",
            "Contact": "Contacts",
            "ConfigurationItem": "ConfigurationItems",
            "CompanyLocation": "CompanyLocations",
        }
        for spec in self._tickets.fields:
            entity = checked.get(spec.reference)
            value = row.get(spec.name)
            if entity is None or spec.read_only or value is None:
                continue
            record = self._references.find(entity, int(value))
            if record is None or record.get("isActive") in (False, 0):
                raise server_error(_reference_message(spec))

    def _check_location(self, row: Mapping[str, Any]) -> None:
        location_id = row.get("companyLocationID")
        if location_id is None:
            return
        location = self._references.find("CompanyLocations", int(location_id))
        if location is not None and location.get("companyID") != row.get("companyID"):
            msg = (
                f"The companyLocationID[{location_id}] cannot be associated with the "
                "Ticket. The Ticket and CompanyLocation must have the same companyID."
            )
            raise server_error(msg)

    def _check_assignment(self, row: Mapping[str, Any]) -> None:
        resource_id = row.get("assignedResourceID")
        role_id = row.get("assignedResourceRoleID")
        if resource_id is None and role_id is None:
            if row.get("queueID") is None:
                raise server_error(QUEUE_OR_ASSIGNMENT)
            return
        if resource_id is None or role_id is None:
            raise server_error(ASSIGNMENT_NEEDS_ROLE)

        role = self._references.find("Roles", int(role_id))
        if role is None or role.get("isActive") is False:
            raise server_error(BAD_ROLE)
        # The resource must hold the role as one of its service desk roles.
        for link in self._references.records("ResourceServiceDeskRoles"):
            if (
                link.get("resourceID") == resource_id
                and link.get("roleID") == role_id
                and link.get("isActive") is not False
            ):
                return
        raise server_error(BAD_ROLE)


def _missing_message(name: str, info: Mapping[str, Any] | None) -> str:
    if info and info.get("isPickList"):
        # A missing required picklist answers like an invalid one (seen for taskType).
        return _picklist_message(name)
    # SOAP-era wording; the REST text for a missing plain field is not known.
    return f"Value does not exist for the required field {name}."


def _picklist_message(name: str) -> str:
    # Observed verbatim, including the space before the full stop and after it.
    return f"Value does not reference an existing entity for {name} . "


def _reference_message(spec: FieldSpec) -> str:
    return (
        f"Reference value on field: {spec.name} of type: {spec.reference} does not "
        "exist or is invalid."
    )


def _coerce(value: object, spec: FieldSpec, key: str) -> object:
    """Convert one property the way the JSON binder would, or fail like it."""
    if value is None:
        return None
    if spec.data_type == "string":
        if isinstance(value, dict | list):
            msg = f"Unexpected character encountered while parsing value. Path '{key}'."
            raise server_error(msg)
        return str(value)
    if spec.data_type == "datetime":
        try:
            return format_datetime(parse_datetime(str(value)))
        except ValueError:
            msg = f"Could not convert string to DateTime: {value}. Path '{key}'."
            raise server_error(msg) from None
    try:
        return normalise_value(value, spec.data_type)
    except ValueError:
        shown = json.dumps(value)
        clr_type = _CLR_TYPES.get(spec.data_type, spec.data_type)
        msg = f"Error converting value {shown} to type '{clr_type}'. Path '{key}'."
        raise server_error(msg) from None


def _udfs(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [
        {"name": str(udf.get("name")), "value": udf.get("value")}
        for udf in value
        if isinstance(udf, Mapping) and udf.get("name")
    ]
