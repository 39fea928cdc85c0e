"""The OpenAPI schema lists every status and problem code the platform can answer.

DRF operations gain the problems any DRF view may answer (merged into the ones they declare);
the gateway proxy, a lean WSGI app the generator cannot see, is documented from its error table.
"""

import errno
import inspect
import io
import json
import re

import pytest

from apps.common.openapi import merge_problem_codes
from apps.gateway.entrypoint import GatewayHandler
from apps.gateway.errors import GATEWAY_ERRORS
from core.domain.gateway.route import HTTP_METHODS
from core.usecases.gateway.errors import ProxyError

PROXY_PATH = "/{path}"
CODE = re.compile(r"`([^`]+)`")


class StalledBody:
    """A request body whose client stopped sending it: a read fails as the worker's socket
    timeout makes it fail (config/gunicorn_worker.py)."""

    def read(self, *_size):
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    readline = read


class CutBody(StalledBody):
    """A request body whose connection broke while it was read."""

    def read(self, *_size):
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    readline = read


@pytest.fixture(scope="module")
def schema():
    from django.test import Client

    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200, response.content
    return response.json()


def follow(schema, node):
    """`node`, or what its local `$ref` points at."""
    if "$ref" not in node:
        return node
    target = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target


def documented_codes(schema, operation, status):
    """The problem codes `operation` documents for `status` (empty when it lists none)."""
    response = operation["responses"].get(str(status))
    if response is None:
        return set()
    listed = follow(schema, response)["description"].partition("`code` is one of: ")[2]
    return set(CODE.findall(listed))


def drf_operations(schema):
    for path, item in schema["paths"].items():
        if path == PROXY_PATH:
            continue
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


# --- Problem documents ------------------------------------------------------------------------


