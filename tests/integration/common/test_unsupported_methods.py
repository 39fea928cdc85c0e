"""A method a DRF view has no handler for is 405 `method_not_allowed` with `Allow`, whoever
asks: before authentication, permissions and throttles (API.md: an unknown method is 405).

The walk covers every DRF view the platform's URLconf serves, so a view added later cannot
answer 401 where the method alone decides.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from tests.factories.tokens import access_token

pytestmark = pytest.mark.django_db(databases=["default", "gateway", "aggregation"])

PROBLEM = "application/problem+json"
# What a path parameter is filled with: each view answers its own 404 for it, never reached.
SAMPLE = "00000000-0000-4000-8000-000000000000"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "BREW")
CALLERS = {
    "no-token": lambda: None,
    "forged-token": lambda: "forged",
    "user-token": access_token,
    "admin-token": lambda: access_token(roles=("user", "admin")),
}
_CONVERTER = re.compile(r"<(?:\w+:)?\w+>")


def drf_views(patterns=None, prefix=""):
    """`(path, view class)` of every DRF view in the URLconf, path parameters filled in."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = _CONVERTER.sub(SAMPLE, str(entry.pattern))
        if isinstance(entry, URLResolver):
            yield from drf_views(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            view_class = getattr(entry.callback, "cls", None)
            if isinstance(view_class, type) and issubclass(view_class, APIView):
                yield "/" + prefix + route, view_class


def handled(view_class) -> set[str]:
    """The methods `view_class` has a handler for; Django serves HEAD with `get` when the view
    has no `head` of its own."""
    methods = {m.upper() for m in view_class.http_method_names if hasattr(view_class, m)}
    if "GET" in methods and "head" in view_class.http_method_names:
        methods.add("HEAD")
    return methods


VIEWS = sorted(drf_views())


def test_the_walk_covers_the_platforms_views():
    paths = {path for path, _ in VIEWS}
    assert {
        "/api/v1/auth/me",
        f"/api/v1/users/{SAMPLE}",
        "/api/v1/gateway/routes",
        f"/api/v1/aggregation/composites/{SAMPLE}/run",
        "/api/v1/aggregation/runs",
        "/api/schema/",
        "/health",
    } <= paths, sorted(paths)
    assert len(VIEWS) > 25


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("path", "view_class"), VIEWS, ids=[path for path, _ in VIEWS])
def test_every_unsupported_method_is_405_with_allow_whoever_asks(client, path, view_class, caller):
    token = CALLERS[caller]()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    allowed = handled(view_class)
    refused = [method for method in METHODS if method not in allowed]
    assert "BREW" in refused
    for method in refused:
        response = client.generic(method, path, **headers)
        assert response.status_code == 405, (method, path, response.content)
        assert set(response["Allow"].split(", ")) == allowed, (method, path)
        assert response["Content-Type"] == PROBLEM, (method, path)
        if method != "HEAD":  # a HEAD answer has no body
            assert response.json()["code"] == "method_not_allowed", (method, path)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("path", "view_class"), VIEWS, ids=[path for path, _ in VIEWS])
def test_options_answers_every_caller_without_a_server_error(client, path, view_class, caller):
    # DRF describes a view's POST/PUT in its OPTIONS answer from the view's serializer; a
    # generic view that named none raised there, a 500 for admins only.
    token = CALLERS[caller]()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = client.options(path, **headers)
    assert response.status_code < 500, (path, response.content)
    if response.status_code == 200:
        assert set(response["Allow"].split(", ")) == handled(view_class), path
