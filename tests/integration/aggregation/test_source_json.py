"""A source's answer must be JSON the platform can answer with: no NaN, no lone surrogates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest

from apps.aggregation.fetching import HttpxSourceFetcher
from core.domain.aggregation.runs import SourceFailure
from core.usecases.aggregation.ports import Fetched, SourceRequest
from tests.integration.aggregation.conftest import source


def raw(upstream, text: str) -> str:
    return upstream.url("/raw?body=" + quote(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',
        '{"a": Infinity}',
        "[-Infinity]",
        '{"a": 1e999}',
        "[-1.5e400]",
        '{"n": "\\ud800"}',
        '{"\\udfff": 1}',
    ],
)
def test_json_the_platform_could_not_answer_with_is_invalid(upstream, text):
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=10_000)
        request = SourceRequest(key="s", method="GET", url=raw(upstream, text), timeout_ms=2000)
        result = fetcher.fetch_all([request])["s"]
    assert result.failure is SourceFailure.INVALID_JSON


def test_escaped_surrogate_pairs_are_text(upstream):
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=1) as executor:
        fetcher = HttpxSourceFetcher(client, executor, max_body_bytes=10_000)
        url = raw(upstream, '{"smile": "\\ud83d\\ude00"}')
        result = fetcher.fetch_all([SourceRequest("s", "GET", url, 2000)])["s"]
    assert isinstance(result, Fetched)
    assert result.body == {"smile": "\U0001f600"}


@pytest.mark.django_db(databases=["default", "aggregation"])
def test_an_optional_source_answering_nan_makes_a_partial_run_not_a_500(
    client, upstream, make_composite
):
    make_composite(
        "combo",
        source("ok", upstream.url("/json")),
        source("odd", raw(upstream, '{"a": NaN}'), required=False),
    )
    response = client.get("/api/v1/aggregation/composites/combo/run")
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["partial"] is True
    assert body["errors"]["odd"]["code"] == "source_invalid_json"
