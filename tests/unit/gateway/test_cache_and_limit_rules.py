"""Which answers may be cached under which key, and rate-limit headers and subjects."""

import pytest

from core.domain.gateway.caching import (
    MAX_AGE_SECONDS,
    age_on_arrival,
    age_value,
    cache_key,
    carries_credentials,
    current_age,
    request_is_cacheable,
    response_is_cacheable,
    serves,
    variant,
    vary_names,
    without_age,
)
from core.domain.gateway.ratelimit import RateDecision, limit_subject
from core.domain.gateway.route import LimitKey, RateLimitPolicy


def test_only_get_and_head_with_a_ttl_are_cacheable():
    assert request_is_cacheable("GET", 5)
    assert request_is_cacheable("HEAD", 5)
    assert not request_is_cacheable("POST", 5)
    assert not request_is_cacheable("GET", 0)


@pytest.mark.parametrize(
    ("status", "headers", "cacheable"),
    [
        (200, (("Cache-Control", "max-age=60"),), True),
        (200, (("Cache-Control", "no-store"),), False),
        (200, (("cache-control", "Private, max-age=5"),), False),
        (200, (("Set-Cookie", "a=1"),), False),
        (200, (("Cache-Control", "public, no-cache"),), False),  # revalidate first: we don't
        (200, (("Cache-Control", 'no-cache="Set-Cookie"'),), False),
        (200, (("Vary", "Accept-Encoding"),), True),
        (200, (("Vary", "Accept-Encoding"), ("vary", "*")), False),
        (404, (), False),
    ],
)
def test_response_cacheability(status, headers, cacheable):
    assert response_is_cacheable(status, headers) is cacheable


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "Cookie",
        "X-API-Key",
        "x-apikey",
        "apikey",
        "API-KEY",
        "X-Goog-Api-Key",
        "Ocp-Apim-Subscription-Key",
        "X-Functions-Key",
        "X-Auth-Token",
        "X-Access-Token",
        "X-Amz-Security-Token",
        "X-Vault-Token",
        "Private-Token",
    ],
)
def test_a_request_sending_a_credential_header_carries_credentials(name):
    assert carries_credentials([("Accept", "application/json"), (name, "tenant-a")])


def test_a_request_without_credential_headers_carries_none():
    # `Proxy-Authorization` is hop-by-hop: it never reaches the upstream, so it shapes nothing.
    sent = [("Accept", "*/*"), ("X-Request-ID", "r1"), ("Proxy-Authorization", "Basic eDp5")]
    assert not carries_credentials(sent)


def test_response_cacheability_reads_headers_given_as_a_one_pass_iterable():
    assert not response_is_cacheable(200, iter([("Cache-Control", "public"), ("Vary", "*")]))


def test_vary_names_the_request_fields_an_answer_depends_on():
    assert vary_names(()) == ()
    assert vary_names((("Vary", "Accept-Encoding, origin"), ("VARY", " Accept "))) == (
        "accept",
        "accept-encoding",
        "origin",
    )
    assert vary_names((("Vary", "Origin, *"),)) is None


def test_a_stored_answer_serves_only_requests_sending_what_its_request_sent():
    gzip = (("Accept-Encoding", "gzip"), ("Accept", "*/*"), ("accept-encoding", "br"))
    stored = variant(gzip, ("accept-encoding", "origin"))
    assert [name for name, _ in stored] == ["accept-encoding", "origin"]
    assert stored == variant((("accept-encoding", "gzip, br"),), ("accept-encoding", "origin"))
    assert serves(stored, (("ACCEPT-ENCODING", " gzip "), ("Accept-Encoding", "br")))
    assert not serves(stored, (("Accept-Encoding", "identity"),))
    assert not serves(stored, (("Accept-Encoding", "gzip, br"), ("Origin", "https://a.example")))
    assert not serves(stored, ())
    assert serves((), (("Accept-Encoding", "identity"),))  # it varies on nothing
    assert variant(gzip, ()) == ()


def test_keys_differ_per_user_and_from_anonymous():
    keys = {
        cache_key("r", "GET", "http://up/x", "http://gw", None),
        cache_key("r", "GET", "http://up/x", "http://gw", "alice"),
        cache_key("r", "GET", "http://up/x", "http://gw", "bob"),
        cache_key("r", "GET", "http://up/x?a=1", "http://gw", None),
        cache_key("r", "HEAD", "http://up/x", "http://gw", None),
        cache_key("r", "GET", "http://up/x?", "http://gw", None),  # `/x?`: another upstream target
        cache_key("r", "GET", "http://elsewhere/x", "http://gw", None),
        cache_key("r", "GET", "http://up/x", "http://gw.internal", None),  # another name of ours
        cache_key("r", "GET", "http://up/x", "https://gw", None),  # asked for over https
    }
    assert len(keys) == 9
    assert cache_key("r", "GET", "http://up/x", "http://gw", "alice").startswith("r:")
    assert cache_key("r", "GET", "http://up/x", "http://GW", None) == cache_key(
        "r", "GET", "http://up/x", "http://gw", None
    )


def test_rate_headers_and_retry_after():
    allowed = RateDecision(True, 10, 3, 4.2)
    assert dict(allowed.headers()) == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "3",
        "RateLimit-Reset": "5",
    }
    refused = RateDecision(False, 10, 0, 0.2)
    assert dict(refused.headers())["Retry-After"] == "1"


