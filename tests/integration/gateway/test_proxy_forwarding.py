"""The proxy forwards method, path, query, body and end-to-end headers; it sets its own."""

import pytest

pytestmark = pytest.mark.django_db(databases=["default", "gateway"])


def test_request_is_forwarded_with_prefix_stripped(proxy, upstream, add_route):
    add_route(upstream_url=upstream.url + "/base")
    response = proxy.post(
        "/orders/42/items?x=1&y=%20z",
        content=b'{"a": 1}',
        headers={"Content-Type": "application/json", "X-Custom": "kept"},
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/base/42/items"
    assert seen["query"] == "x=1&y=%20z"
    assert seen["body"] == '{"a": 1}'
    assert seen["headers"]["x-custom"] == "kept"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["x-request-id"] == response.headers["x-request-id"]
