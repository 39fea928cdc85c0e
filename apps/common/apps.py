from django.apps import AppConfig


class CommonConfig(AppConfig):
    """Shared Django-side pieces: problem documents, middleware, health, logging, seeding."""

    name = "apps.common"
    label = "common"

    def ready(self) -> None:
        from apps.common.logging import configure_logging

        configure_logging()
