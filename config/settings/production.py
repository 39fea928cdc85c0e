"""Settings for production: every secret from the environment, HTTPS assumed behind a proxy."""

from __future__ import annotations

from config.env import env_bool, env_int
from config.settings.base import *  # noqa: F403

DEBUG = False
# The proxy in front says whether the client came over HTTPS; without trusted proxies
# (TRUSTED_PROXY_COUNT, as for X-Forwarded-For) a client could claim it, so nobody is believed.
if TRUSTED_PROXY_COUNT > 0:  # noqa: F405
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
