"""`make run SEED_ARGS=--demo`'s path: embedded SQLite and local cache, gunicorn, the demo."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import jwt
import pytest

from tests.e2e.servers import serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("var-aggregation"), seed_args=("--demo",)) as server:
        secrets = json.loads((server.var_dir / "local-secrets.json").read_text())
        yield server.url, secrets["JWT_SIGNING_KEY"]


def admin_token(signing_key: str) -> str:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "type": "access",
        "roles": ["user", "admin"],
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 300,
        "aud": "platform-api",
        "iss": "platform",
    }
    return jwt.encode(claims, signing_key, algorithm="HS256")


def eventually_counted(http: httpx.Client, headers: dict[str, str], wanted: int) -> int:
    deadline = time.monotonic() + 5
    while True:
        runs = http.get("/api/v1/aggregation/runs", params={"composite": "demo"}, headers=headers)
        assert runs.status_code == 200, runs.text
        count = int(runs.json()["count"])
        if count >= wanted or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_the_demo_composite_answers_and_is_recorded(demo_server):
    base_url, signing_key = demo_server
    with httpx.Client(base_url=base_url, timeout=10) as http:
        first = http.get("/api/v1/aggregation/composites/demo/run")
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["meta"]["status"] == "complete", body["errors"]
        assert body["data"]["health"] == {"status": "ok"}
        second = http.get("/api/v1/aggregation/composites/demo/run").json()
        assert second["meta"]["sources"]["health"]["cached"] is True  # the local cache
        admin = {"Authorization": f"Bearer {admin_token(signing_key)}"}
        assert eventually_counted(http, admin, 2) >= 2  # rows are written after the answers
        listing = http.get("/api/v1/aggregation/composites", headers=admin).json()
        assert [c["name"] for c in listing["results"]] == ["demo"]


def test_the_demo_route_proxies_to_this_server_on_its_own_port(demo_server):
    base_url, _ = demo_server
    with httpx.Client(base_url=base_url, timeout=10) as http:
        proxied = http.get("/demo")
        assert proxied.status_code == 200, proxied.text
        assert proxied.json() == {"status": "ok"}
        assert proxied.headers["x-cache"] in {"MISS", "HIT"}
        assert "ratelimit-limit" in proxied.headers