def test_a_window_as_it_stands_says_what_a_call_now_would_find():
    fresh = RateDecision.standing(limit=3, used=0, reset_seconds=0.0)
    assert fresh == RateDecision(True, 3, 3, 0.0)
    assert RateDecision.standing(limit=3, used=2, reset_seconds=7.5) == RateDecision(
        True, 3, 1, 7.5
    )
    full = RateDecision.standing(limit=3, used=3, reset_seconds=0.5)
    assert full == RateDecision(False, 3, 0, 0.5)
    # A limit lowered below what the window holds: nothing left, never a negative count.
    assert dict(RateDecision.standing(2, 5, 1.0).quota_headers())["RateLimit-Remaining"] == "0"


def test_a_refusal_for_another_reason_carries_the_three_fields_and_no_retry_after():
    """A 401 or 405 is not a rate-limit refusal: waiting `Retry-After` would not help it."""
    full = RateDecision(False, 10, 0, 0.2)
    assert full.quota_headers() == (
        ("RateLimit-Limit", "10"),
        ("RateLimit-Remaining", "0"),
        ("RateLimit-Reset", "1"),
    )
    assert full.headers() == (*full.quota_headers(), ("Retry-After", "1"))
    allowed = RateDecision(True, 10, 3, 4.2)
    assert allowed.quota_headers() == allowed.headers()


def test_limit_subject_is_the_user_when_asked_and_known_else_the_ip():
    per_user = RateLimitPolicy(1, 1, LimitKey.USER)
    assert limit_subject("r", per_user, user_id="u1", client_ip="1.2.3.4") == "r:user:u1"
    assert limit_subject("r", per_user, user_id=None, client_ip="1.2.3.4") == "r:ip:1.2.3.4"
    per_ip = RateLimitPolicy(1, 1, LimitKey.IP)
    assert limit_subject("r", per_ip, user_id="u1", client_ip="1.2.3.4") == "r:ip:1.2.3.4"


@pytest.mark.parametrize(
    ("client_ip", "counted_as"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2::/64"),  # the same host's /64
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("1.2.3.4", "1.2.3.4"),
        ("not:an:address", "not:an:address"),
    ],
)
def test_an_ip_limit_counts_an_ipv6_client_by_its_64(client_ip, counted_as):
    per_ip = RateLimitPolicy(1, 1, LimitKey.IP)
    assert limit_subject("r", per_ip, user_id=None, client_ip=client_ip) == f"r:ip:{counted_as}"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ((), 0),
        ((("Age", "42"),), 42),
        ((("age", " 7 "),), 7),
        ((("AGE", "007"),), 7),
        ((("Age", "3"), ("Age", "9")), 3),  # the first field
        ((("Age", "-5"),), 0),
        ((("Age", "1.5"),), 0),
        ((("Age", "5, 7"),), 0),
        ((("Age", ""),), 0),
        ((("Age", "١٢"),), 0),  # digits, but not ASCII ones
        ((("Age", "2147483647"),), 2147483647),
        ((("Age", "99999999999"),), MAX_AGE_SECONDS),
        ((("Age", "9" * 5000),), MAX_AGE_SECONDS),  # past what int() parses
    ],
)
def test_the_age_an_answer_arrived_with(headers, seconds):
    assert age_value(headers) == seconds


def test_an_answers_age_on_arrival_adds_the_time_the_upstream_call_took():
    assert age_on_arrival((("Age", "10"),), 1.25) == 11.25
    assert age_on_arrival((), 0.4) == 0.4
    assert age_on_arrival((("Age", "10"),), -0.1) == 10  # a clock that stepped back


@pytest.mark.parametrize(
    ("initial_age", "stored_at", "now", "age"),
    [
        (0.0, 1000.0, 1000.0, 0),
        (0.3, 1000.0, 1006.6, 6),  # whole seconds, rounded down
        (100.5, 1000.0, 1010.0, 110),
        (4.0, 1030.0, 1000.0, 4),  # stored by a host whose clock runs ahead: never younger
        (float(MAX_AGE_SECONDS), 1000.0, 2000.0, MAX_AGE_SECONDS),
    ],
)
def test_the_current_age_of_a_stored_answer(initial_age, stored_at, now, age):
    assert current_age(initial_age, stored_at, now) == age


def test_a_stored_answer_keeps_no_age_of_its_own():
    headers = (("Age", "5"), ("Content-Type", "a/b"), ("age", "6"), ("Agent", "x"))
    assert without_age(headers) == (("Content-Type", "a/b"), ("Agent", "x"))


def test_a_variant_keeps_a_digest_of_what_was_sent_never_the_values():
    """`Vary: Authorization, Cookie` names the caller's credentials: the stored entry (in the
    shared cache) tells variants apart by a digest of them, and holds no token or cookie."""
    sent = (("Authorization", "Bearer header.claims.signature"), ("Cookie", "sessionid=s3cr3t"))
    stored = variant(sent, ("authorization", "cookie"))
    kept = repr(stored)
    assert "signature" not in kept
    assert "s3cr3t" not in kept
    assert serves(stored, sent)
    assert not serves(stored, (("Authorization", "Bearer header.claims.other"), sent[1]))
    assert not serves(stored, (sent[0],))  # no cookie is another variant too
