from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The accounts context: users, credentials, tokens and sessions (database `default`)."""

    name = "apps.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.accounts.seed import seed_accounts
        from apps.common.seeding import register

        register("accounts", seed_accounts)
