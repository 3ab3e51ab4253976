"""Seed and metadata loading for the Autotask emulator.

A seed is a JSON object of entity lists in Autotask's camelCase vocabulary:
`{"companies": [...], "resources": [...], "configurationItems": [...], ...}`. Keys
starting with `_` are comments. Every record needs a unique integer `id`; field
names match in any case and values must fit the field's type, so a typo in a
hand-edited seed fails at start-up with the record and field it is in.
"""

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from s1_autotask.emulators._autotask_entities import ENTITIES, EntitySpec
from s1_autotask.emulators._autotask_query import normalise_value

__all__ = [
    "EmulatorSeedError",
    "build_tables",
    "load_bundled_fields",
    "load_seed",
]

_DATA = "data"
BUNDLED_SEED = "autotask-seed.json"


class EmulatorSeedError(ValueError):
    """A seed file cannot be read or holds a record the emulator cannot serve."""


def load_seed(path: Path | None = None) -> dict[str, Any]:
    """Read a seed file, or the bundled default seed when `path` is None."""
    if path is None:
        text = _bundled_text(BUNDLED_SEED)
        source = f"bundled {BUNDLED_SEED}"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"Cannot read the emulator seed {path}: {exc.strerror or exc}."
            raise EmulatorSeedError(msg) from exc
        source = str(path)

    try:
        seed = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = (
            f"The emulator seed {source} is not valid JSON: {exc.msg} "
            f"at line {exc.lineno}."
        )
        raise EmulatorSeedError(msg) from exc
    if not isinstance(seed, dict):
        msg = f"The emulator seed {source} must be a JSON object of entity lists."
        raise EmulatorSeedError(msg)
    return seed


def load_bundled_fields(name: str) -> list[dict[str, Any]]:
    """Read a bundled `entityInformation/fields` body and return its field list."""
    body = json.loads(_bundled_text(name))
    body.pop("_note", None)
    return list(body["fields"])


def build_tables(seed: Mapping[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """Check a seed and index its records by entity name and id."""
    known = {entity.seed_key: entity for entity in ENTITIES}
    unknown = [key for key in seed if key not in known and not key.startswith("_")]
    if unknown:
        msg = (
            f"The emulator seed has unknown entity lists {sorted(unknown)}; "
            f"expected some of {sorted(known)}."
        )
        raise EmulatorSeedError(msg)

    tables: dict[str, dict[int, dict[str, Any]]] = {}
    for entity in ENTITIES:
        rows = seed.get(entity.seed_key, [])
        if not isinstance(rows, list):
            msg = f"The emulator seed key {entity.seed_key} must hold a list."
            raise EmulatorSeedError(msg)
        table: dict[int, dict[str, Any]] = {}
        for index, row in enumerate(rows):
            record = _record(row, entity, f"{entity.seed_key}[{index}]")
            if record["id"] in table:
                msg = (
                    f"The emulator seed has two records with id {record['id']} "
                    f"in {entity.seed_key}."
                )
                raise EmulatorSeedError(msg)
            table[record["id"]] = record
        tables[entity.name] = table
    return tables


def _record(row: object, entity: EntitySpec, location: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        msg = f"The emulator seed record {location} must be a JSON object."
        raise EmulatorSeedError(msg)
    record: dict[str, Any] = {"userDefinedFields": []}
    for key, value in row.items():
        if key.lower() == "userdefinedfields":
            record["userDefinedFields"] = list(value or [])
            continue
        spec = entity.get_field(key)
        if spec is None:
            msg = f"The emulator seed record {location} has unknown field {key!r}."
            raise EmulatorSeedError(msg)
        try:
            normalise_value(value, spec.data_type)
        except ValueError as exc:
            msg = (
                f"The emulator seed field {location}.{key} is not a valid "
                f"{spec.data_type}: {exc}"
            )
            raise EmulatorSeedError(msg) from exc
        record[spec.name] = value

    if isinstance(record.get("id"), bool) or not isinstance(record.get("id"), int):
        msg = f"The emulator seed record {location} needs an integer id."
        raise EmulatorSeedError(msg)
    return record


def _bundled_text(name: str) -> str:
    package = resources.files("s1_autotask.emulators")
    return package.joinpath(_DATA, name).read_text(encoding="utf-8")
