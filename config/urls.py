"""The platform's URL map: its own paths first, then the gateway's catch-all proxy.

Each context includes its own `urls.py`; nothing here knows a context's views.
"""

from django.contrib import admin
from django.urls import include, path, re_path

from apps.common import views as common_views
from apps.gateway.entrypoint import proxy_view

urlpatterns = [
    path("health", common_views.LivenessView.as_view(), name="health"),
    path("health/ready", common_views.ReadinessView.as_view(), name="health-ready"),
    path("metrics", common_views.MetricsView.as_view(), name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", common_views.SchemaView.as_view(), name="schema"),
    path("api/docs/", common_views.SchemaDocsView.as_view(url_name="schema"), name="docs"),
    path("api/v1/auth/", include("apps.accounts.urls.auth")),
    path("api/v1/users", include("apps.accounts.urls.users")),
    path(".well-known/", include("apps.accounts.urls.well_known")),
    path("api/v1/gateway/", include("apps.gateway.urls")),
    path("api/v1/aggregation/", include("apps.aggregation.urls")),
    # Last: every path that is not the platform's own is the gateway's (config.wsgi sends such
    # paths to the lean proxy directly; this entry serves the same handler inside Django).
    re_path(
        r"^(?!(?:api|admin|health|metrics|\.well-known|static)(?:/|$)).*$",
        proxy_view,
        name="gateway-proxy",
    ),
]

handler400 = "apps.common.views.bad_request"
handler403 = "apps.common.views.permission_denied"
handler404 = "apps.common.views.not_found"
handler500 = "apps.common.views.server_error"
