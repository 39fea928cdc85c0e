"""Settings of the gateway context, read from the environment (see the README's table)."""

from config.env import env_choice, env_float, env_gateway_max_body_bytes, env_int

# How often a worker compares its route table with the shared version key (seconds).
GATEWAY_ROUTE_REFRESH_SECONDS = env_float("GATEWAY_ROUTE_REFRESH_SECONDS", 0.5, minimum=0.05)
# With the http.client client: keep-alive connections kept per upstream host and
# worker (match GUNICORN_THREADS or more). libcurl keeps one per upstream and thread.
GATEWAY_UPSTREAM_POOL_SIZE = env_int("GATEWAY_UPSTREAM_POOL_SIZE", 16, minimum=1)
# Idle upstream connections, as nginx's keepalive_timeout and keepalive bound them: one idle
# this long is closed, and only this many upstreams keep one per thread (libcurl, 3 descriptors
# each) or per worker (http.client), the least recently used going first.
GATEWAY_UPSTREAM_IDLE_SECONDS = env_float("GATEWAY_UPSTREAM_IDLE_SECONDS", 60.0, minimum=1.0)
GATEWAY_UPSTREAM_MAX_ORIGINS = env_int("GATEWAY_UPSTREAM_MAX_ORIGINS", 16, minimum=1)
# Entries of the in-process response cache (embedded mode only; Redis evicts by TTL).
GATEWAY_CACHE_MAX_ENTRIES = env_int("GATEWAY_CACHE_MAX_ENTRIES", 10_000, minimum=10)
# The route status endpoint's rolling window (counts and latency of the last N seconds).
GATEWAY_STATUS_WINDOW_SECONDS = env_int("GATEWAY_STATUS_WINDOW_SECONDS", 300, minimum=10)
# Largest request body the proxy forwards; larger ones answer 413 (default: the API's limit).
GATEWAY_MAX_BODY_BYTES = env_gateway_max_body_bytes()
# Largest upstream answer the proxy buffers and passes on; larger ones answer 502 bad_gateway.
GATEWAY_MAX_RESPONSE_BYTES = env_int("GATEWAY_MAX_RESPONSE_BYTES", 10 * 1024 * 1024, minimum=1024)
# The upstream HTTP client: libcurl through `pycurl` (default, measured fastest), or the
# standard library's `http.client`, pooled in Python (docs/gateway.md).
GATEWAY_UPSTREAM_CLIENT = env_choice("GATEWAY_UPSTREAM_CLIENT", "pycurl", ["pycurl", "http.client"])
