"""Operations of a provider's published OpenAPI 3.1 definition, from its own source files.

The files under ``tests/contracts/fixtures/<provider>/`` are copies of the provider's
definition (see the README there); ``$ref``s between them are file references relative
to the file that holds them, resolved here into self-contained JSON Schemas (OpenAPI 3.1
schemas are JSON Schema 2020-12). Only what an operation we use reaches is resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator

FIXTURES = Path(__file__).parent / "fixtures"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def resolve(node: Any, base: Path) -> Any:
    """``node`` with every ``$ref`` (a file relative to ``base``) replaced by its content."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = (base / node["$ref"]).resolve()
            if "#" in node["$ref"]:
                raise ValueError(f"fragment references are not supported: {node['$ref']}")
            resolved = resolve(_load(target), target.parent)
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return {**resolved, **resolve(siblings, base)} if siblings else resolved
        return {key: resolve(value, base) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, base) for item in node]
    return node


@dataclass(frozen=True)
class ResponseSpec:
    """One documented response: its media types with their schemas, and its headers."""

    content: dict[str, dict[str, Any]]
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    name: str  # "PUT /order-cancellations/{id}"
    spec: dict[str, Any]  # the operation, unresolved
    base: Path  # the directory its $refs are relative to
    parameters: list[dict[str, Any]]

    @property
    def statuses(self) -> set[int]:
        return {int(code) for code in self.spec["responses"]}

    def request_schema(self, media_type: str = "application/json") -> dict[str, Any]:
        body = resolve(self.spec["requestBody"], self.base)
        schema: dict[str, Any] = body["content"][media_type]["schema"]
        return schema

    def response(self, status: int) -> ResponseSpec:
        raw = resolve(self.spec["responses"][str(status)], self.base)
        content = {media: value["schema"] for media, value in (raw.get("content") or {}).items()}
        headers = {name: value["schema"] for name, value in (raw.get("headers") or {}).items()}
        return ResponseSpec(content, headers)

    def path_parameter(self, name: str) -> dict[str, Any]:
        for parameter in self.parameters:
            if parameter["in"] == "path" and parameter["name"] == name:
                schema: dict[str, Any] = parameter["schema"]
                return schema
        raise KeyError(name)


def operation(provider: str, path_file: str, template: str, method: str) -> Operation:
    """``method`` of the path item in ``fixtures/<provider>/<path_file>``."""
    path = FIXTURES / provider / path_file
    item = _load(path)
    parameters = resolve(item.get("parameters") or [], path.parent)
    return Operation(f"{method.upper()} {template}", item[method.lower()], path.parent, parameters)


# -- checking a body against a schema ----------------------------------------------


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every way ``instance`` breaks ``schema`` (formats included), as ``path: message``."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or 'body'}: {error.message}"
        for error in validator.iter_errors(instance)
    )


def _property_schemas(schema: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The subschemas that describe property ``name`` of an object ``schema`` (allOf too)."""
    found = []
    if name in (schema.get("properties") or {}):
        found.append(schema["properties"][name])
    for branch in schema.get("allOf") or []:
        found += _property_schemas(branch, name)
    return found


def marked(schema: dict[str, Any], instance: Any, keyword: str, path: str = "") -> list[str]:
    """Paths of the values in ``instance`` whose schema says ``keyword: true``
    (``readOnly`` in a request, ``writeOnly`` in a response: JSON Schema only annotates)."""
    hits: list[str] = []
    if isinstance(instance, dict):
        for name, value in instance.items():
            where = f"{path}.{name}" if path else name
            for sub in _property_schemas(schema, name):
                if sub.get(keyword):
                    hits.append(where)
                else:
                    hits += marked(sub, value, keyword, where)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, value in enumerate(instance):
            hits += marked(schema["items"], value, keyword, f"{path}.{index}")
    return hits


def _header_value(schema: dict[str, Any], raw: str) -> Any:
    if schema.get("type") == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw


# -- checking an exchange -----------------------------------------------------------


def request_problems(op: Operation, request: httpx.Request, path_id: str | None) -> list[str]:
    """How a request leaves the definition: body schema, read-only fields, media type,
    the ``{id}`` path parameter."""
    problems = []
    if path_id is not None:
        problems += [f"id {p}" for p in schema_errors(op.path_parameter("id"), path_id)]
    if "requestBody" not in op.spec:
        return problems + (["a body the operation does not take"] if request.content else [])
    media = request.headers.get("content-type", "").split(";")[0].strip()
    if media != "application/json":
        return [*problems, f"content type {media!r}"]
    schema = op.request_schema()
    body = json.loads(request.content)
    problems += schema_errors(schema, body)
    problems += [f"{p}: read-only, sent" for p in marked(schema, body, "readOnly")]
    return problems


def response_problems(op: Operation, response: httpx.Response) -> list[str]:
    """How an answer leaves the definition: an undocumented status, media type, body
    schema, write-only fields, missing or malformed documented headers."""
    if response.status_code not in op.statuses:
        return [f"status {response.status_code} is not documented ({sorted(op.statuses)})"]
    spec = op.response(response.status_code)
    problems = []
    for name, schema in spec.headers.items():
        raw = response.headers.get(name)
        if raw is None:
            problems.append(f"header {name} missing")
            continue
        problems += [
            f"header {name} {p}" for p in schema_errors(schema, _header_value(schema, raw))
        ]
    if not spec.content:
        return problems + (["a body the answer does not have"] if response.content else [])
    media = response.headers.get("content-type", "").split(";")[0].strip()
    if media not in spec.content:
        return [*problems, f"media type {media!r}, documented {sorted(spec.content)}"]
    schema = spec.content[media]
    body = response.json()
    problems += schema_errors(schema, body)
    problems += [f"{p}: write-only, answered" for p in marked(schema, body, "writeOnly")]
    return problems
