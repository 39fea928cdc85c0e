"""Every answer a test gets from a documented operation is one the OpenAPI schema documents.

A pytest plugin (tests/conftest.py loads it). For the whole session it puts
`ConformanceMiddleware` outermost in Django's middleware, in the test process only (the
settings modules and the application's code are untouched; server processes started by e2e
tests do not have it). The middleware checks every answer of an operation the schema documents:
the status is documented for that path and method, the media type is documented for that status,
the body validates against the documented schema (`$ref`s resolved, `nullable` honoured, no
member the schema does not name), and a problem document's `code` is one the response lists.
Violations fail the test whose request caused them, naming the request and the rule broken.

Out of scope: paths and methods the schema does not document (OPTIONS, HEAD, the admin, the
schema and docs pages, the gateway's catch-all `/{path}`, paths no URL pattern matches).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker

MIDDLEWARE = "tests.openapi_conformance.ConformanceMiddleware"
PROXY_PATH = "/{path}"  # the gateway's catch-all, documented by hand and answered by upstreams
_CODES = re.compile(r"`code` is one of: ((?:`[^`]+`(?:, )?)+)")
_PARAMETER = re.compile(r"\{[^}/]+\}")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII
)

FORMATS = FormatChecker(["uuid", "email"])


@FORMATS.checks("date-time", raises=ValueError)
def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # raises when out of range
    return True


@FORMATS.checks("uri", raises=ValueError)
def _is_absolute_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def as_json_schema(node: Any, *, closed: bool) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema.

    `nullable: true` admits null; with `closed`, an object that lists its `properties` and says
    nothing of others admits no others (an undocumented member is a violation).
    """
    if isinstance(node, list):
        return [as_json_schema(item, closed=closed) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: as_json_schema(value, closed=closed)
        for key, value in node.items()
        if key not in {"nullable", "example", "discriminator", "readOnly", "writeOnly"}
    }
    if closed and "properties" in node and "additionalProperties" not in node:
        converted["additionalProperties"] = False
    if node.get("nullable"):
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        else:  # a `$ref` or `allOf` made nullable (`if`: its errors stay its own, not anyOf's)
            converted = {"if": {"type": "null"}, "else": converted}
    return converted


@dataclass(frozen=True)
class Answer:
    """What the conformance check looks at in one request and its response."""

    method: str
    path: str
    target: str  # the path and query as sent, for the report
    status: int
    content_type: str
    body: bytes | None  # None: a streamed body, not read

    def __str__(self) -> str:
        return f"{self.method} {self.target} -> {self.status}"


@dataclass
class Contract:
    """The documented operations of one OpenAPI document, with validators compiled on demand."""

    schema: dict[str, Any]
    _validators: dict[tuple[str, str, str, str], Draft202012Validator] = field(default_factory=dict)

    @cached_property
    def _templates(self) -> list[tuple[re.Pattern[str], str]]:
        templates = [path for path in self.schema["paths"] if path != PROXY_PATH]
        # A literal segment wins over a parameter: `/sessions` before `/{session_id}`.
        templates.sort(key=lambda path: len(_PARAMETER.findall(path)))
        return [(_pattern(path), path) for path in templates]

    def template_of(self, path: str) -> str | None:
        for pattern, template in self._templates:
            if pattern.match(path):
                return template
        return None

    def violations(self, answer: Answer) -> list[str]:
        """What is wrong with `answer` by the schema; empty when conforming or undocumented."""
        template = self.template_of(answer.path)
        if template is None:
            return []
        operation = self.schema["paths"][template].get(answer.method.lower())
        if operation is None:
            return []
        where = f"{answer.method} {template}"
        responses = operation["responses"]
        key = next(
            (
                candidate
                for candidate in (str(answer.status), f"{answer.status // 100}XX", "default")
                if candidate in responses
            ),
            None,
        )
        if key is None:
            return [f"status {answer.status} is not documented for {where}"]
        response = self._follow(responses[key])
        content = response.get("content", {})
        if answer.body == b"":
            if content:
                return [f"{where} {key} documents a body ({', '.join(content)}), none was sent"]
            return []
        media_type = answer.content_type.partition(";")[0].strip().lower()
        if not content:
            return [f"{where} {key} documents no body, one came as {media_type!r}"]
        if media_type not in content:
            return [f"{where} {key} documents {', '.join(content)}, the answer is {media_type!r}"]
        if answer.body is None or not _is_json(media_type):
            return []
        try:
            body = json.loads(answer.body)
        except ValueError:
            return [f"{where} {key} {media_type}: the body is not JSON"]
        problems = []
        validator = self._validator(template, answer.method, key, media_type)
        errors = sorted(validator.iter_errors(body), key=lambda error: str(error.absolute_path))
        problems.extend(
            f"{where} {key} body at {_location(error)}: {error.message}" for error in errors[:5]
        )
        codes = _listed_codes(response.get("description", ""))
        if codes and isinstance(body, dict) and body.get("code") not in codes:
            problems.append(
                f"{where} {key}: code {body.get('code')!r} is not one of the documented "
                f"{sorted(codes)}"
            )
        return problems

    def _follow(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.schema
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _validator(self, template: str, method: str, key: str, media: str) -> Draft202012Validator:
        cache_key = (template, method, key, media)
        if cache_key not in self._validators:
            response = self._follow(
                self.schema["paths"][template][method.lower()]["responses"][key]
            )
            body_schema = response["content"][media].get("schema", {})
            document = {
                **as_json_schema(body_schema, closed=True),
                "components": self._json_components,
            }
            self._validators[cache_key] = Draft202012Validator(document, format_checker=FORMATS)
        return self._validators[cache_key]

    @cached_property
    def _json_components(self) -> Any:
        return as_json_schema(self.schema.get("components", {}), closed=True)


def _pattern(template: str) -> re.Pattern[str]:
    """`/users/{user_id}` as a pattern matching `/users/<one segment>`."""
    parts = re.split(r"(\{[^}/]+\})", template)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts) + r"\Z"
    )


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _listed_codes(description: str) -> set[str]:
    match = _CODES.search(description)
    return set(re.findall(r"`([^`]+)`", match.group(1))) if match else set()


