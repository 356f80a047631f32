"""Pydantic model -> Kubernetes structural OpenAPI v3 schema.

The CRDs in ``crds/`` are generated from the same models that load the local YAML files, so a field that
the CLI accepts is a field the API server accepts (and ``kubectl explain`` documents).  Structural schemas
forbid ``$ref``, require a ``type`` at every level and cannot express unions of different types; values
whose shape is open (plugin params, override trees, union types) are emitted as
``x-kubernetes-preserve-unknown-fields`` and validated by the controller with the pydantic model instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_KEEP = (
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "format",
)
INT_OR_STRING = "x-kubernetes-int-or-string"
_FORMATS = {"date-time", "date", "int32", "int64", "float", "double", "byte"}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of ``model`` (camelCase field names, as the CRD spells them)."""
    raw = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs)


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)

    options = node.get("anyOf") or node.get("oneOf")
    if options:
        non_null = [o for o in options if o.get("type") != "null"]
        nullable = len(non_null) < len(options)
        chosen = _convert({**non_null[0], **_extras(node)}, defs) if len(non_null) == 1 else _open(node)
        if nullable:
            chosen["nullable"] = True
        return chosen
    if "allOf" in node and len(node["allOf"]) == 1:
        return _convert({**node["allOf"][0], **_extras(node)}, defs)
    if "const" in node:
        node = {**node, "enum": [node["const"]]}

    if node.get(INT_OR_STRING):  # the one shape the API server allows for it (structural schemas)
        return {INT_OR_STRING: True, "anyOf": [{"type": "integer"}, {"type": "string"}], **_extras(node)}
    kind = node.get("type")
    if kind is None:
        return _open(node)
    out: dict[str, Any] = {"type": kind}
    for key in _KEEP:
        if key in node:
            out[key] = node[key]
    if out.get("format") not in _FORMATS:
        out.pop("format", None)
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node:
            out[flag] = node[bound]
            out[bound] = True
    if kind == "object":
        props = node.get("properties")
        extra = node.get("additionalProperties")
        if props:
            out["properties"] = {name: _convert(sub, defs) for name, sub in props.items()}
            required = [r for r in node.get("required", []) if r in props]
            if required:
                out["required"] = required
        elif isinstance(extra, dict) and extra:
            out["additionalProperties"] = _convert(extra, defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif kind == "array":
        items = node.get("items")
        out["items"] = _convert(items, defs) if items else _open({})
    return out


def _extras(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k in _KEEP}


def _open(node: dict[str, Any]) -> dict[str, Any]:
    """A value of open shape: any JSON, checked by the controller's pydantic validation."""
    out: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
    if "description" in node:
        out["description"] = node["description"]
    return out
