"""Check docker resource inputs against the pulumi-docker provider schema (tests/data subset)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).parent / "data" / "pulumi-docker-schema.subset.json"
TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    # protobuf Structs carry every number as a double: a whole float is an integer here.
    "integer": (int, float),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return loaded


def schema_errors(resource_type: str, inputs: dict[str, Any]) -> list[str]:
    resource = schema()["resources"].get(resource_type)
    if resource is None:
        return [f"{resource_type} is not in the provider schema subset"]
    return _object_errors(inputs, resource["inputProperties"], resource["requiredInputs"], resource_type)


def _object_errors(value: dict[str, Any], properties: dict[str, Any], required: list[str], where: str) -> list[str]:
    errors = [f"{where}.{key}: required input is missing" for key in required if key not in value]
    for key, item in value.items():
        if key not in properties:
            errors.append(f"{where}.{key}: not an input of the provider schema")
        else:
            errors += _value_errors(item, properties[key], f"{where}.{key}")
    return errors


def _value_errors(value: Any, spec: dict[str, Any], where: str) -> list[str]:
    ref = spec.get("$ref", "")
    if ref.startswith("#/types/"):
        target = schema()["types"][ref.removeprefix("#/types/")]
        if not isinstance(value, dict):
            return [f"{where}: expected an object of {ref}"]
        return _object_errors(value, target["properties"], target["required"], where)
    if ref:
        return []  # pulumi.json#/Any and the like accept anything
    expected = spec.get("type")
    if expected is None:
        return []
    wrong_type = not isinstance(value, TYPE_CHECKS[expected]) or (
        expected in ("integer", "number") and isinstance(value, bool)
    )
    if wrong_type or (expected == "integer" and isinstance(value, float) and not value.is_integer()):
        return [f"{where}: expected {expected}, got {value!r}"]
    if expected == "array" and "items" in spec:
        return [e for i, item in enumerate(value) for e in _value_errors(item, spec["items"], f"{where}[{i}]")]
    if expected == "object" and isinstance(spec.get("additionalProperties"), dict):
        return [
            e for k, item in value.items() for e in _value_errors(item, spec["additionalProperties"], f"{where}.{k}")
        ]
    return []
