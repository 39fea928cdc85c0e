"""ASGI entry point, for servers that speak ASGI; production serves WSGI through gunicorn."""

import os

from django.core.asgi import get_asgi_application

# A server started without DJANGO_SETTINGS_MODULE runs production's settings, which stop the
# start when a secret is missing, rather than local ones that quietly generate secrets into
# var/. `make run` names the local settings; manage.py, a developer's tool, defaults to them.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

from config.telemetry import configure_tracing

configure_tracing()
application = get_asgi_application()
