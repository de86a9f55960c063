"""Schema fragments generated from the deployer's pydantic models, in the charts' schema style.

Pydantic's JSON schema (``model_json_schema``) says what the deployer accepts; the charts'
schemas say it the way Helm's validator reports it best. :func:`from_model` maps the one to the
other without changing what validates:

- ``$ref`` is inlined (each chart schema is one self-contained file);
- ``title``, ``default`` and ``examples`` go, and so do the models' docstrings (they document
  code); a field's ``description`` stays, since it is written for whoever sets the value;
- an optional field (``X | None``) is its ``X``: Helm drops a key set to null, so a chart value
  is never null;
- an ``enum`` keeps no ``type`` (the values say it);
- the keys of each schema come in one order (see ``KEY_ORDER``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel, TypeAdapter

from .builders import Schema

_DROPPED = ("title", "default", "examples")
# Type and bounds first; an object's description before its keys, a value's after its bounds.
KEY_ORDER = (
    "type",
    "enum",
    "const",
    "minLength",
    "minItems",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "pattern",
    "description",
    "minProperties",
    "maxProperties",
    "additionalProperties",
    "required",
    "properties",
    "prefixItems",
    "items",
)


class ModelSchemaError(ValueError):
    """A chart-side refinement names a field the model does not have."""


def from_model(
    model: type[BaseModel],
    *,
    replace: Mapping[str, Schema] | None = None,
    refine: Mapping[str, Mapping[str, Any]] | None = None,
    every_key_required: bool = False,
    description: str = "",
) -> Schema:
    """``model``'s JSON schema in the charts' style.

    ``replace`` swaps a nested model or enum (by class name) for a schema of the chart's own;
    ``refine`` updates one field's schema (``"Model.alias"``: keys to set, None to drop them),
    for what the model checks in code rather than in its schema. ``every_key_required`` is for
    values a chart's values.yaml sets in full: then each key but an optional one is required.
    ``description`` describes the whole (the model's docstring is not used).
    """
    raw = model.model_json_schema(by_alias=True)
    converter = _Converter(raw.pop("$defs", {}), replace or {}, refine or {}, every_key_required)
    schema = converter.convert(raw)
    unused = set(converter.refine) - converter.refined
    if unused:
        raise ModelSchemaError(f"refine names no field of {model.__name__}: {sorted(unused)}")
    schema.pop("description", None)  # the docstring
    if description:
        schema["description"] = description
    return _ordered(schema)


def field_schema(model: type[BaseModel], name: str) -> Schema:
    """The charts' schema of one field of ``model`` (by its name in Python)."""
    alias = model.model_fields[name].alias or name
    properties = from_model(model)["properties"]
    return properties[alias]  # type: ignore[no-any-return]


def enum_values(enum: type[Enum]) -> Schema:
    """``{"enum": [...]}``: the values of ``enum``, as pydantic validates them."""
    return {"enum": TypeAdapter(enum).json_schema()["enum"]}


class _Converter:
    def __init__(
        self,
        defs: Mapping[str, Schema],
        replace: Mapping[str, Schema],
        refine: Mapping[str, Mapping[str, Any]],
        every_key_required: bool,
    ) -> None:
        self.defs = defs
        self.replace = replace
        self.refine = refine
        self.refined: set[str] = set()
        self.every_key_required = every_key_required

    def convert(self, node: Schema) -> Schema:
        """One schema node and everything below it, converted."""
        owner = node.get("title", "")
        node = {key: value for key, value in node.items() if key not in _DROPPED}
        if "$ref" in node:
            name = node.pop("$ref").rsplit("/", 1)[-1]
            if name in self.replace:
                target = dict(self.replace[name])
            else:
                target = self.convert(self.defs[name])
                target.pop("description", None)  # the docstring: the use site describes it
            return _ordered({**target, **{key: self.convert_value(v) for key, v in node.items()}})
        branches = [branch for branch in node.get("anyOf", ()) if branch != {"type": "null"}]
        if "anyOf" in node and len(branches) == 1:
            del node["anyOf"]
            return self.convert({**branches[0], **node})
        if "enum" in node:
            node.pop("type", None)
        converted = {key: self.convert_value(value) for key, value in node.items()}
        if isinstance(node.get("properties"), dict):
            converted["properties"] = self._properties(node, owner)
            if self.every_key_required:
                required = sorted(k for k, raw in node["properties"].items() if not _optional(raw))
                converted.pop("required", None)
                if required:
                    converted["required"] = required
        return _ordered(converted)

    def convert_value(self, value: Any) -> Any:
        """A keyword's value: schemas below it converted, anything else as it is."""
        if isinstance(value, dict):
            return self.convert(value)
        if isinstance(value, list):
            return [self.convert(v) if isinstance(v, dict) else v for v in value]
        return value

    def _properties(self, node: Schema, owner: str) -> Schema:
        properties: Schema = {}
        for key, raw in node["properties"].items():
            schema = self.convert(raw)
            for name, value in self.refine.get(f"{owner}.{key}", {}).items():
                if value is None:
                    schema.pop(name, None)
                else:
                    schema[name] = value
            if f"{owner}.{key}" in self.refine:
                self.refined.add(f"{owner}.{key}")
            properties[key] = _ordered(schema)
        return properties


def _optional(raw: Schema) -> bool:
    return {"type": "null"} in raw.get("anyOf", ())


def _ordered(schema: Schema) -> Schema:
    known = [key for key in KEY_ORDER if key in schema]
    return {key: schema[key] for key in (*known, *(k for k in schema if k not in KEY_ORDER))}
