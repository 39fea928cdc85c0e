from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The accounts context: users, credentials, tokens and sessions (database `default`)."""

    name = "apps.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
