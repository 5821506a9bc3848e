"""The OpenAPI documents say what the services answer: every error as problem+json, the
shared error answers on every operation, and no reference that points nowhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.errors import PROBLEM_JSON
from tests.ops_http.apps import unstarted_apps

# Error pages meant for people (documented as text/html on purpose).
HTML_ERRORS = {("get", "/r/{code}", "404")}


def operations(service: str) -> list[tuple[str, str, dict[str, Any]]]:
    spec = unstarted_apps()[service].openapi()
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


@pytest.mark.parametrize("service", ["catalog", "attribution"])
def test_every_error_answer_is_documented_as_problem_json(service: str) -> None:
    for method, path, operation in operations(service):
        for code, response in operation["responses"].items():
            if int(code) < 400 or (method, path, code) in HTML_ERRORS:
                continue
            assert list(response["content"]) == [PROBLEM_JSON], (method, path, code)
            schema = response["content"][PROBLEM_JSON]["schema"]
            assert "HTTPValidationError" not in json.dumps(schema), (method, path, code)


@pytest.mark.parametrize("service", ["catalog", "attribution"])
def test_the_shared_error_answers_are_on_every_operation(service: str) -> None:
    for method, path, operation in operations(service):
        codes = set(operation["responses"])
        if path.startswith("/v1/"):
            assert {"401", "403", "429", "503"} <= codes, (method, path)
            assert "Retry-After" in operation["responses"]["429"]["headers"]
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)


@pytest.mark.parametrize("service", ["catalog", "attribution"])
def test_every_reference_resolves(service: str) -> None:
    spec = unstarted_apps()[service].openapi()
    text = json.dumps(spec)
    assert "#/$defs/" not in text
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in spec["components"]["schemas"], ref
