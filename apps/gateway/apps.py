from django.apps import AppConfig


class GatewayConfig(AppConfig):
    """The gateway context: routes and the proxy in front of upstream services (db `gateway`)."""

    name = "apps.gateway"
    label = "gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.common.metrics import register_scrape_collector
        from apps.common.seeding import register
        from apps.gateway import checks  # noqa: F401 - registers the stored-routes check
        from apps.gateway.seed import seed_gateway
        from apps.gateway.wiring import circuit_state_collector

        register("gateway", seed_gateway)
        register_scrape_collector(circuit_state_collector())  # circuits read at each scrape
