"""Autotask query semantics for the emulator: filters, IncludeFields, paging.

Autotask compares strings case-insensitively, matches field names case-insensitively,
drops filter items whose operator it does not know (the query then returns more rows,
not an error) and fails loudly on an unknown field name. Paging follows the real
`nextPageUrl` cursor shape (`pageSize`, `previousIds`, `nextIds`); here the cursor
simply means "rows with an id above `nextIds[0]`", so paging is stateless.
"""

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from s1_autotask.emulators._autotask_entities import EntitySpec, FieldSpec
from s1_autotask.emulators._autotask_errors import EmulatedApiError, server_error

__all__ = [
    "COMPARISON_OPERATORS",
    "MAX_PAGE_SIZE",
    "Page",
    "PageCursor",
    "Query",
    "normalise_value",
    "paginate",
    "parse_datetime",
    "parse_query",
    "project",
]

MAX_PAGE_SIZE = 500
MAX_OR_CONDITIONS = 500
COMPARISON_OPERATORS = frozenset(
    {
        "eq",
        "noteq",
        "gt",
        "gte",
        "lt",
        "lte",
        "beginswith",
        "endswith",
        "contains",
        "exist",
        "notexist",
        "in",
        "notin",
    }
)
GROUP_OPERATORS = frozenset({"and", "or"})
_INTEGER_TYPES = frozenset({"integer", "long", "short"})
_FLOAT_TYPES = frozenset({"double", "decimal"})

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]


