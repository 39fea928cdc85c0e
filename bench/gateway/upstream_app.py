"""The benchmark's upstream: one DRF endpoint doing one PostgreSQL read, ~1 KB of JSON.

A self-contained Django project (settings in this module) served by its own gunicorn, so the
gateway is measured in front of something realistic rather than a static file.
"""

from __future__ import annotations

import os

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-upstream-only",  # noqa: S106 - throwaway benchmark process
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["rest_framework"],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": os.environ["BENCH_UPSTREAM_DB"],
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": "5432",
                "CONN_MAX_AGE": 60,
            }
        },
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
            "UNAUTHENTICATED_USER": None,
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        },
        USE_TZ=True,
    )

import django

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402


class ItemView(APIView):
    def get(self, request, item_id: int = 1):  # type: ignore[no-untyped-def]
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, name, payload FROM bench_item WHERE id = %s", [item_id])
            row = cursor.fetchone()
        return Response({"id": row[0], "name": row[1], "attributes": row[2]})


urlpatterns = [path("item", ItemView.as_view()), path("item/<int:item_id>", ItemView.as_view())]
application = get_wsgi_application()
