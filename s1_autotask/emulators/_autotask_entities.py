"""Entity schemas the Autotask emulator serves: names, field types and lengths.

Field lists follow the official Swagger models; lengths and required flags follow the
field information of live tenants where known (see the Autotask reference note). The
Tickets metadata the emulator validates against comes from the bundled
`data/ticket-fields.json`, not from this module.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

__all__ = [
    "ENTITIES",
    "EntitySpec",
    "FieldSpec",
    "entity_by_path",
]


@dataclass(frozen=True)
class FieldSpec:
    """One entity field: its wire name, Autotask data type and limits."""

    name: str
    data_type: str
    length: int = 0
    required: bool = False
    read_only: bool = False
    reference: str = ""


@dataclass(frozen=True)
class EntitySpec:
    """One REST entity: its URL name, the singular name used in messages, its fields."""

    name: str
    singular: str
    seed_key: str
    fields: tuple[FieldSpec, ...]
    can_create: bool = False
    can_update: bool = False
    picklists: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def get_field(self, name: str) -> FieldSpec | None:
        """Return the field called `name`, ignoring case as Autotask does."""
        return self._by_lower.get(name.lower())

    @cached_property
    def _by_lower(self) -> dict[str, FieldSpec]:
        return {spec.name.lower(): spec for spec in self.fields}

    def field_information(self) -> list[dict[str, Any]]:
        """Build an `entityInformation/fields` list from the schema."""
        return [self._field_info(spec) for spec in self.fields]

    def _field_info(self, spec: FieldSpec) -> dict[str, Any]:
        values = self.picklists.get(spec.name)
        picklist = None
        if values is not None:
            picklist = [
                {
                    "value": value,
                    "label": label,
                    "isDefaultValue": False,
                    "sortOrder": order,
                    "parentValue": "",
                    "isActive": True,
                    "isSystem": False,
                }
                for order, (value, label) in enumerate(values, start=1)
            ]
        return {
            "name": spec.name,
            "dataType": spec.data_type,
            "length": spec.length,
            "isRequired": spec.required,
            "isReadOnly": spec.read_only,
            "isQueryable": True,
            "isReference": bool(spec.reference),
            "referenceEntityType": spec.reference,
            "isPickList": picklist is not None,
            "picklistValues": picklist,
            "picklistParentValueField": "",
            "isSupportedWebhookField": False,
        }


_FLAGS = {"req": "required", "ro": "read_only"}


def _fields(*lines: str) -> tuple[FieldSpec, ...]:
    """Parse compact `name type [length] [req] [ro] [ref=Entity]` declarations."""
    specs = []
    for line in lines:
        name, data_type, *tokens = line.split()
        options: dict[str, Any] = {}
        for token in tokens:
            if token.isdigit():
                options["length"] = int(token)
            elif token in _FLAGS:
                options[_FLAGS[token]] = True
            elif token.startswith("ref="):
                options["reference"] = token.removeprefix("ref=")
            else:
                msg = f"Unknown field option {token!r} in declaration {line!r}."
                raise ValueError(msg)
        specs.append(FieldSpec(name, data_type, **options))
    return tuple(specs)


_COMPANY_TYPES = (
    ("1", "Customer"),
    ("2", "Lead"),
    ("3", "Prospect"),
    ("4", "Dead"),
    ("6", "Cancellation"),
    ("7", "Vendor"),
    ("8", "Partner"),
)

COMPANIES = EntitySpec(
    name="Companies",
    singular="Company",
    seed_key="companies",
    fields=_fields(
        "id long ro",
        "companyName string 100 req",
        "companyNumber string 50",
        "companyType integer req",
        "isActive boolean",
        "phone string 25 req",
        "fax string 25",
        "alternatePhone1 string 25",
        "address1 string 150",
        "address2 string 150",
        "city string 50",
        "state string 25",
        "postalCode string 20",
        "countryID integer",
        "webAddress string 255",
        "ownerResourceID integer req ref=Resource",
        "parentCompanyID integer ref=Company",
        "classification integer",
        "marketSegmentID integer",
        "territoryID integer",
        "isTaxExempt boolean",
        "createDate datetime ro",
        "createdByResourceID integer ro",
        "lastActivityDate datetime ro",
        "lastTrackedModifiedDateTime datetime ro",
    ),
    picklists={"companyType": _COMPANY_TYPES},
)

COMPANY_LOCATIONS = EntitySpec(
    name="CompanyLocations",
    singular="CompanyLocation",
    seed_key="companyLocations",
    fields=_fields(
        "id long ro",
        "companyID integer req ref=Company",
        "name string 100 req",
        "isPrimary boolean",
        "isActive boolean",
        "address1 string 150",
        "address2 string 150",
        "city string 50",
        "state string 25",
        "postalCode string 20",
        "countryID integer",
        "phone string 25",
    ),
)

RESOURCES = EntitySpec(
    name="Resources",
    singular="Resource",
    seed_key="resources",
    fields=_fields(
        "id long ro",
        "firstName string 50 req",
        "middleName string 50",
        "lastName string 50 req",
        "email string 50 req",
        "email2 string 50",
        "email3 string 50",
        "userName string 32 req",
        "isActive boolean",
        "resourceType string 15",
        "userType integer",
        "licenseType integer",
        "locationID integer",
        "title string 50",
        "officePhone string 25",
        "mobilePhone string 25",
        "defaultServiceDeskRoleID integer ref=Role",
        "hireDate datetime",
    ),
)

ROLES = EntitySpec(
    name="Roles",
    singular="Role",
    seed_key="roles",
    fields=_fields(
        "id long ro",
        "name string 200 req",
        "description string 200",
        "isActive boolean",
        "isSystemRole boolean ro",
        "hourlyRate decimal",
        "roleType integer",
    ),
)

RESOURCE_SERVICE_DESK_ROLES = EntitySpec(
    name="ResourceServiceDeskRoles",
    singular="ResourceServiceDeskRole",
    seed_key="resourceServiceDeskRoles",
    fields=_fields(
        "id long ro",
        "resourceID integer req ref=Resource",
        "roleID integer req ref=Role",
        "isDefault boolean",
        "isActive boolean",
    ),
)

CONFIGURATION_ITEMS = EntitySpec(
    name="ConfigurationItems",
    singular="ConfigurationItem",
    seed_key="configurationItems",
    fields=_fields(
        "id long ro",
        "companyID integer req ref=Company",
        "productID integer req ref=Product",
        "isActive boolean req",
        "referenceTitle string 200",
        "referenceNumber string 50",
        "serialNumber string 100",
        "location string 100",
        "installDate datetime",
        "configurationItemType integer",
        "configurationItemCategoryID integer",
        "companyLocationID integer ref=CompanyLocation",
        "contactID integer ref=Contact",
        "rmmDeviceAuditHostname string 255",
        "rmmDeviceAuditIPAddress string 255",
        "rmmDeviceAuditExternalIPAddress string 255",
        "rmmDeviceAuditMacAddress string 255",
        "rmmDeviceAuditOperatingSystem string 255",
        "rmmDeviceID long",
        "rmmDeviceUID string 100",
        "createDate datetime ro",
        "lastActivityPersonType integer ro",
    ),
)

CONTACTS = EntitySpec(
    name="Contacts",
    singular="Contact",
    seed_key="contacts",
    fields=_fields(
        "id long ro",
        "companyID integer req ref=Company",
        "firstName string 50 req",
        "lastName string 50 req",
        # Contacts.isActive is an integer (0/1) on the wire, unlike other entities.
        "isActive integer req",
        "emailAddress string 254",
        "emailAddress2 string 254",
        "emailAddress3 string 254",
        "phone string 25",
        "mobilePhone string 25",
        "title string 50",
        "externalID string 50",
        "primaryContact boolean",
        "companyLocationID integer ref=CompanyLocation",
        "createDate datetime ro",
        "lastActivityDate datetime ro",
    ),
)

TICKETS = EntitySpec(
    name="Tickets",
    singular="Ticket",
    seed_key="tickets",
    can_create=True,
    can_update=True,
    fields=_fields(
        "id long ro",
        "apiVendorID integer",
        "assignedResourceID integer ref=Resource",
        "assignedResourceRoleID integer ref=Role",
        "billingCodeID integer ref=BillingCode",
        "changeApprovalBoard integer",
        "changeApprovalStatus integer",
        "changeApprovalType integer",
        "changeInfoField1 string 8000",
        "changeInfoField2 string 8000",
        "changeInfoField3 string 8000",
        "changeInfoField4 string 8000",
        "changeInfoField5 string 8000",
        "companyID integer req ref=Company",
        "companyLocationID integer ref=CompanyLocation",
        "completedByResourceID integer ro",
        "completedDate datetime",
        "configurationItemID integer ref=ConfigurationItem",
        "contactID integer ref=Contact",
        "contractID integer ref=Contract",
        "contractServiceBundleID integer",
        "contractServiceID integer",
        "createDate datetime ro",
        "creatorResourceID integer ro ref=Resource",
        "creatorType integer ro",
        "currentServiceThermometerRating integer ro",
        "description string 8000",
        "dueDateTime datetime",
        "estimatedHours double",
        "externalID string 50",
        "firstResponseAssignedResourceID integer ro",
        "firstResponseDateTime datetime ro",
        "firstResponseDueDateTime datetime ro",
        "firstResponseInitiatingResourceID integer ro",
        "hoursToBeScheduled double",
        "impersonatorCreatorResourceID integer ro",
        "issueType integer",
        "lastActivityDate datetime ro",
        "lastActivityPersonType integer ro",
        "lastActivityResourceID integer ro",
        "lastCustomerNotificationDateTime datetime ro",
        "lastCustomerVisibleActivityDateTime datetime ro",
        "lastTrackedModificationDateTime datetime ro",
        "monitorID integer",
        "monitorTypeID integer",
        "opportunityID integer",
        "organizationalLevelAssociationID integer",
        "previousServiceThermometerRating integer ro",
        "priority integer req",
        "problemTicketId integer",
        "projectID integer",
        "purchaseOrderNumber string 50",
        "queueID integer",
        "resolution string 32000",
        "resolutionPlanDateTime datetime",
        "resolutionPlanDueDateTime datetime ro",
        "resolvedDateTime datetime",
        "resolvedDueDateTime datetime ro",
        "rmaStatus integer",
        "rmaType integer",
        "rmmAlertID string 50",
        "serviceLevelAgreementHasBeenMet boolean ro",
        "serviceLevelAgreementID integer",
        "serviceLevelAgreementPausedNextEventHours double ro",
        "serviceThermometerTemperature integer ro",
        "source integer",
        "status integer req",
        "subIssueType integer",
        "ticketCategory integer",
        "ticketNumber string 50 ro",
        "ticketType integer",
        "title string 255 req",
    ),
)

TICKET_NOTES = EntitySpec(
    name="TicketNotes",
    singular="TicketNote",
    seed_key="ticketNotes",
    can_create=True,
    can_update=True,
    fields=_fields(
        "id long ro",
        "ticketID integer req ref=Ticket",
        "title string 250",
        "description string 32000 req",
        "noteType integer req",
        "publish integer req",
        "createDateTime datetime ro",
        "lastActivityDate datetime ro",
        "creatorResourceID integer ro ref=Resource",
        "createdByContactID integer ro ref=Contact",
        "impersonatorCreatorResourceID integer ro",
        "impersonatorUpdaterResourceID integer ro",
    ),
)

TICKET_ADDITIONAL_CONFIGURATION_ITEMS = EntitySpec(
    name="TicketAdditionalConfigurationItems",
    singular="TicketAdditionalConfigurationItem",
    seed_key="ticketAdditionalConfigurationItems",
    can_create=True,
    fields=_fields(
        "id long ro",
        "ticketID integer req ref=Ticket",
        "configurationItemID integer req ref=ConfigurationItem",
    ),
)

ENTITIES: tuple[EntitySpec, ...] = (
    COMPANIES,
    COMPANY_LOCATIONS,
    CONFIGURATION_ITEMS,
    CONTACTS,
    RESOURCES,
    RESOURCE_SERVICE_DESK_ROLES,
    ROLES,
    TICKETS,
    TICKET_NOTES,
    TICKET_ADDITIONAL_CONFIGURATION_ITEMS,
)

_BY_PATH = {entity.name.lower(): entity for entity in ENTITIES}


def entity_by_path(segment: str) -> EntitySpec | None:
    """Return the entity a URL segment names, ignoring case."""
    return _BY_PATH.get(segment.lower())
