from django.apps import AppConfig


class AggregationConfig(AppConfig):
    """The aggregation context: composite endpoints and their run history (db `aggregation`)."""

    name = "apps.aggregation"
    label = "aggregation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.aggregation import checks, deferred  # noqa: F401 - checks registers
        from apps.aggregation.seeding import seed
        from apps.common.seeding import register

        register("aggregation", seed)
        deferred.connect()
