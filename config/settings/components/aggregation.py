"""Settings of the aggregation context, read from the environment (see the README's table)."""

from config.env import env_int, env_optional_rate, env_port, env_str

# Largest source answer (decoded bytes) a composite accepts; larger is that source's error.
AGGREGATION_MAX_SOURCE_BYTES = env_int("AGGREGATION_MAX_SOURCE_BYTES", 1024 * 1024, minimum=1)
# Largest total of source answers (decoded bytes) one run accepts, all its sources together;
# answers past it are their sources' errors. Parsed, an answer takes tens of times its bytes.
AGGREGATION_MAX_RUN_BYTES = env_int("AGGREGATION_MAX_RUN_BYTES", 4 * 1024 * 1024, minimum=1)
# Runs of composites per caller (the token's user, else the client IP, an IPv6 one by its /64),
# whatever the composite: one run may fan out to 20 source calls and writes a history row.
# `0` or empty: no limit. Past it, 429 `rate_limited` with Retry-After.
AGGREGATION_RUN_RATE = env_optional_rate("AGGREGATION_RUN_RATE", "60/m")
# Threads (per process) that call sources concurrently, and pooled upstream connections.
AGGREGATION_FETCH_THREADS = env_int("AGGREGATION_FETCH_THREADS", 64, minimum=1)
AGGREGATION_MAX_CONNECTIONS = env_int("AGGREGATION_MAX_CONNECTIONS", 100, minimum=1)
# Calls to one origin (scheme, host, port) those threads make at once; more wait for one of them
# to finish, so a hanging source holds at most this many threads. By default half of them: more
# than one run's 20 sources, the other half left to the other origins.
AGGREGATION_MAX_CALLS_PER_ORIGIN = env_int(
    "AGGREGATION_MAX_CALLS_PER_ORIGIN",
    max(1, AGGREGATION_FETCH_THREADS // 2),
    minimum=1,
    maximum=AGGREGATION_FETCH_THREADS,
)
# Where `seed --demo` points the demo composite's sources: this server's own public endpoints
# (loopback on $PORT, the port `make run` serves on), so the demo works offline.
AGGREGATION_DEMO_BASE_URL = env_str(
    "AGGREGATION_DEMO_BASE_URL", f"http://127.0.0.1:{env_port('PORT', 8000)}"
).rstrip("/")
