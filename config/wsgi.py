"""WSGI entry point for gunicorn (config/gunicorn.py).

A thin dispatcher in front of two applications: the platform's own paths (`/api/`, `/admin/`,
`/health`, `/metrics`, `/.well-known/`, `/static/`) go to Django with its full middleware stack;
every other path goes to the gateway's lean proxy application, which does request ids, body
limits, problem documents, metrics and the access log itself (measured: docs/gateway.md).
"""

import os

from django.core.wsgi import get_wsgi_application

# A server started without DJANGO_SETTINGS_MODULE runs production's settings, which stop the
# start when a secret is missing, rather than local ones that quietly generate secrets into
# var/. `make run` names the local settings; manage.py, a developer's tool, defaults to them.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

from apps.common.wsgi import buffer_chunked_bodies, no_body_for_head
from config.telemetry import configure_tracing

tracing = configure_tracing()
django_application = no_body_for_head(buffer_chunked_bodies(get_wsgi_application()))

from apps.gateway.entrypoint import GatewayApplication, dispatcher  # noqa: E402

gateway_application = GatewayApplication()
if tracing:  # proxied requests skip Django, so they get their server spans here
    from apps.gateway.tracing import traced_application

    gateway_application = traced_application(gateway_application)
application = dispatcher(django_application, gateway_application)