def _location(error: Any) -> str:
    return "".join(f"[{part!r}]" for part in error.absolute_path) or "the top"


def published_contract(urlconf: str | None = None) -> Contract:
    """The schema `/api/schema/` serves, generated and rendered the same way."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    schema = SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)
    return Contract(json.loads(OpenApiJsonRenderer().render(schema)))


# --- The test-only middleware and the pytest hooks ----------------------------------------------


class _Recorder:
    """The session's contract (built on the first answer) and the violations not yet reported."""

    def __init__(self) -> None:
        self.contract: Contract | None = None
        self.urlconf: str | None = None  # the platform's, whatever URLconf a test swaps in
        self.lock = threading.Lock()  # live_server answers in its own thread
        self.violations: list[str] = []

    def check(self, answer: Answer) -> None:
        with self.lock:
            if self.contract is None:
                self.contract = published_contract(self.urlconf)
            found = self.contract.violations(answer)
            self.violations.extend(f"{answer}: {violation}" for violation in found)

    def drain(self) -> list[str]:
        with self.lock:
            found, self.violations = self.violations, []
        return found


RECORDER = _Recorder()


class ConformanceMiddleware:
    """Outermost, test-only: records how each answer departs from the OpenAPI schema."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        RECORDER.check(
            Answer(
                method=request.method,
                path=request.path_info,
                target=request.get_full_path(),
                status=response.status_code,
                content_type=response.get("Content-Type", ""),
                body=None if response.streaming else response.content,
            )
        )
        return response


@pytest.fixture(scope="session", autouse=True)
def _openapi_conformance() -> Iterator[None]:
    """Put the conformance middleware outermost for the session."""
    from django.conf import settings

    original = list(settings.MIDDLEWARE)
    RECORDER.urlconf = settings.ROOT_URLCONF
    settings.MIDDLEWARE = [MIDDLEWARE, *original]
    yield
    settings.MIDDLEWARE = original


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _failing_on_violations(item, "while setting up"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _failing_on_violations(item, "during the test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    return (yield from _failing_on_violations(item, "while tearing down"))


def _failing_on_violations(item: pytest.Item, phase: str) -> Any:
    RECORDER.drain()  # what came before belongs to no phase of this test
    try:
        outcome = yield
    except BaseException as failure:
        if found := RECORDER.drain():
            failure.add_note(_report(item, phase, found))
        raise
    if found := RECORDER.drain():
        pytest.fail(_report(item, phase, found), pytrace=False)
    return outcome


def _report(item: pytest.Item, phase: str, found: list[str]) -> str:
    listed = "\n  ".join(found)
    return (
        f"{item.nodeid}: answers {phase} that the OpenAPI schema does not document "
        f"(tests/openapi_conformance.py):\n  {listed}"
    )
