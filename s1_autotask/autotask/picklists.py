"""Entity field metadata from ``{Entity}/entityInformation/fields``, picklists first.

Picklist values are tenant-specific ids (custom ones look like ``29682833``); only the
labels mean the same thing from one tenant to the next. Configuration therefore names
labels, and ``Picklists`` turns them into the ids a ticket body needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from s1_autotask.autotask.errors import PicklistError

__all__ = ["EntityField", "PicklistError", "PicklistValue", "Picklists"]

MAX_LISTED_LABELS = 20


@dataclass(frozen=True, slots=True)
class PicklistValue:
    """One choice of a picklist field."""

    # Autotask sends the value as a string even for integer fields.
    value: str
    label: str
    is_active: bool
    is_default: bool
    parent_value: str | None
    sort_order: int


@dataclass(frozen=True, slots=True)
class EntityField:
    """Metadata of one entity field, as reported by Autotask."""

    name: str
    data_type: str
    length: int
    is_required: bool
    is_read_only: bool
    is_picklist: bool
    parent_field: str | None
    values: tuple[PicklistValue, ...]


class Picklists:
    """Look up fields and resolve picklist labels, ignoring case and outer spaces."""

    def __init__(self, fields: Iterable[EntityField]) -> None:
        self._fields = {_fold(field.name): field for field in fields}

    @classmethod
    def from_fields(cls, fields: Sequence[Mapping[str, Any]]) -> Picklists:
        """Build from the ``fields`` list of an ``entityInformation/fields`` answer."""
        return cls(
            _parse_field(raw)
            for raw in fields
            if isinstance(raw, Mapping) and isinstance(raw.get("name"), str)
        )

    def field(self, name: str) -> EntityField | None:
        """Return a field's metadata (required flag, length), or None if unknown."""
        return self._fields.get(_fold(name))

    def resolve(
        self, field: str, label: str, *, parent_value: str | int | None = None
    ) -> int:
        """Return the id of the active value labelled ``label``.

        For a dependent picklist such as ``subIssueType``, ``parent_value`` (the
        issue type id) limits the choice to that parent's values.
        """
        info = self._picklist(field)
        parent = _parent_key(info, parent_value, label)
        choices = _active(info, parent)

        wanted = _fold(label)
        matches = {choice.value for choice in choices if _fold(choice.label) == wanted}
        if len(matches) == 1:
            return _as_int(info, matches.pop())

        available = [choice.label for choice in choices]
        problem = "several active values are" if matches else "no active value is"
        msg = f"In Autotask picklist {info.name}, {problem} labelled {label!r}"
        if parent is not None:
            msg += f" under {info.parent_field}={parent}"
        msg += f". Available: {_listing(available)}."
        raise PicklistError(
            msg, field=info.name, label=label, parent_value=parent, available=available
        )

    def labels(self, field: str, *, parent_value: str | int | None = None) -> list[str]:
        """Return the active labels of a picklist in Autotask's display order."""
        info = self._picklist(field)
        parent = _parent_key(info, parent_value, None)
        return [choice.label for choice in _active(info, parent)]

    def default(self, field: str) -> int | None:
        """Return the picklist's active default value, if it has one."""
        info = self._picklist(field)
        for choice in _active(info, None):
            if choice.is_default:
                return _as_int(info, choice.value)
        return None

    def label_of(self, field: str, value: str | int) -> str | None:
        """Return the label of a value, inactive ones included, or None if unknown."""
        info = self._picklist(field)
        wanted = str(value).strip()
        for choice in info.values:
            if choice.value == wanted:
                return choice.label
        return None

    def _picklist(self, name: str) -> EntityField:
        info = self._fields.get(_fold(name))
        if info is not None and info.is_picklist:
            return info

        picklists = [field.name for field in self._fields.values() if field.is_picklist]
        problem = "is not a picklist" if info is not None else "is not a known field"
        msg = f"Autotask field {name!r} {problem}. Picklists: {_listing(picklists)}."
        raise PicklistError(msg, field=name, available=picklists)


def _parse_field(raw: Mapping[str, Any]) -> EntityField:
    values = raw.get("picklistValues") or []
    return EntityField(
        name=str(raw["name"]),
        data_type=str(raw.get("dataType") or ""),
        length=_int_or_zero(raw.get("length")),
        is_required=raw.get("isRequired") is True,
        is_read_only=raw.get("isReadOnly") is True,
        is_picklist=raw.get("isPickList") is True,
        parent_field=_text_or_none(raw.get("picklistParentValueField")),
        values=tuple(
            _parse_value(value)
            for value in values
            if isinstance(value, Mapping) and value.get("value") is not None
        ),
    )


def _parse_value(raw: Mapping[str, Any]) -> PicklistValue:
    return PicklistValue(
        value=str(raw["value"]).strip(),
        label=str(raw.get("label") or "").strip(),
        # Every real answer carries isActive; a value without it is taken as usable.
        is_active=raw.get("isActive") is not False,
        is_default=raw.get("isDefaultValue") is True,
        parent_value=_text_or_none(raw.get("parentValue")),
        sort_order=_int_or_zero(raw.get("sortOrder")),
    )


def _parent_key(
    info: EntityField, parent_value: str | int | None, label: str | None
) -> str | None:
    if parent_value is None:
        return None
    if info.parent_field is None:
        msg = f"Autotask picklist {info.name} does not depend on a parent field."
        raise PicklistError(
            msg, field=info.name, label=label, parent_value=str(parent_value)
        )
    return str(parent_value).strip()


def _active(info: EntityField, parent: str | None) -> list[PicklistValue]:
    choices = [
        choice
        for choice in info.values
        if choice.is_active and (parent is None or choice.parent_value == parent)
    ]
    return sorted(choices, key=lambda choice: (choice.sort_order, _fold(choice.label)))


def _as_int(info: EntityField, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        msg = f"Autotask picklist {info.name} has a non-numeric value {value!r}."
        raise PicklistError(msg, field=info.name) from None


def _listing(labels: Sequence[str]) -> str:
    if not labels:
        return "none"
    shown = ", ".join(labels[:MAX_LISTED_LABELS])
    hidden = len(labels) - MAX_LISTED_LABELS
    return f"{shown} (and {hidden} more)" if hidden > 0 else shown


def _fold(text: str) -> str:
    return text.strip().casefold()


def _text_or_none(value: object) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _int_or_zero(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
