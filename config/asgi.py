"""ASGI entry point, for servers that speak ASGI; production serves WSGI through gunicorn."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from config.telemetry import configure_tracing

configure_tracing()
application = get_asgi_application()
