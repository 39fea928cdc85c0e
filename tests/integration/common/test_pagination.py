"""Every paginated list reads `?page=` and `?page_size=` the same way."""

from __future__ import annotations

import pytest

from tests.factories.accounts import AdminFactory
from tests.integration.accounts.conftest import bearer, login

pytestmark = pytest.mark.django_db(databases=["default", "gateway", "aggregation"])

LISTS = [
    "/api/v1/users",
    "/api/v1/gateway/routes",
    "/api/v1/aggregation/composites",
    "/api/v1/aggregation/runs",
]


@pytest.fixture
def admin(api_client):
    """A signed-in admin (the users list checks the token's user in the database too)."""
    AdminFactory(email="root@example.com")
    api_client.credentials(**bearer(login(api_client, "root@example.com")["access_token"]))
    return api_client


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [("page=abc", "page"), ("page=0", "page"), ("page=last", "page"), ("page_size=x", "page_size")],
)
def test_a_page_or_size_that_is_not_a_whole_number_from_1_is_a_validation_error(
    admin, path, query, field
):
    answer = admin.get(f"{path}?{query}")
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "validation_error"
    assert field in answer.json()["errors"]


# Python's int() takes these (other scripts' digits, full-width ones, a sign, blanks,
# underscores) and DRF's IntegerField a trailing ".0": none is how a page number is written.
NOT_PLAIN_DIGITS = ["٣", "\uff13", "१", "+3", " 3", "3 ", "1_0", "3.0", "٣٣", "\u0661"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("field", ["page", "page_size"])
@pytest.mark.parametrize("value", NOT_PLAIN_DIGITS)
def test_a_page_or_size_in_anything_but_ascii_digits_is_a_validation_error(
    admin, path, field, value
):
    answer = admin.get(path, {field: value})
    assert answer.status_code == 400, (value, answer.content)
    assert answer.json()["code"] == "validation_error"
    assert answer.json()["errors"] == {field: ["A valid integer is required."]}


@pytest.mark.parametrize("path", LISTS)
def test_plain_digits_with_leading_zeros_and_an_empty_page_are_taken(admin, path):
    """`01` is the number 1 in ASCII digits; `page=` is no page asked, as a form sends it."""
    for query in ({"page": "01", "page_size": "007"}, {"page": ""}, {"page_size": ""}):
        assert admin.get(path, query).status_code == 200, query


@pytest.mark.parametrize("path", LISTS)
def test_a_page_past_the_end_is_not_found_and_sizes_are_cut_to_200(admin, path):
    assert admin.get(f"{path}?page=2").status_code == 404
    assert admin.get(f"{path}?page=99999999999999999999999").status_code == 404
    first = admin.get(f"{path}?page=1&page_size=100000")
    assert first.status_code == 200, first.content
    assert first.json()["next"] is None
