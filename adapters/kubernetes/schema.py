"""Pydantic JSON schemas turned into Kubernetes structural OpenAPI v3 schemas.

A CustomResourceDefinition's schema must be *structural*: every node names its type, there are no ``$ref``,
``anyOf`` branches carry no types of their own, ``additionalProperties: false`` is not allowed (the API
server prunes unknown fields instead), and OpenAPI v3.0 spells ``exclusiveMinimum`` as a flag beside
``minimum``. :func:`structural` rewrites what pydantic produces into that form:

- ``$ref`` / ``allOf [$ref]``: inlined from ``$defs`` (the spec models are not recursive);
- ``anyOf [X, null]`` (an optional field): ``X``;
- ``anyOf [integer, string]`` and the fields a before-validator reads from an int or a string (durations,
  int-or-percent): ``x-kubernetes-int-or-string``;
- any other ``anyOf``, ``Any`` and open ``dict[str, Any]`` models: ``x-kubernetes-preserve-unknown-fields``;
- ``const``: a one-value ``enum``; titles, defaults and formats dropped (pydantic applies the defaults when
  the controller reads the object, so the API server does not need to, and must not rewrite what was written).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

Schema = dict[str, Any]

INT_OR_STRING: Schema = {"x-kubernetes-int-or-string": True}
ANYTHING: Schema = {"x-kubernetes-preserve-unknown-fields": True}
_DROPPED = ("title", "default", "format", "examples")


class IntOrStringValidators(GenerateJsonSchema):
    """Fields read by a before-validator whose function is in ``int_or_string`` accept an int or a string."""

    int_or_string: frozenset[Any] = frozenset()

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        if schema["function"]["function"] in self.int_or_string:
            return dict(INT_OR_STRING)
        return super().function_before_schema(schema)


def model_schema(model: type[BaseModel], int_or_string: frozenset[Any] = frozenset()) -> Schema:
    generator = type("Generator", (IntOrStringValidators,), {"int_or_string": int_or_string})
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=generator)
    return structural(raw, raw.get("$defs", {}))


def _inline(node: Schema, defs: Schema) -> Schema:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if "allOf" in node and len(node["allOf"]) == 1:
        return {**_inline(node["allOf"][0], defs), **{k: v for k, v in node.items() if k != "allOf"}}
    return node


def _any_of(branches: list[Schema], defs: Schema, outer: Schema) -> Schema:
    present = [b for b in branches if b.get("type") != "null"]
    if len(present) == 1:
        return structural({**present[0], **outer}, defs)
    if present and all(b.get("type") == "string" for b in present):
        merged: Schema = {"type": "string", **_described(outer)}
        if all("enum" in b or "const" in b for b in present):
            merged["enum"] = [v for b in present for v in b.get("enum", [b.get("const")])]
        return merged
    if present and all(b.get("type") in ("integer", "string") or b == INT_OR_STRING for b in present):
        return {**INT_OR_STRING, **_described(outer)}
    return {**ANYTHING, **_described(outer)}


def _described(node: Schema) -> Schema:
    return {"description": node["description"]} if "description" in node else {}


def structural(node: Schema, defs: Schema) -> Schema:
    node = _inline(node, defs)
    rest = {k: v for k, v in node.items() if k not in (*_DROPPED, "$defs")}
    if "anyOf" in rest or "oneOf" in rest:
        branches = rest.pop("anyOf", None) or rest.pop("oneOf")
        return _any_of([_inline(b, defs) for b in branches], defs, rest)
    if rest.get("x-kubernetes-int-or-string"):
        return rest
    if "const" in rest:
        value = rest.pop("const")
        rest.setdefault("type", "string" if isinstance(value, str) else "integer")
        rest["enum"] = [value]
    if "exclusiveMinimum" in rest:
        rest["minimum"], rest["exclusiveMinimum"] = rest["exclusiveMinimum"], True
    if "exclusiveMaximum" in rest:
        rest["maximum"], rest["exclusiveMaximum"] = rest["exclusiveMaximum"], True
    if "type" not in rest:  # Any
        return {**ANYTHING, **_described(rest)}
    if rest["type"] == "object":
        return _object(rest, defs)
    if rest["type"] == "array":
        rest["items"] = structural(rest.get("items", {}), defs)
    return rest


def _object(node: Schema, defs: Schema) -> Schema:
    out = {k: v for k, v in node.items() if k not in ("properties", "additionalProperties", "required")}
    extra = node.get("additionalProperties")
    if "properties" in node:
        out["properties"] = {name: structural(sub, defs) for name, sub in node["properties"].items()}
        if node.get("required"):
            out["required"] = list(node["required"])
    elif isinstance(extra, dict) and extra.get("type") not in (None,):
        out["additionalProperties"] = structural(extra, defs)
    else:  # dict[str, Any] or an empty model: keep whatever the user writes
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out
