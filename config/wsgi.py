"""WSGI entry point for gunicorn (config/gunicorn.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

from config.telemetry import configure_tracing

configure_tracing()
application = get_wsgi_application()
