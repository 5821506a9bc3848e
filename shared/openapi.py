"""The error answers every operation can give, documented once for both services.

FastAPI documents what a router declares (and a 422 in its own, unused, shape). The shared
layer answers more than that on every route, always as problem+json: 401/403 (auth), 429 (rate
limit) and 503 (database outage) on ``/v1/``; 400/413/422 where there is a body; 422 where
there are parameters; 404 where there is a path parameter (an id of no object, or that matches
no route). This post-processing adds those, turns every error answer's content into
``application/problem+json`` (keeping a router's own problem schema, e.g. the ingest 422), and
adds the ``Retry-After`` / ``WWW-Authenticate`` headers that come with them. Responses a
router documents in another media type on purpose (the HTML 404 page of ``/r/{code}``) are
left alone.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from shared.errors import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; validation errors add `errors`",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {}},
                    "field": {"type": "string"},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
_DESCRIPTIONS = {
    400: "Malformed JSON or an unreadable body (problem+json)",
    401: "Missing, invalid, expired or revoked bearer token (problem+json)",
    403: "The token lacks the scope this operation needs (problem+json)",
    404: "No such object in this tenant, or no such route (problem+json)",
    413: "The body is larger than the limit (problem+json)",
    422: "Invalid input; `errors` names each field (problem+json)",
    429: "This token's rate limit is used up; retry after `Retry-After` seconds",
    503: "The database, a query's time bound or the revoked-token list gave out; retry after "
    "`Retry-After` seconds",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer realm=…`", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _statuses(path: str, operation: dict[str, Any]) -> set[int]:
    statuses: set[int] = set()
    locations = {p.get("in") for p in operation.get("parameters", [])}
    if path.startswith("/v1/"):
        statuses |= {401, 403, 429, 503}
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if locations & {"query", "path", "header", "cookie"}:
        statuses.add(422)
    if "{" in path:
        statuses.add(404)
    return statuses


def _problem_content(response: dict[str, Any]) -> None:
    content: dict[str, Any] = response.get("content") or {}
    if PROBLEM_JSON in content:
        # A router's own problem schema; FastAPI adds its `model` as application/json too,
        # which errors are never answered in.
        content.pop("application/json", None)
        return
    if content and "application/json" not in content:
        return  # documented in another media type on purpose (e.g. an HTML page)
    schema = content.get("application/json", {}).get("schema")
    if not schema or schema.get("$ref", "").endswith("/HTTPValidationError"):
        schema = PROBLEM_REF
    response["content"] = {PROBLEM_JSON: {"schema": schema}}


def hoist_local_defs(schema: dict[str, Any]) -> None:
    """Move ``$defs`` nested in operations (from ``openapi_extra`` bodies built with
    ``model_json_schema()``) into ``components/schemas``: their ``#/$defs/…`` references
    resolve against the document root, where nothing is, so tools could not read them."""
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})

    def rename(name: str, definition: Any) -> str:
        candidate, n = name, 1
        while candidate in components and components[candidate] != definition:
            n += 1
            candidate = f"{name}{n}"
        return candidate

    def rewrite(node: Any, names: dict[str, str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = names.get(ref.removeprefix("#/$defs/"))
                if target is not None:
                    node = {**node, "$ref": f"#/components/schemas/{target}"}
            return {k: rewrite(v, names) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v, names) for v in node]
        return node

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            if isinstance(node.get("$defs"), dict):
                defs: dict[str, Any] = node["$defs"]
                names = {name: rename(name, d) for name, d in defs.items()}
                for name, definition in defs.items():
                    components[names[name]] = rewrite(definition, names)
                node = rewrite({k: v for k, v in node.items() if k != "$defs"}, names)
            return {k: visit(v) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v) for v in node]
        return node

    schema["paths"] = visit(schema.get("paths", {}))


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the shared error answers to every operation of an OpenAPI document (in place)."""
    hoist_local_defs(schema)
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in _statuses(path, operation):
                responses.setdefault(str(status), {"description": _DESCRIPTIONS[status]})
            for code, response in responses.items():
                if not code.isdigit() or int(code) < 400:
                    continue
                _problem_content(response)
                for name, header in _HEADERS.get(int(code), {}).items():
                    response.setdefault("headers", {}).setdefault(name, copy.deepcopy(header))
    return schema


def install_problem_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) document the shared error answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = generate()  # FastAPI's, cached on the app after the first call
        return document_problems(schema) if fresh else schema

    # FastAPI documents replacing app.openapi as the way to customise the schema.
    app.openapi = openapi  # type: ignore[method-assign]
