"""Settings of the accounts context, read from the environment (see the README's table)."""

from __future__ import annotations

from config.env import env_bool, env_int, env_optional, env_optional_rate, env_rate

__all__ = [
    "ACCOUNTS_ADDRESS_RATE_LIMITS",
    "ACCOUNTS_ADMIN_EMAIL",
    "ACCOUNTS_ADMIN_PASSWORD",
    "ACCOUNTS_EMAIL_IN_BACKGROUND",
    "ACCOUNTS_LOCKOUT_SECONDS",
    "ACCOUNTS_LOCKOUT_THRESHOLD",
    "ACCOUNTS_RATE_LIMITS",
]

# Per-client-IP limits (django-ratelimit, fixed windows in the shared cache); password change
# is limited per user instead: it guesses the current password with a token already in hand.
ACCOUNTS_RATE_LIMITS = {
    "login": env_rate("ACCOUNTS_LOGIN_RATE", "10/m"),
    "register": env_rate("ACCOUNTS_REGISTER_RATE", "10/m"),
    "password_reset": env_rate("ACCOUNTS_PASSWORD_RESET_RATE", "5/m"),
    "verification_resend": env_rate("ACCOUNTS_VERIFICATION_RESEND_RATE", "5/m"),
    "password_change": env_rate("ACCOUNTS_PASSWORD_CHANGE_RATE", "5/15m"),
}
# Per-address budgets of the emails anyone may ask for: however many client IPs ask, one
# mailbox is sent at most this many reset (or verification) emails per window; past it the
# endpoint answers the same 202 and sends nothing. `0` or empty: no such budget.
ACCOUNTS_ADDRESS_RATE_LIMITS = {
    "password_reset": env_optional_rate("ACCOUNTS_PASSWORD_RESET_ADDRESS_RATE", "5/h"),
    "verification_resend": env_optional_rate("ACCOUNTS_VERIFICATION_RESEND_ADDRESS_RATE", "5/h"),
}
# Per-account lockout (kept in the accounts database): this many wrong passwords in a row lock
# the account for that many seconds; while locked, login answers the same generic 401.
ACCOUNTS_LOCKOUT_THRESHOLD = env_int("ACCOUNTS_LOCKOUT_THRESHOLD", 5, minimum=1)
ACCOUNTS_LOCKOUT_SECONDS = env_int("ACCOUNTS_LOCKOUT_SECONDS", 900, minimum=1)
# Account emails leave on a background thread, so the time of a 202 from password reset or
# verification resend does not tell whether the address has an account; a wrong login password
# is counted (the lockout) on one too, so the time of a 401 does not tell it either.
ACCOUNTS_EMAIL_IN_BACKGROUND = env_bool("ACCOUNTS_EMAIL_IN_BACKGROUND", True)
# The administrator `manage.py seed` creates when both are set (never a default).
ACCOUNTS_ADMIN_EMAIL = env_optional("ADMIN_EMAIL")
ACCOUNTS_ADMIN_PASSWORD = env_optional("ADMIN_PASSWORD")
