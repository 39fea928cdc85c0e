"""Settings shared by every environment; environment-specific modules import and adjust these.

Every value that differs between deployments comes from an environment variable read through
`config.env`; the README's configuration table lists them all.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from apps.common.redis_connections import connection_class
from config.env import (
    LOG_LEVELS,
    database,
    env_bool,
    env_choice,
    env_float,
    env_http_url,
    env_import_path,
    env_int,
    env_list,
    env_max_request_body_bytes,
    env_networks,
    env_optional,
    env_port,
    env_redis_url,
    env_secret,
    env_str,
)
from config.telemetry import tracing_requested
from core.domain.accounts.user import UserStatus
from core.domain.aggregation.composite import AuthMode as CompositeAuthMode
from core.domain.aggregation.runs import RunStatus, SourceFailure
from core.domain.gateway.route import AuthMode as RouteAuthMode
from core.domain.shared.identity import LONGEST_ACCESS_LIFETIME

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "apps.common.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    # Before django.contrib.auth: its `changepassword` command overrides Django's (the first
    # app listed wins), so a password set there also ends the user's sessions.
    "apps.accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "apps.common",
    "apps.gateway",
    "apps.aggregation",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "apps.common.middleware.RequestIdMiddleware",
    "apps.common.middleware.AccessLogMiddleware",
    # Before the first reader of the host (SecurityMiddleware, CommonMiddleware, CSRF).
    "apps.common.middleware.AbsoluteTargetHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's, naming the signed-in user's id in the access log as a bearer token does.
    "apps.common.middleware.LoggingAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.common.middleware.CredentialedAnswersNotStored",
    # Still before any view reads the body or hands the path to the database, and inside the
    # middleware above, so their refusals carry its headers (nosniff, X-Frame-Options, no-store).
    "apps.common.middleware.BodySizeLimitMiddleware",
    "apps.common.middleware.NulByteMiddleware",
    "apps.common.middleware.ProblemDetailsMiddleware",
    # Inside ProblemDetailsMiddleware, not first as WhiteNoise suggests: its own 405 for a
    # POST to a static file (no body, no type) becomes a problem document like any other.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.common.metrics.PrometheusAfterMiddleware",  # method labels bounded
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases: one per bounded context -------------------------------------------------------
# `default` holds accounts plus Django's auth/contenttypes/admin/sessions; `gateway` and
# `aggregation` hold their own apps. Without URLs each is an embedded SQLite file under var/.
DATABASE_TIMEOUT_SECONDS = env_int("DATABASE_TIMEOUT_SECONDS", 5, minimum=1)
# How long /health/ready waits for its checks (run side by side) before it reports `timeout`.
READINESS_TIMEOUT_SECONDS = env_float("READINESS_TIMEOUT_SECONDS", 2.0, minimum=0.1)
_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
# Each alias's URL variable (`migrate_all` names it when that database cannot be reached).
DATABASE_URL_VARIABLES = {
    "default": "ACCOUNTS_DATABASE_URL",
    "gateway": "GATEWAY_DATABASE_URL",
    "aggregation": "AGGREGATION_DATABASE_URL",
}
DATABASES = {
    alias: database(
        variable,
        sqlite_file=VAR_DIR / "db" / f"{variable.removesuffix('_DATABASE_URL').lower()}.sqlite3",
        conn_max_age=_CONN_MAX_AGE,
        timeout_s=DATABASE_TIMEOUT_SECONDS,
    )
    for alias, variable in DATABASE_URL_VARIABLES.items()
}
DATABASE_ROUTERS = ["config.routers.BoundedContextRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: Redis when REDIS_URL is set, else an in-process cache -----------------------------
REDIS_URL = env_redis_url("REDIS_URL")
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.25, minimum=0.01)
# After a connect or an answer that failed, this process stops trying that Redis this long: the
# adapters fall back at once instead of each waiting REDIS_SOCKET_TIMEOUT (0: always try).
REDIS_UNREACHABLE_HOLD_SECONDS = env_float("REDIS_UNREACHABLE_HOLD_SECONDS", 1.0, minimum=0)
if REDIS_URL:
    _redis_cache = {
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "platform"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            "CONNECTION_POOL_KWARGS": {
                "max_connections": 64,
                "health_check_interval": 30,
                "connection_class": connection_class(REDIS_URL),
            },
        },
    }
    CACHES = {
        # Errors raise: every adapter on this alias decides itself what an outage means
        # (revocation fails open and is counted, the route table reloads now and then, the
        # aggregation cache is bypassed, readiness reports it) instead of reading "not there".
        "default": _redis_cache,
        # The same Redis for django-ratelimit, which expects a failed cache call to come back as
        # None (RATELIMIT_FAIL_OPEN): the accounts limits lapse during an outage, logged.
        "ratelimit": {
            **_redis_cache,
            "OPTIONS": {**_redis_cache["OPTIONS"], "IGNORE_EXCEPTIONS": True},
        },
    }
else:
    # Embedded mode: one gunicorn worker process (with threads) shares this cache, so rate
    # limits, circuit state and revocations behave exactly as with Redis (config/gunicorn.py)
    # within the server; a management command runs in a process, and a cache, of its own.
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "platform",
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "platform"),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        },
        "ratelimit": {
            "BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache",
            "LOCATION": "platform-ratelimit",
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "platform"),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        },
    }

# --- Identity -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
# bcrypt-SHA256 over the NFKC form of the password (`apps/accounts/hashers.py`): the API and
# Django admin compare passwords alike. One hasher of that algorithm: Django picks a stored
# hash's hasher by its algorithm name.
PASSWORD_HASHERS = ["apps.accounts.hashers.NormalisingBCryptSHA256PasswordHasher"]
# Django's validators and the domain's, each judging the password as it is hashed (NFKC,
# `apps/accounts/validators.py`).
AUTH_PASSWORD_VALIDATORS = [
    {
        # The user's own fields, named in its messages by their verbose names ("the full
        # name"), as the API calls them: Django's default list looks at `username`,
        # `first_name` and `last_name`, which this user model does not have.
        "NAME": "apps.accounts.validators.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "full_name")},
    },
    {
        "NAME": "apps.accounts.validators.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "apps.accounts.validators.CommonPasswordValidator"},
    {"NAME": "apps.accounts.validators.NumericPasswordValidator"},
    {"NAME": "apps.accounts.validators.DomainPasswordValidator"},
]

JWT_ALGORITHM = env_choice("JWT_ALGORITHM", "HS256", ["HS256", "HS384", "HS512", "RS256", "ES256"])
JWT_SIGNING_KEY = env_str("JWT_SIGNING_KEY")
# RFC 7518 §3.2: an HMAC key at least as long as the hash's output.
_HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}.get(JWT_ALGORITHM, 0)
if len(JWT_SIGNING_KEY.encode()) < _HMAC_KEY_BYTES:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"JWT_SIGNING_KEY must be at least {_HMAC_KEY_BYTES} bytes for {JWT_ALGORITHM}."
    )
JWT_VERIFYING_KEY = env_optional("JWT_VERIFYING_KEY")
JWT_KEY_ID = env_optional("JWT_KEY_ID")


def _key_pair_problem(algorithm: str, signing_key: str, verifying_key: str | None) -> str | None:
    """Why a PEM key pair cannot sign and verify `algorithm` tokens (None: it can). Found only
    at run time, a missing or unreadable key was a 500 on every login or bearer request."""
    import jwt

    if not verifying_key:
        return f"JWT_VERIFYING_KEY (the PEM public key) is required for {algorithm}."
    try:
        probe = jwt.encode({"probe": True}, signing_key, algorithm=algorithm)
    except Exception:  # PyJWT and cryptography raise several kinds for an unusable key
        return f"JWT_SIGNING_KEY must be a PEM private key for {algorithm}."
    try:
        jwt.decode(probe, verifying_key, algorithms=[algorithm])
    except Exception:
        return f"JWT_VERIFYING_KEY must be the PEM public key of JWT_SIGNING_KEY ({algorithm})."
    return None


_KEY_PAIR_PROBLEM = (
    None
    if _HMAC_KEY_BYTES
    else _key_pair_problem(JWT_ALGORITHM, JWT_SIGNING_KEY, JWT_VERIFYING_KEY)
)
if _KEY_PAIR_PROBLEM is not None:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(_KEY_PAIR_PROBLEM)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(
        seconds=env_int("JWT_ACCESS_TTL_SECONDS", 1800, minimum=60, maximum=LONGEST_ACCESS_LIFETIME)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        seconds=env_int("JWT_REFRESH_TTL_SECONDS", 7 * 24 * 3600, minimum=300)
    ),
    "ALGORITHM": JWT_ALGORITHM,
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "VERIFYING_KEY": JWT_VERIFYING_KEY or "",
    "AUDIENCE": env_str("JWT_AUDIENCE", "platform-api"),
    "ISSUER": env_str("JWT_ISSUER", "platform"),
    "JWK_URL": None,
    "LEEWAY": 0,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "TOKEN_TYPE_CLAIM": "type",
    "JTI_CLAIM": "jti",
    "UPDATE_LAST_LOGIN": False,
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": False,
    "TOKEN_OBTAIN_SERIALIZER": None,
}

# --- REST framework and the OpenAPI schema ----------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.common.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["apps.common.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["apps.common.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "apps.common.openapi.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "apps.common.exceptions.problem_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "apps.common.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Platform API",
    "DESCRIPTION": (
        "Accounts and tokens, the API gateway's administration, and composite endpoints. "
        "Every error is an RFC 9457 problem document (application/problem+json) with a "
        "stable `code`. Requests the server cannot parse as HTTP/1.1 (an HTTP/1.1 request "
        "without a Host header, or with two, among them) are refused before any operation, "
        "on any path, and the connection closes: 400 `malformed_request`, 414 "
        "`uri_too_long`, 431 `headers_too_large`, 417 `expectation_failed`, 501 "
        "`not_implemented`, 403 `permission_denied` (config/gunicorn_worker.py); so is a "
        "request whose head is not complete within GUNICORN_REQUEST_HEAD_TIMEOUT (10 s) of "
        "its first byte: 408 `request_timeout`, as is, on an operation below, a body that "
        "stops arriving for GUNICORN_REQUEST_BODY_TIMEOUT (30 s). A NUL "
        "character in a path or a query (`%00`) is 400 `malformed_request` on every "
        "operation below (proxied paths are forwarded as sent). OPTIONS on an operation's "
        "path answers 200 with DRF's description of it, given the token the operation needs "
        "(401 without it). Any operation answers 503 "
        "`service_unavailable` with Retry-After while a database it needs is unreachable."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Fields that share a name across contexts get one named enum each (no generated names).
    # (The serializers offer the enums' values as plain choices, so the overrides list values.)
    "ENUM_NAME_OVERRIDES": {
        "RouteAuthEnum": [mode.value for mode in RouteAuthMode],
        "CompositeAuthEnum": [mode.value for mode in CompositeAuthMode],
        "UserStatusEnum": [status.value for status in UserStatus],
        "RunStatusEnum": [status.value for status in RunStatus],
        "SourceFailureEnum": [failure.value for failure in SourceFailure],
        "SourceOutcomeEnum": ["ok", "failed"],
        "HealthStatusEnum": ["ok", "unavailable"],
        "LivenessStatusEnum": ["ok"],
    },
    # Swagger UI's files come from the drf-spectacular-sidecar package, not a CDN: /api/docs/
    # works offline and on a pinned version.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A view without a docstring is not described by its base's (apps.common.apiviews).
    "GET_LIB_DOC_EXCLUDES": "apps.common.openapi.lib_doc_excludes",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        # The proxy is a lean WSGI app, not a DRF view: document its catch-all path by hand.
        "apps.gateway.openapi.document_proxy",
    ],
}

# --- Limits ---------------------------------------------------------------------------------------
MAX_REQUEST_BODY_BYTES = env_max_request_body_bytes()
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
RATELIMIT_USE_CACHE = "ratelimit"
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
# With the cache unreachable, per-IP limits let requests through; per-account lockout (kept in
# the database) still stops password guessing.
RATELIMIT_FAIL_OPEN = True
# Client IP is the socket peer unless this many reverse proxies in front append X-Forwarded-For.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
RATELIMIT_IP_META_KEY = "apps.common.clientip.client_ip"
# Our cache backends are django-prometheus wrappers of django-redis (supported) and, in the
# single-process embedded mode, of LocMemCache; django-ratelimit only knows the unwrapped names.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]

# --- Email ----------------------------------------------------------------------------------------
# Imported here, so a backend that does not import stops the start instead of every email.
EMAIL_BACKEND = env_import_path("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "no-reply@platform.local")
# Links in emails point here (the front end that posts the token back to the API); by default
# this server on its own port (PORT, where gunicorn listens), which is also where `seed --demo`
# points the demo route. Without its trailing slash: links append `/verify-email?token=…`.
PUBLIC_BASE_URL = env_http_url("PUBLIC_BASE_URL", f"http://127.0.0.1:{env_port('PORT', 8000)}")

# --- Internationalisation, static files ---------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Security headers ---------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Only the Django admin signs in with a session (the API takes bearer tokens), and every path
# outside the platform's own is proxied: with `/`, a browser signed in to the admin sent its
# session to every upstream behind the gateway.
SESSION_COOKIE_PATH = "/admin/"
CSRF_COOKIE_PATH = "/admin/"

# --- Observability ------------------------------------------------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", LOG_LEVELS, upper=True)
LOG_FORMAT = env_choice("LOG_FORMAT", "json", ["json", "console"])
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# Django's own logging set-up is off: apps.common.logging.configure_logging sets up structlog
# and the standard library's handlers.
LOGGING_CONFIG = None
PROMETHEUS_METRIC_NAMESPACE = "platform"
# Who may read /metrics (by client IP, as the rate limits tell it): the business counters say
# whether a login's address had an account, which login's own answer never does. Prometheus
# scrapes from inside; loopback and private networks by default, `0.0.0.0/0,::/0` for anyone.
METRICS_ALLOWED_NETWORKS = env_networks(
    "METRICS_ALLOWED_NETWORKS",
    ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
PROMETHEUS_EXPORT_MIGRATIONS = False
# Read once here so the apps can tell without importing config (config/telemetry.py turns it on).
TRACING = tracing_requested()

# Per-context settings live beside each other so each context's owner edits only its own file.
from config.settings.components.accounts import *  # noqa: E402,F403
from config.settings.components.aggregation import *  # noqa: E402,F403
from config.settings.components.gateway import *  # noqa: E402,F403