def every_response(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                yield f"{method.upper()} {path} {status}", follow(schema, response)


def test_problems_are_declared_with_the_media_type_the_server_sends(schema):
    problem_ref = "#/components/schemas/Problem"
    declared = 0
    for name, response in every_response(schema):
        content = response.get("content", {})
        for media_type, body in content.items():
            if body.get("schema", {}).get("$ref") == problem_ref:
                assert media_type == "application/problem+json", (name, media_type)
                declared += 1
        if response["description"].startswith("Problem document"):
            assert "application/problem+json" in content, name
    assert declared > 100


# --- Operational endpoints --------------------------------------------------------------------


def test_health_readiness_and_metrics_are_documented_with_every_status(schema):
    paths = schema["paths"]
    health = paths["/health"]["get"]["responses"]
    assert follow(schema, health["200"]["content"]["application/json"]["schema"])["properties"]
    ready = paths["/health/ready"]["get"]["responses"]
    for status, media in (("200", "application/json"), ("503", "application/problem+json")):
        body = follow(schema, ready[status]["content"][media]["schema"])
        assert {"status", "checks"} <= set(body["properties"]), status
    problem = follow(schema, ready["503"]["content"]["application/problem+json"]["schema"])
    assert {"type", "title", "detail", "code"} <= set(problem["properties"])
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    for path in ("/health", "/health/ready", "/metrics"):
        operation = paths[path]["get"]
        assert "method_not_allowed" in documented_codes(schema, operation, 405), path
        assert "security" not in operation or {} in operation["security"], path
        assert set(paths[path]) == {"get"}, path


# --- The gateway proxy -------------------------------------------------------------------------


def test_proxy_path_is_documented_unprefixed_for_every_method_a_route_may_accept(schema):
    assert PROXY_PATH in schema["paths"], sorted(schema["paths"])
    operations = schema["paths"][PROXY_PATH]
    assert set(operations) == {method.lower() for method in HTTP_METHODS}
    for operation in operations.values():
        assert operation["tags"] == ["gateway proxy"]
        assert "longest `path_prefix`" in operation["description"]
        assert [p["name"] for p in operation["parameters"]] == ["path"]
    assert not any(path.startswith("/api/v1/{") for path in schema["paths"])


def test_proxy_documents_every_proxy_error_with_its_status(schema):
    for method, operation in schema["paths"][PROXY_PATH].items():
        for error in ProxyError:
            status = GATEWAY_ERRORS.status_of(error)
            assert error.value in documented_codes(schema, operation, status), (
                f"{method.upper()} {PROXY_PATH} does not document {status} `{error.value}`"
            )
            response = follow(schema, operation["responses"][str(status)])
            assert "application/problem+json" in response["content"]


def test_every_gateway_error_code_is_documented_under_its_status(schema):
    gateway_operations = [
        operation
        for path, item in schema["paths"].items()
        if path == PROXY_PATH or path.startswith("/api/v1/gateway/")
        for operation in item.values()
    ]
    for status, codes in GATEWAY_ERRORS.codes_by_status().items():
        for code in codes:
            assert any(
                code in documented_codes(schema, operation, status)
                for operation in gateway_operations
            ), f"no gateway operation documents {status} `{code}`"


def test_proxy_statuses_the_gateway_refuses_with_still_admit_the_upstreams_own_answer(schema):
    # A 404 or 500 of the upstream's is passed through as it is (API.md: the answer is the
    # upstream's unless the gateway refuses the call itself), in whatever media type it has.
    for method, operation in schema["paths"][PROXY_PATH].items():
        for status in {str(GATEWAY_ERRORS.status_of(error)) for error in ProxyError}:
            content = follow(schema, operation["responses"][status])["content"]
            assert set(content) == {"application/problem+json", "*/*"}, (method, status)


def test_proxy_answers_upstream_statuses_with_its_headers(schema):
    operation = schema["paths"][PROXY_PATH]["get"]
    assert {"2XX", "default"} <= set(operation["responses"])
    for key, response in operation["responses"].items():
        headers = follow(schema, response)["headers"]
        for name in ("X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "X-Cache"):
            assert name in headers, f"{key} lacks {name}"
        assert "RateLimit-Reset" in headers
    assert "Age" in follow(schema, operation["responses"]["2XX"])["headers"]  # a cache HIT's
    for error, header in (
        (ProxyError.METHOD_NOT_ALLOWED, "Allow"),
        (ProxyError.RATE_LIMITED, "Retry-After"),
        (ProxyError.UPSTREAM_UNAVAILABLE, "Retry-After"),
    ):
        response = operation["responses"][str(GATEWAY_ERRORS.status_of(error))]
        assert header in follow(schema, response)["headers"], (error, header)


def _proxy_answer(**environ):
    base = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/orders",
        "HTTP_HOST": "localhost",
        "wsgi.input": io.BytesIO(b""),
    }
    reply = GatewayHandler().handle({**base, **environ}, "rid-1")
    return reply.status, json.loads(reply.body)["code"]


@pytest.mark.parametrize(
    "environ",
    [
        {"HTTP_HOST": "evil.example"},
        {"CONTENT_LENGTH": "abc"},
        {"CONTENT_LENGTH": str(10**12)},
        {"CONTENT_LENGTH": "10", "wsgi.input": StalledBody()},
    ],
    ids=["host-not-allowed", "garbage-content-length", "oversized-body", "stalled-body"],
)
# A refused body reads the route table: a limited route's window goes on the answer.
@pytest.mark.django_db(databases=["gateway"])
def test_the_proxy_entrypoints_own_answers_are_documented(schema, environ):
    status, code = _proxy_answer(**environ)
    assert status >= 400
    operation = schema["paths"][PROXY_PATH]["post"]
    assert code in documented_codes(schema, operation, status), (status, code)


# --- DRF operations ----------------------------------------------------------------------------


def test_every_drf_operation_documents_405_with_allow(schema):
    for name, operation in drf_operations(schema):
        assert "method_not_allowed" in documented_codes(schema, operation, 405), name
        assert "Allow" in operation["responses"]["405"]["headers"], name


def test_no_operation_is_described_by_the_docstring_of_a_view_base(schema):
    # The platform's bases, and each app's (`AccountsView`, `PublicView`): a view without a
    # docstring of its own got "Endpoints anyone may call…" as its operation's description.
    from apps.accounts.views.auth import PublicView
    from apps.accounts.views.base import AccountsView
    from apps.common.apiviews import PlatformAPIView, PlatformGenericAPIView

    bases = (PlatformAPIView, PlatformGenericAPIView, AccountsView, PublicView)
    docstrings = {inspect.cleandoc(base.__doc__) for base in bases}
    for name, operation in drf_operations(schema):
        assert operation.get("description") not in docstrings, name


def test_every_drf_operation_answering_401_documents_its_challenge(schema):
    documented = 0
    for name, operation in drf_operations(schema):
        if "401" in operation["responses"]:
            documented += 1
            assert "WWW-Authenticate" in operation["responses"]["401"].get("headers", {}), name
    assert documented > 10, "the bearer operations and login/refresh answer 401"


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
def test_every_drf_operation_documents_the_400_for_a_nul_in_its_path_or_query(client, schema):
    # NulByteMiddleware answers before any view, on every path, whatever the method.
    checked = 0
    for name, operation in drf_operations(schema):
        method, path = name.split(" ", 1)
        response = client.generic(method, f"{concrete(path)}?q=%00")
        assert (response.status_code, response.json()["code"]) == (400, "malformed_request")
        assert "malformed_request" in documented_codes(schema, operation, 400), name
        checked += 1
    assert checked > 30


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
def test_every_drf_operation_documents_the_400_for_a_host_not_allowed(client, schema):
    # Django's DisallowedHost, on every path: from the Host header or, for an absolute-form
    # target, from the target's authority (apps.common.middleware.AbsoluteTargetHostMiddleware).
    checked = 0
    for name, operation in drf_operations(schema):
        method, path = name.split(" ", 1)
        target = concrete(path)
        for host in ({"HTTP_HOST": "evil.example"}, {"RAW_URI": f"http://evil.example{target}"}):
            response = client.generic(method, target, **host)
            assert (response.status_code, response.json()["code"]) == (400, "bad_request"), name
        assert "bad_request" in documented_codes(schema, operation, 400), name
        checked += 1
    assert checked > 30


def test_every_drf_operation_with_a_body_documents_400_and_415(schema):
    with_body = [(name, op) for name, op in drf_operations(schema) if "requestBody" in op]
    assert with_body
    for name, operation in with_body:
        assert "malformed_request" in documented_codes(schema, operation, 400), name
        assert "request_timeout" in documented_codes(schema, operation, 408), name
        assert "unsupported_media_type" in documented_codes(schema, operation, 415), name


def test_operations_without_a_body_do_not_claim_the_parsers_415(schema):
    operation = schema["paths"]["/api/v1/gateway/routes"]["get"]
    assert "415" not in operation["responses"]


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
def test_every_drf_operation_documents_the_413_for_a_body_past_the_limit(client, schema, settings):
    # BodySizeLimitMiddleware reads only Content-Length, before any view, whatever the method:
    # a GET or a DELETE that sends a body past the limit is refused as a POST's is.
    settings.MAX_REQUEST_BODY_BYTES = 2048
    checked = 0
    for name, operation in drf_operations(schema):
        method, path = name.split(" ", 1)
        response = client.generic(
            method, concrete(path), data=b"x" * 4096, content_type="application/json"
        )
        assert (response.status_code, response.json()["code"]) == (413, "payload_too_large"), name
        assert documented_codes(schema, operation, 413) == {"payload_too_large"}, name
        checked += 1
    assert checked > 30


def test_create_route_keeps_its_own_problems_beside_the_general_ones(schema):
    operation = schema["paths"]["/api/v1/gateway/routes"]["post"]
    assert documented_codes(schema, operation, 405) == {"method_not_allowed"}
    assert documented_codes(schema, operation, 413) == {"payload_too_large"}
    assert documented_codes(schema, operation, 415) == {"unsupported_media_type"}
    assert documented_codes(schema, operation, 400) == {
        "validation_error",
        "malformed_request",
        "bad_request",
    }
    assert documented_codes(schema, operation, 409) == {"route_name_taken", "route_prefix_taken"}
    assert "token_expired" in documented_codes(schema, operation, 401)
    assert "201" in operation["responses"]


def test_declared_codes_of_a_status_are_merged_not_overwritten(schema):
    # register declares 400 `validation_error` only; `malformed_request` and `bad_request` join.
    operation = schema["paths"]["/api/v1/auth/register"]["post"]
    assert documented_codes(schema, operation, 400) == {
        "validation_error",
        "malformed_request",
        "bad_request",
    }
    assert documented_codes(schema, operation, 409) == {"email_taken"}
    assert documented_codes(schema, operation, 429) == {"rate_limited"}


def test_codes_added_to_a_non_problem_response_keep_its_description():
    response = {"description": "The user."}
    merge_problem_codes(response, ["payload_too_large"])
    assert response["description"].startswith("The user. Or a problem document")
    assert "`payload_too_large`" in response["description"]


VERIFY_EMAIL = "/api/v1/auth/verify-email"
STALLED = {"wsgi.input": StalledBody()}
CUT = {"wsgi.input": CutBody()}


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda client: client.put(VERIFY_EMAIL, data="{}", content_type="application/json"), 405),
        (
            lambda client: client.post(VERIFY_EMAIL, data="{no", content_type="application/json"),
            400,
        ),
        (lambda client: client.post(VERIFY_EMAIL, data="token=x", content_type="text/plain"), 415),
        (
            lambda client: client.post(
                VERIFY_EMAIL, data="x" * 4096, content_type="application/json"
            ),
            413,
        ),
        (
            lambda client: client.post(
                VERIFY_EMAIL, data="{}", content_type="application/json", **STALLED
            ),
            408,
        ),
        (
            lambda client: client.post(
                VERIFY_EMAIL, data="{}", content_type="application/json", **CUT
            ),
            400,
        ),
    ],
    ids=[
        "unknown-method",
        "bad-json",
        "wrong-media-type",
        "oversized-body",
        "stalled-body",
        "cut-body",
    ],
)
def test_a_drf_views_general_answers_are_documented(client, settings, schema, send, status):
    settings.MAX_REQUEST_BODY_BYTES = 2048
    response = send(client)
    assert response.status_code == status, response.content
    code = response.json()["code"]
    operation = schema["paths"][VERIFY_EMAIL]["post"]
    assert code in documented_codes(schema, operation, status), (status, code)


