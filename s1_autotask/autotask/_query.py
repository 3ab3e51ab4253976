"""Client-side checks for Autotask query filters.

Autotask silently ignores a condition whose operator it does not know and returns the
unfiltered rows, so a typo such as ``ne`` for ``noteq`` turns a lookup into "every
record". Every filter is therefore checked here before it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from s1_autotask.autotask.errors import AutotaskQueryError

COMPARISON_OPERATORS = frozenset(
    {
        "eq",
        "noteq",
        "gt",
        "gte",
        "lt",
        "lte",
        "beginsWith",
        "endsWith",
        "contains",
        "exist",
        "notExist",
        "in",
        "notIn",
    }
)
GROUP_OPERATORS = frozenset({"and", "or"})
_VALUELESS_OPERATORS = frozenset({"exist", "notExist"})
_LIST_OPERATORS = frozenset({"in", "notIn"})
MAX_PAGE_SIZE = 500


def validate_filters(filters: Sequence[Mapping[str, Any]]) -> None:
    """Raise AutotaskQueryError unless every condition is one Autotask will apply."""
    udf_conditions = sum(_validate(condition, "filter") for condition in filters)

    # Autotask accepts a single user-defined-field condition per query.
    if udf_conditions > 1:
        msg = (
            f"Query filter has {udf_conditions} user-defined-field conditions; "
            "Autotask accepts only one per query."
        )
        raise AutotaskQueryError(msg)


def validate_max_records(max_records: int | None) -> None:
    """Raise AutotaskQueryError unless ``max_records`` is a page size Autotask takes."""
    if max_records is None:
        return
    if isinstance(max_records, bool) or not 1 <= max_records <= MAX_PAGE_SIZE:
        msg = f"max_records must be between 1 and {MAX_PAGE_SIZE}, got {max_records!r}."
        raise AutotaskQueryError(msg)


def _validate(condition: object, location: str) -> int:
    """Check one condition and its children; return how many use a UDF."""
    if not isinstance(condition, Mapping):
        msg = f"Query condition at {location} is not an object."
        raise AutotaskQueryError(msg)

    # Autotask reads filter keys case-insensitively ("Op", "Field", "Items").
    keyed = {str(key).casefold(): value for key, value in condition.items()}
    op = keyed.get("op")
    if isinstance(op, str) and op in GROUP_OPERATORS:
        return _validate_group(keyed, f"{location}.{op}")
    if not isinstance(op, str) or op not in COMPARISON_OPERATORS:
        allowed = ", ".join(sorted(COMPARISON_OPERATORS | GROUP_OPERATORS))
        msg = (
            f"Query condition at {location} has unknown operator {op!r}; "
            f"Autotask would ignore it silently. Use one of: {allowed}."
        )
        raise AutotaskQueryError(msg)

    field = keyed.get("field")
    if not isinstance(field, str) or not field.strip():
        msg = f"Query condition at {location} ({op}) names no field."
        raise AutotaskQueryError(msg)
    _validate_value(op, keyed, f"{location}[{field}]")
    return 1 if keyed.get("udf") is True else 0


def _validate_group(keyed: Mapping[str, Any], location: str) -> int:
    items = keyed.get("items")
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        msg = f"Query group at {location} has no items."
        raise AutotaskQueryError(msg)
    return sum(
        _validate(item, f"{location}.items[{index}]")
        for index, item in enumerate(items)
    )


def _validate_value(op: str, keyed: Mapping[str, Any], location: str) -> None:
    if op in _VALUELESS_OPERATORS:
        return
    if "value" not in keyed:
        msg = f"Query condition at {location} ({op}) has no value."
        raise AutotaskQueryError(msg)

    value = keyed["value"]
    if op in _LIST_OPERATORS and (
        not isinstance(value, list | tuple) or len(value) == 0
    ):
        msg = f"Query condition at {location} ({op}) needs a non-empty list value."
        raise AutotaskQueryError(msg)
