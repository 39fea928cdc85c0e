"""The run's answers are the ones its OpenAPI schema documents: real answers are validated
against the published schema, and every member they carry is documented."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.integration.aggregation.conftest import DATABASES, source

pytestmark = pytest.mark.django_db(databases=DATABASES)
RUN_PATH = "/api/v1/aggregation/composites/{name}/run"


@pytest.fixture(scope="module")
def schema():
    from django.test import Client

    return Client().get("/api/schema/?format=json").json()


def as_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema: `nullable: true` becomes a null type."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        converted["type"] = [node["type"], "null"]
    return converted


def documented(schema, status: int, media_type: str) -> dict[str, Any]:
    """The body schema documented for `status`, resolvable on its own ($refs included)."""
    response = schema["paths"][RUN_PATH]["get"]["responses"][str(status)]
    body = response["content"][media_type]["schema"]
    return {**as_json_schema(body), "components": as_json_schema(schema["components"])}


def resolve(whole: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = whole
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def assert_members_documented(whole, node, value, where="answer"):
    """Every member of `value` is a documented property, recursively through objects."""
    node = resolve(whole, node)
    if not isinstance(value, dict):
        return
    properties = node.get("properties")
    if properties is not None:
        assert set(value) <= set(properties), f"{where}: {set(value) - set(properties)}"
        for key, member in value.items():
            assert_members_documented(whole, properties[key], member, f"{where}.{key}")
    elif isinstance(node.get("additionalProperties"), dict):
        for key, member in value.items():
            assert_members_documented(whole, node["additionalProperties"], member, f"{where}.{key}")


def run(client, name="combo"):
    return client.get(f"/api/v1/aggregation/composites/{name}/run")


def test_a_failed_run_is_the_documented_502(client, upstream, make_composite, schema):
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("broken", upstream.url("/json?status=500")),
        source("gone", "http://127.0.0.1:9/x", required=False),
    )
    response = run(client)
    assert response.status_code == 502
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "code", "data", "errors", "meta"}
    documented_body = documented(schema, 502, "application/problem+json")
    jsonschema.validate(body, documented_body)
    assert_members_documented(documented_body, documented_body, body)
    errors = resolve(documented_body, documented_body)["properties"]["errors"]
    entry = resolve(documented_body, errors["additionalProperties"])
    assert set(entry["properties"]) == {"status", "code", "detail"}


def test_a_partial_run_is_the_documented_200(client, upstream, make_composite, schema):
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("gone", "http://127.0.0.1:9/x", required=False),
    )
    response = run(client)
    assert response.status_code == 200
    documented_body = documented(schema, 200, "application/json")
    jsonschema.validate(response.json(), documented_body)
    assert_members_documented(documented_body, documented_body, response.json())