NOT_NEGOTIATING = {"/health", "/health/ready", "/metrics"}  # FirstRendererNegotiation
# A composite run's query string is its composite's: `?format=` fills a placeholder there.
NO_FORMAT_OVERRIDE = {"/api/v1/aggregation/composites/{name}/run"}
PATH_PARAMETERS = {
    "name": "no-such-name",
    "user_id": "00000000-0000-4000-8000-000000000000",
    "session_id": "00000000-0000-4000-8000-000000000000",
}


def concrete(path):
    return re.sub(r"\{(\w+)\}", lambda match: PATH_PARAMETERS[match[1]], path)


def test_every_negotiating_drf_operation_documents_406_and_404(schema):
    for name, operation in drf_operations(schema):
        path = name.split(" ", 1)[1]
        negotiates = path not in NOT_NEGOTIATING
        reads_format = negotiates and path not in NO_FORMAT_OVERRIDE
        assert ("not_acceptable" in documented_codes(schema, operation, 406)) is negotiates, name
        assert ("not_found" in documented_codes(schema, operation, 404)) is reads_format, name


@pytest.mark.django_db(databases=["default", "gateway", "aggregation"])
def test_every_drf_operation_answering_406_for_an_unacceptable_accept_documents_it(client, schema):
    # Content negotiation comes before authentication, parsing and the database.
    checked = 0
    for name, operation in drf_operations(schema):
        method, path = name.split(" ", 1)
        response = client.generic(method, concrete(path), HTTP_ACCEPT="application/xml")
        if path in NOT_NEGOTIATING:
            assert response.status_code != 406, name
            continue
        assert response.status_code == 406, (name, response.status_code)
        assert response.json()["code"] in documented_codes(schema, operation, 406), name
        assert response["Content-Type"] == "application/problem+json", name
        checked += 1
    assert checked > 25


