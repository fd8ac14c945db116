"""Validates MAX Bot API traffic against the official OpenAPI schema, read in place.

The schema is ``max-messenger/api-schema`` ``schema.yaml`` (OpenAPI 3.0.0, ``info.version``
0.0.33), kept beside this repository at ``../shared/schemas/max-bot-api.yaml`` (or
``$MAX_BOT_API_SCHEMA``) and never copied into it. OpenAPI 3.0 is not JSON Schema, so the
components are converted in memory, with every ``$ref`` left where it is and resolved by
``referencing`` inside the converted document:

* ``nullable: true`` → ``anyOf: [{type: null}, <the schema>]``;
* a ``discriminator`` with a ``mapping`` dispatches on its property: the value must be one
  of the mapping's keys and the object must match the mapped schema (``if``/``then``). The
  mapped schemas extend the base with ``allOf: [{$ref: base}, …]``; there the base is used
  without its dispatch (``#/$defs/base/<name>``), or each would recurse into itself.

An exchange (:class:`Exchange` as the emulator records it) is checked for: a documented
path and method, the ``Authorization`` header (the schema's only security scheme), every
query parameter documented and of its type, required ones present, the JSON body against
the operation's ``requestBody``, and the answer against the documented response for its
status — a status the operation does not list (400, 403, 429, 503) against ``Error``,
the error shape every MAX error has.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_PATH = Path(
    os.environ.get(
        "MAX_BOT_API_SCHEMA",
        Path(__file__).resolve().parents[2] / "shared" / "schemas" / "max-bot-api.yaml",
    )
)
URI = "urn:max-bot-api"
_METHODS = ("get", "post", "put", "patch", "delete")


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: _convert(value)
        for key, value in node.items()
        if key not in ("nullable", "discriminator", "example", "deprecated")
        and not key.startswith("x-")
    }
    if node.get("nullable") is True:
        return {"anyOf": [{"type": "null"}, converted]}
    return converted


def _dispatching(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    discriminator = schema["discriminator"]
    prop = discriminator["propertyName"]
    mapping: dict[str, str] = discriminator["mapping"]
    return {
        "allOf": [
            {"$ref": f"#/$defs/base/{name}"},
            {"required": [prop], "properties": {prop: {"enum": sorted(mapping)}}},
            *(
                {
                    "if": {"properties": {prop: {"const": value}}, "required": [prop]},
                    "then": {"$ref": target},
                }
                for value, target in mapping.items()
            ),
        ]
    }


@functools.cache
def load() -> tuple[dict[str, Any], Registry[Any]]:
    document = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    schemas: dict[str, Any] = document["components"]["schemas"]
    discriminated = {name for name, s in schemas.items() if "discriminator" in s}
    converted: dict[str, Any] = {}
    bases: dict[str, Any] = {}
    for name, schema in schemas.items():
        plain = _convert(schema)
        for part in plain.get("allOf", []):
            ref = part.get("$ref", "") if isinstance(part, dict) else ""
            base = ref.rpartition("/")[2]
            if ref.startswith("#/components/schemas/") and base in discriminated:
                part["$ref"] = f"#/$defs/base/{base}"
        if name in discriminated:
            bases[name] = plain
            converted[name] = _dispatching(name, schema)
        else:
            converted[name] = plain
    resource_body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": {"schemas": converted, "responses": document["components"]["responses"]},
        "$defs": {"base": bases},
    }
    resource = Resource.from_contents(resource_body, default_specification=DRAFT202012)
    return document, Registry().with_resource(URI, resource)


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Problems of ``instance`` against an OpenAPI schema fragment of the document."""
    _, registry = load()
    converted = _rebase(_convert(schema))
    validator = Draft202012Validator(converted, registry=registry)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def component_errors(name: str, instance: Any) -> list[str]:
    return schema_errors({"$ref": f"#/components/schemas/{name}"}, instance)


def _rebase(node: Any) -> Any:
    """Point the fragment's local ``$ref`` s into the registered document."""
    if isinstance(node, list):
        return [_rebase(item) for item in node]
    if isinstance(node, dict):
        return {
            key: (f"{URI}{value}" if key == "$ref" and value.startswith("#") else _rebase(value))
            for key, value in node.items()
        }
    return node


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


@functools.cache
def _paths() -> list[tuple[re.Pattern[str], str]]:
    document, _ = load()
    found = []
    for template in document["paths"]:
        pattern = re.sub(r"\\\{[A-Za-z_]+\\\}", r"[^/]+", re.escape(template))
        found.append((re.compile(pattern + r"\Z"), template))
    return found


def operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    document, _ = load()
    for pattern, template in _paths():
        if pattern.match(path):
            op = document["paths"][template].get(method.lower())
            return (template, op) if op is not None else None
    return None


def _query_value(schema: dict[str, Any], raw: str) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(raw) if re.fullmatch(r"-?[0-9]+", raw) else raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    if kind == "array" or "items" in schema:
        return raw.split(",")
    return raw


def exchange_errors(exchange: dict[str, Any]) -> list[str]:
    """Everything wrong with one recorded Bot API exchange (empty if it is valid)."""
    document, _ = load()
    method, path = exchange["method"], exchange["path"]
    where = f"{method} {path}"
    found = operation(method, path)
    if found is None:
        return [f"{where}: not an operation of the schema"]
    _, op = found
    problems: list[str] = []
    if not exchange["authorized"]:
        problems.append(f"{where}: no Authorization header (securitySchemes.access_token)")
    params = {p["name"]: p for p in (_resolve(document, p) for p in op.get("parameters", []))}
    query = dict(exchange["query"])
    for name, raw in query.items():
        param = params.get(name)
        if param is None or param["in"] != "query":
            problems.append(f"{where}: query parameter {name!r} is not documented")
            continue
        schema = (
            _resolve(document, param["schema"]) if "$ref" in param["schema"] else param["schema"]
        )
        problems += [
            f"{where} ?{name}: {p}"
            for p in schema_errors(param["schema"], _query_value(schema, raw))
        ]
    for name, param in params.items():
        if param["in"] == "query" and param.get("required") and name not in query:
            problems.append(f"{where}: required query parameter {name!r} is missing")
    body_spec = op.get("requestBody")
    if body_spec is not None:
        body = exchange["request_json"]
        if body is None and body_spec.get("required"):
            problems.append(f"{where}: the request body is required")
        elif body is not None:
            schema = body_spec["content"]["application/json"]["schema"]
            problems += [f"{where} request: {p}" for p in schema_errors(schema, body)]
    status = str(exchange["status"])
    response = op["responses"].get(status)
    if response is None:
        if status.startswith("2"):
            return [*problems, f"{where}: status {status} is not documented"]
        schema = {"$ref": "#/components/schemas/Error"}
    else:
        response = _resolve(document, response)
        schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        problems += [
            f"{where} response {status}: {p}"
            for p in schema_errors(schema, exchange["response_json"])
        ]
    return problems