def parse_datetime(text: str) -> datetime:
    """Parse an Autotask timestamp; a naive one is UTC, as the REST API stores it."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def normalise_value(value: object, data_type: str) -> object:
    """Turn a JSON value into a comparable one for a field of `data_type`.

    Raises ValueError when the value cannot belong to such a field.
    """
    if value is None:
        return None
    if isinstance(value, bool) and data_type != "boolean":
        msg = f"A boolean is not a valid {data_type} value."
        raise ValueError(msg)
    if data_type == "string":
        return str(value).casefold()
    if data_type in _INTEGER_TYPES:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int | str):
            return int(value)
    elif data_type in _FLOAT_TYPES:
        if isinstance(value, int | float | str):
            return float(value)
    elif data_type == "boolean":
        if isinstance(value, bool):
            return value
    elif data_type == "datetime":
        if isinstance(value, str):
            return parse_datetime(value)
    else:
        return value
    msg = f"{type(value).__name__} is not a valid {data_type} value."
    raise ValueError(msg)


@dataclass(frozen=True)
class Query:
    """A parsed query body: which rows match, which fields to return, page size."""

    predicate: Predicate
    include_fields: tuple[str, ...] | None
    max_records: int

    def select(self, records: Iterable[Record]) -> list[Record]:
        """Return the matching records sorted by id, as Autotask pages them."""
        return sorted((r for r in records if self.predicate(r)), key=_record_id)


def parse_query(
    body: object, entity: EntitySpec, *, strict_operators: bool = False
) -> Query:
    """Parse a query body (`filter`, `IncludeFields`, `MaxRecords`, any key case)."""
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        msg = "The query must be a JSON object."
        raise server_error(msg)
    keys = _lower_keys(body)

    filters = keys.get("filter") or []
    if not isinstance(filters, list):
        msg = "The query filter must be an array of filter items."
        raise server_error(msg)
    compiler = _FilterCompiler(entity, strict_operators=strict_operators)
    predicates = [p for p in map(compiler.compile, filters) if p is not None]

    include = _include_fields(keys.get("includefields"), entity)
    max_records = _max_records(keys.get("maxrecords"))
    return Query(_all_of(predicates), include, max_records)


def project(
    record: Record, entity: EntitySpec, include_fields: tuple[str, ...] | None
) -> dict[str, Any]:
    """Render a record as Autotask returns it: every field, or the included ones."""
    if include_fields is None:
        item = {spec.name: record.get(spec.name) for spec in entity.fields}
    else:
        item = {"id": record.get("id")}
        item.update({name: record.get(name) for name in include_fields})
    item["userDefinedFields"] = [
        dict(udf) for udf in record.get("userDefinedFields", [])
    ]
    return item


@dataclass(frozen=True)
class PageCursor:
    """The opaque `paging` value of `nextPageUrl` / `prevPageUrl`."""

    page_size: int
    previous_ids: tuple[int, ...] = ()
    after_id: int = -1

    def encode(self) -> str:
        """Serialise in the shape real Autotask cursors have."""
        cursor = {
            "pageSize": self.page_size,
            "previousIds": list(self.previous_ids),
            "nextIds": [self.after_id],
        }
        return json.dumps(cursor, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> "PageCursor":
        """Parse a cursor; a malformed one is a 500 like any other bad input."""
        try:
            raw = json.loads(text)
            page_size = int(raw["pageSize"])
            previous_ids = tuple(int(i) for i in raw["previousIds"])
            after_id = int(raw["nextIds"][0])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            msg = "The paging parameter is not valid."
            raise server_error(msg) from exc
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            msg = "The paging parameter is not valid."
            raise server_error(msg)
        return cls(page_size, previous_ids, after_id)

    def advance(self, last_id: int) -> "PageCursor":
        """The cursor of the page after the one that ended at `last_id`."""
        return PageCursor(self.page_size, (*self.previous_ids, self.after_id), last_id)

    def back(self) -> "PageCursor | None":
        """The cursor of the previous page, or None on the first page."""
        if not self.previous_ids:
            return None
        return PageCursor(self.page_size, self.previous_ids[:-1], self.previous_ids[-1])


@dataclass(frozen=True)
class Page:
    """One page of query results and the cursors around it."""

    items: list[Record]
    next_cursor: PageCursor | None
    prev_cursor: PageCursor | None


def paginate(matches: list[Record], cursor: PageCursor) -> Page:
    """Cut the page `cursor` points at out of id-sorted `matches`."""
    remaining = [record for record in matches if _record_id(record) > cursor.after_id]
    items = remaining[: cursor.page_size]

    next_cursor = None
    if len(remaining) > cursor.page_size:
        next_cursor = cursor.advance(_record_id(items[-1]))
    return Page(items, next_cursor, cursor.back())


class _FilterCompiler:
    """Compile Autotask filter items into predicates over stored records."""

    def __init__(self, entity: EntitySpec, *, strict_operators: bool) -> None:
        self._entity = entity
        self._strict = strict_operators
        self._udf_conditions = 0

    def compile(self, item: object) -> Predicate | None:
        """Return a predicate, or None for an item Autotask would ignore."""
        if not isinstance(item, Mapping):
            msg = "Each filter item must be a JSON object."
            raise server_error(msg)
        keys = _lower_keys(item)
        op = str(keys.get("op", "")).lower()

        if op in GROUP_OPERATORS:
            return self._group(op, keys.get("items"))
        if op not in COMPARISON_OPERATORS:
            if self._strict:
                msg = f"The filter operator {op!r} is not supported."
                raise server_error(msg)
            # Real Autotask drops the item silently and returns unfiltered rows.
            return None
        return self._condition(op, keys)

    def _group(self, op: str, items: object) -> Predicate | None:
        if not isinstance(items, list):
            items = []
        if op == "or" and len(items) > MAX_OR_CONDITIONS:
            msg = (
                "Invalid query syntax. Queries are limited to 500 or fewer 'OR' "
                "conditions."
            )
            raise server_error(msg)
        children = [p for p in map(self.compile, items) if p is not None]
        if not children:
            return None
        if op == "and":
            return _all_of(children)
        return lambda record: any(child(record) for child in children)

    def _condition(self, op: str, keys: Mapping[str, Any]) -> Predicate:
        field_name = str(keys.get("field", ""))
        if keys.get("udf") is True:
            return self._udf_condition(op, field_name, keys.get("value"))

        spec = self._entity.get_field(field_name)
        if spec is None:
            raise _unknown_field(field_name, self._entity)
        value = _filter_value(keys.get("value"), spec, op)
        return _comparison(op, value, _field_getter(spec))

    def _udf_condition(self, op: str, name: str, value: object) -> Predicate:
        self._udf_conditions += 1
        if self._udf_conditions > 1:
            # Documented limit; the wording of the real error is not known.
            msg = "Only one user-defined field can be queried at a time."
            raise server_error(msg)
        text_spec = FieldSpec(name, "string")
        return _comparison(op, _filter_value(value, text_spec, op), _udf_getter(name))


def _comparison(
    op: str, value: object, getter: Callable[[Record], object]
) -> Predicate:
    """Build the predicate for one operator; SQL semantics for nulls."""
    if op == "exist":
        return lambda record: getter(record) is not None
    if op == "notexist":
        return lambda record: getter(record) is None
    if op in ("in", "notin"):
        values = value if isinstance(value, list) else [value]
        wanted = {v for v in values if v is not None}
        if op == "in":
            return lambda record: getter(record) in wanted
        return lambda record: _present(getter(record)) and getter(record) not in wanted
    if value is None:
        return lambda record: False
    if op in ("beginswith", "endswith", "contains"):
        needle = str(value).casefold()
        return lambda record: _text_match(op, getter(record), needle)

    compare = _ORDERINGS[op]
    return lambda record: _present(getter(record)) and compare(getter(record), value)


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda left, right: left == right,
    "noteq": lambda left, right: left != right,
    "gt": lambda left, right: left > right,
    "gte": lambda left, right: left >= right,
    "lt": lambda left, right: left < right,
    "lte": lambda left, right: left <= right,
}


def _text_match(op: str, raw: object, needle: str) -> bool:
    if raw is None:
        return False
    text = str(raw).casefold()
    if op == "beginswith":
        return text.startswith(needle)
    if op == "endswith":
        return text.endswith(needle)
    return needle in text


def _present(value: object) -> bool:
    return value is not None


def _field_getter(spec: FieldSpec) -> Callable[[Record], object]:
    return lambda record: normalise_value(record.get(spec.name), spec.data_type)


def _udf_getter(name: str) -> Callable[[Record], object]:
    wanted = name.casefold()

    def getter(record: Record) -> object:
        for udf in record.get("userDefinedFields", []):
            if str(udf.get("name", "")).casefold() == wanted:
                return normalise_value(udf.get("value"), "string")
        return None

    return getter


def _filter_value(value: object, spec: FieldSpec, op: str) -> object:
    """Normalise a filter value; Autotask rejects values of the wrong type."""
    if op in ("exist", "notexist"):
        return None
    try:
        if op in ("in", "notin") and isinstance(value, list):
            return [normalise_value(v, spec.data_type) for v in value]
        if op in ("beginswith", "endswith", "contains"):
            return normalise_value(value, "string")
        return normalise_value(value, spec.data_type)
    except ValueError as exc:
        shown = json.dumps(value)
        msg = (
            f"The value {shown} is not valid for the {spec.data_type} field "
            f"{spec.name}."
        )
        raise server_error(msg) from exc


def _include_fields(raw: object, entity: EntitySpec) -> tuple[str, ...] | None:
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list):
        msg = "IncludeFields must be an array of field names."
        raise server_error(msg)
    names = []
    for name in raw:
        spec = entity.get_field(str(name))
        if spec is None:
            raise _unknown_field(str(name), entity)
        if spec.name not in names:
            names.append(spec.name)
    return tuple(names)


def _max_records(raw: object) -> int:
    if raw is None:
        return MAX_PAGE_SIZE
    if isinstance(raw, bool) or not isinstance(raw, int):
        msg = "MaxRecords must be a whole number between 1 and 500."
        raise server_error(msg)
    if not 1 <= raw <= MAX_PAGE_SIZE:
        # Documented range; the wording of the real error is not known.
        msg = "MaxRecords must be a whole number between 1 and 500."
        raise server_error(msg)
    return raw


def _unknown_field(name: str, entity: EntitySpec) -> EmulatedApiError:
    return server_error(f"Unable to find {name} in the {entity.singular} Entity")


def _all_of(predicates: list[Predicate]) -> Predicate:
    return lambda record: all(predicate(record) for predicate in predicates)


def _lower_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in mapping.items()}


def _record_id(record: Record) -> int:
    return int(record["id"])