@pytest.mark.django_db(databases=["default"])
def test_an_unknown_format_is_the_documented_404(client, schema):
    response = client.post("/api/v1/auth/login?format=xml", {}, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    operation = schema["paths"]["/api/v1/auth/login"]["post"]
    assert "not_found" in documented_codes(schema, operation, 404)


@pytest.mark.django_db(databases=["default", "aggregation"])
def test_a_composite_run_leaves_format_to_the_composite(client, schema):
    response = client.get("/api/v1/aggregation/composites/no-such-name/run?format=xml")
    assert (response.status_code, response.json()["code"]) == (404, "composite_not_found")
    operation = schema["paths"]["/api/v1/aggregation/composites/{name}/run"]["get"]
    assert documented_codes(schema, operation, 404) == {"composite_not_found"}


def test_every_api_operation_documents_503_with_retry_after_and_no_other_does(schema):
    api_operations = 0
    for name, operation in drf_operations(schema):
        path = name.split(" ", 1)[1]
        if path.startswith("/api/v1/"):
            api_operations += 1
            assert documented_codes(schema, operation, 503) == {"service_unavailable"}, name
            assert "Retry-After" in operation["responses"]["503"]["headers"], name
        else:  # health, metrics, JWKS: /health/ready's 503 is its readiness body
            assert "service_unavailable" not in documented_codes(schema, operation, 503), name
    assert api_operations > 25


def test_every_rate_limited_operation_documents_retry_after(schema):
    limited = set()
    for name, operation in drf_operations(schema):
        if "429" in operation["responses"]:
            assert documented_codes(schema, operation, 429) == {"rate_limited"}, name
            assert "Retry-After" in operation["responses"]["429"]["headers"], name
            limited.add(name)
    assert {
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/password/reset",
        "GET /api/v1/aggregation/composites/{name}/run",
    } <= limited


def test_the_servers_own_refusals_are_listed(schema):
    from config.gunicorn_worker import HEAD_TIMEOUT_REFUSAL, PARSE_REFUSALS

    description = schema["info"]["description"]
    for _, status, code in (
        *PARSE_REFUSALS,
        (None, 400, "malformed_request"),
        (None, *HEAD_TIMEOUT_REFUSAL),
    ):
        assert f"{status} `{code}`" in description


def test_every_paginated_list_documents_page_and_page_size(schema):
    paginated = 0
    for name, operation in drf_operations(schema):
        ok = operation["responses"].get("200", {}).get("content", {}).get("application/json")
        if not ok or "results" not in follow(schema, ok["schema"]).get("properties", {}):
            continue
        paginated += 1
        parameters = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        for parameter in ("page", "page_size"):
            assert parameter in parameters, f"{name} does not document ?{parameter}="
            assert parameters[parameter]["schema"]["type"] == "integer", (name, parameter)
    assert paginated >= 4  # users, routes, composites, runs


def test_request_bodies_that_refuse_unknown_fields_say_so(schema):
    # The routes and composites APIs answer 400 to a field they do not know; a generated
    # client reads that from `additionalProperties: false`.
    components = schema["components"]["schemas"]
    strict = [
        "RouteInputRequest",
        "PatchedRouteChangesRequest",
        "RateLimitRequest",
        "CircuitBreakerRequest",
        "CompositeInputRequest",
        "PatchedCompositePatchRequest",
        "SourceInputRequest",
    ]
    assert {name: components[name].get("additionalProperties") for name in strict} == dict.fromkeys(
        strict, False
    )
    assert "additionalProperties" not in components["RouteOutput"]


def test_page_parameters_state_the_lowest_value_the_api_takes(schema):
    # `?page=0` and `?page_size=0` are 400: a client generated from the schema should know.
    found = [
        (path, parameter)
        for path, operations in schema["paths"].items()
        for operation in operations.values()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if parameter["name"] in {"page", "page_size"}
    ]
    assert len(found) >= 8, found
    for path, parameter in found:
        assert parameter["schema"] == {"type": "integer", "minimum": 1}, (path, parameter)


@pytest.mark.parametrize("body", ["CompositeInputRequest", "PatchedCompositePatchRequest"])
def test_a_composites_sources_state_how_many_the_api_takes_and_their_shape(schema, body):
    # 0 or 21 sources are 400; a PATCH's sources are whole sources, as on create (its items
    # were untyped, `{}`, so a generated client sent anything).
    sources = schema["components"]["schemas"][body]["properties"]["sources"]
    assert (sources["minItems"], sources["maxItems"]) == (1, 20)
    assert sources["items"] == {"$ref": "#/components/schemas/SourceInputRequest"}


def test_a_role_states_the_rule_the_api_checks(schema):
    # `?role=%17` was a schema-valid request answered 400.
    [role] = [
        p for p in schema["paths"]["/api/v1/users"]["get"]["parameters"] if p["name"] == "role"
    ]
    assert role["schema"]["pattern"] == "^[a-z][a-z0-9_:.-]{0,49}$"
