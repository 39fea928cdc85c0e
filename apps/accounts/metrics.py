"""Prometheus counters of the accounts context (names prefixed `platform_`)."""

from prometheus_client import Counter

REGISTRATIONS = Counter("platform_accounts_registrations_total", "Users registered.")
LOGINS = Counter(
    "platform_accounts_logins_total",
    "Login attempts by outcome (success, wrong_password, unknown_user, locked, inactive, "
    "unverified).",
    ["outcome"],
)
REFRESHES = Counter("platform_accounts_token_refreshes_total", "Refresh tokens rotated.")
REUSE_DETECTIONS = Counter(
    "platform_accounts_refresh_reuse_total",
    "Already-used refresh tokens presented (each revoked its family).",
)
LOCKOUTS = Counter("platform_accounts_lockouts_total", "Accounts locked after repeated failures.")
EMAIL_FAILURES = Counter(
    "platform_accounts_email_failures_total", "Account emails that could not be sent."
)
RATE_LIMITED = Counter(
    "platform_accounts_rate_limited_total",
    "Accounts calls refused with 429 by a rate limit, by endpoint (login, register, "
    "password_reset, verification_resend, password_change).",
    ["endpoint"],
)
EMAILS_THROTTLED = Counter(
    "platform_accounts_emails_throttled_total",
    "Reset and verification emails not sent because their address had spent its budget "
    "(the caller got the same 202), by endpoint (password_reset, verification_resend).",
    ["endpoint"],
)
EMAIL_BUDGETS_UNAVAILABLE = Counter(
    "platform_accounts_email_budget_unavailable_total",
    "Reset and verification emails sent without checking their address's budget because the "
    "cache was unreachable (the budget lapsed), by kind (password_reset, verification_resend).",
    ["kind"],
)
