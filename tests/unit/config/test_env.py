"""Settings helpers fail loudly, naming the variable, on bad input."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env


def test_env_str_requires_a_value_without_default(monkeypatch):
    monkeypatch.delenv("PLATFORM_PROBE", raising=False)
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_PROBE"):
        env.env_str("PLATFORM_PROBE")
    assert env.env_str("PLATFORM_PROBE", "d") == "d"
    monkeypatch.setenv("PLATFORM_PROBE", "v")
    assert env.env_str("PLATFORM_PROBE") == "v"
    assert env.env_optional("PLATFORM_PROBE") == "v"


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("On", True), ("no", False), ("", False)]
)
def test_env_bool_accepts_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("PLATFORM_FLAG", raw)
    assert env.env_bool("PLATFORM_FLAG", not expected) is expected


def test_env_bool_rejects_other_words(monkeypatch):
    monkeypatch.setenv("PLATFORM_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_FLAG"):
        env.env_bool("PLATFORM_FLAG", False)


def test_numbers_are_parsed_and_bounded(monkeypatch):
    monkeypatch.delenv("PLATFORM_N", raising=False)
    assert env.env_int("PLATFORM_N", 3) == 3
    assert env.env_float("PLATFORM_N", 1.5) == 1.5
    monkeypatch.setenv("PLATFORM_N", "7")
    assert env.env_int("PLATFORM_N", 3, minimum=1) == 7
    assert env.env_float("PLATFORM_N", 1.0) == 7.0
    for bad, fn in (
        ("x", env.env_int),
        ("x", env.env_float),
        ("-1", env.env_int),
        ("-1", env.env_float),
        ("nan", env.env_float),
        ("inf", env.env_float),
        ("-inf", env.env_float),
    ):
        monkeypatch.setenv("PLATFORM_N", bad)
        with pytest.raises(ImproperlyConfigured, match="PLATFORM_N"):
            fn("PLATFORM_N", 1, minimum=0)
    monkeypatch.setenv("PLATFORM_N", "61")
    assert env.env_float("PLATFORM_N", 1.0, maximum=61) == 61.0
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_N must be at most 60"):
        env.env_float("PLATFORM_N", 1.0, maximum=60)
    assert env.env_int("PLATFORM_N", 1, maximum=61) == 61
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_N must be at most 60, not 61"):
        env.env_int("PLATFORM_N", 1, maximum=60)


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0", "rediss://cache.internal:6380/1", "unix:///run/redis.sock"],
)
def test_a_redis_url_is_one_redis_py_can_use(monkeypatch, url):
    monkeypatch.setenv("PLATFORM_REDIS", url)
    assert env.env_redis_url("PLATFORM_REDIS") == url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379/12", "127.0.0.1:6379", "redis://127.0.0.1:6379/zero"]
)
def test_a_redis_url_redis_py_refuses_stops_the_start_naming_the_variable(monkeypatch, url):
    monkeypatch.setenv("PLATFORM_REDIS", url)
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_REDIS must be a Redis URL"):
        env.env_redis_url("PLATFORM_REDIS")


def test_no_redis_url_is_none(monkeypatch):
    monkeypatch.setenv("PLATFORM_REDIS", "")
    assert env.env_redis_url("PLATFORM_REDIS") is None


def test_rates_must_look_like_count_per_period(monkeypatch):
    monkeypatch.setenv("PLATFORM_RATE", "100/5m")
    assert env.env_rate("PLATFORM_RATE", "10/m") == "100/5m"
    # A period of zero seconds passed the check, then django-ratelimit raised
    # ImproperlyConfigured on every request the limit applied to: a 500 each time.
    for bad in ("lots", "10", "10/x", "-1/m", "5/0m", "5/00h", "0", ""):
        monkeypatch.setenv("PLATFORM_RATE", bad)
        with pytest.raises(ImproperlyConfigured, match="PLATFORM_RATE"):
            env.env_rate("PLATFORM_RATE", "10/m")


def test_an_optional_rate_is_off_when_zero_or_empty(monkeypatch):
    monkeypatch.delenv("PLATFORM_RATE", raising=False)
    assert env.env_optional_rate("PLATFORM_RATE", "60/m") == "60/m"
    for off in ("0", "", " "):
        monkeypatch.setenv("PLATFORM_RATE", off)
        assert env.env_optional_rate("PLATFORM_RATE", "60/m") is None
    monkeypatch.setenv("PLATFORM_RATE", "0/m")
    assert env.env_optional_rate("PLATFORM_RATE", "60/m") == "0/m"
    monkeypatch.setenv("PLATFORM_RATE", "often")
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_RATE"):
        env.env_optional_rate("PLATFORM_RATE", "60/m")


def test_env_list_splits_and_drops_blanks(monkeypatch):
    monkeypatch.delenv("PLATFORM_L", raising=False)
    assert env.env_list("PLATFORM_L", ["a"]) == ["a"]
    monkeypatch.setenv("PLATFORM_L", "a, b,,c ")
    assert env.env_list("PLATFORM_L", []) == ["a", "b", "c"]


def test_database_without_url_is_embedded_sqlite(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("PLATFORM_DB_URL", raising=False)
    config = env.database(
        "PLATFORM_DB_URL", sqlite_file=tmp_path / "db" / "x.sqlite3", conn_max_age=0, timeout_s=3
    )
    assert config["ENGINE"].endswith("sqlite3")
    assert (tmp_path / "db").is_dir()


def test_database_url_is_postgres_with_timeouts(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_DB_URL", "postgresql://u:p@db:5432/accounts")
    config = env.database(
        "PLATFORM_DB_URL", sqlite_file=tmp_path / "x", conn_max_age=60, timeout_s=3
    )
    assert config["ENGINE"] == "apps.common.postgresql"  # django-prometheus', with deadlines
    assert config["NAME"] == "accounts"
    assert config["CONN_HEALTH_CHECKS"] is True
    assert config["OPTIONS"]["connect_timeout"] == 3
    assert "statement_timeout=3000" in config["OPTIONS"]["options"]
    assert config["OPTIONS"]["answer_timeout"] == 4  # any wait for the server: a second more


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url at all"])
def test_database_url_must_be_postgres(monkeypatch, tmp_path, url):
    monkeypatch.setenv("PLATFORM_DB_URL", url)
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_DB_URL"):
        env.database("PLATFORM_DB_URL", sqlite_file=tmp_path / "x", conn_max_age=0, timeout_s=3)


def test_env_choice_accepts_only_its_choices(monkeypatch):
    monkeypatch.delenv("PLATFORM_PICK", raising=False)
    assert env.env_choice("PLATFORM_PICK", "json", ["json", "console"]) == "json"
    monkeypatch.setenv("PLATFORM_PICK", "warning")
    assert env.env_choice("PLATFORM_PICK", "INFO", ["INFO", "WARNING"], upper=True) == "WARNING"
    monkeypatch.setenv("PLATFORM_PICK", "verbose")
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_PICK must be one of INFO, WARNING"):
        env.env_choice("PLATFORM_PICK", "INFO", ["INFO", "WARNING"], upper=True)


def test_env_networks_reads_addresses_and_networks(monkeypatch):
    monkeypatch.delenv("PLATFORM_NETS", raising=False)
    assert env.env_networks("PLATFORM_NETS", ["127.0.0.0/8"]) == ["127.0.0.0/8"]
    monkeypatch.setenv("PLATFORM_NETS", " 10.0.0.0/8, 2001:DB8::/32 ,192.0.2.7,,")
    assert env.env_networks("PLATFORM_NETS", []) == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]
    monkeypatch.setenv("PLATFORM_NETS", "")
    assert env.env_networks("PLATFORM_NETS", ["127.0.0.0/8"]) == []


@pytest.mark.parametrize("bad", ["10.0.0.1/8", "everyone", "10.0.0.0/33", "*"])
def test_env_networks_refuses_what_is_no_network(monkeypatch, bad):
    # `10.0.0.1/8` has host bits set: a typo for 10.0.0.1/32 or for 10.0.0.0/8, not a guess.
    monkeypatch.setenv("PLATFORM_NETS", bad)
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_NETS"):
        env.env_networks("PLATFORM_NETS", [])


def test_a_secret_must_be_set_and_not_empty(monkeypatch):
    monkeypatch.delenv("PLATFORM_SECRET", raising=False)
    with pytest.raises(ImproperlyConfigured, match=r"PLATFORM_SECRET .*\(it is not set\)"):
        env.env_secret("PLATFORM_SECRET")
    monkeypatch.setenv("PLATFORM_SECRET", "")
    with pytest.raises(ImproperlyConfigured, match=r"PLATFORM_SECRET .*\(it is empty\)"):
        env.env_secret("PLATFORM_SECRET")
    monkeypatch.setenv("PLATFORM_SECRET", "s")
    assert env.env_secret("PLATFORM_SECRET") == "s"


def test_a_port_is_one_to_65535(monkeypatch):
    monkeypatch.delenv("PLATFORM_PORT", raising=False)
    assert env.env_port("PLATFORM_PORT", 8000) == 8000
    for bad in ("abc", "0", "65536"):
        monkeypatch.setenv("PLATFORM_PORT", bad)
        with pytest.raises(ImproperlyConfigured, match="PLATFORM_PORT must be"):
            env.env_port("PLATFORM_PORT", 8000)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://example.com/front/", "https://example.com/front"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_an_http_url_is_absolute(monkeypatch, raw, expected):
    monkeypatch.setenv("PLATFORM_URL", raw)
    assert env.env_http_url("PLATFORM_URL", "http://x") == expected


@pytest.mark.parametrize(
    "raw", ["notaurl", "", "mailto:a@b.c", "http://host:port", "http://h:70000", "https://x/?"]
)
def test_an_http_url_that_is_not_absolute_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("PLATFORM_URL", raw)
    with pytest.raises(ImproperlyConfigured, match="PLATFORM_URL must be an absolute http"):
        env.env_http_url("PLATFORM_URL", "http://x")


def test_an_import_path_must_import(monkeypatch):
    monkeypatch.delenv("PLATFORM_CLASS", raising=False)
    default = "django.core.mail.backends.locmem.EmailBackend"
    assert env.env_import_path("PLATFORM_CLASS", default) == default
    for bad in ("no.such.Backend", "django.core.mail.backends.locmem.NoSuch", "nodots", ""):
        monkeypatch.setenv("PLATFORM_CLASS", bad)
        with pytest.raises(ImproperlyConfigured, match="PLATFORM_CLASS must be the dotted path"):
            env.env_import_path("PLATFORM_CLASS", default)


def test_forwarded_allow_ips_are_addresses_networks_or_any(monkeypatch):
    for good in ("*", "127.0.0.1,::1", " 10.0.0.0/8 , 192.0.2.7", ""):
        monkeypatch.setenv("PLATFORM_FWD", good)
        assert env.env_forwarded_allow_ips("PLATFORM_FWD", "") == good
    for bad in ("not-an-ip", "10.0.0.1/8", "127.0.0.1, ,::1", "*.example.com"):
        monkeypatch.setenv("PLATFORM_FWD", bad)
        with pytest.raises(ImproperlyConfigured, match="PLATFORM_FWD must list IP addresses"):
            env.env_forwarded_allow_ips("PLATFORM_FWD", "")
