"""URLs under /api/v1/gateway/ (route administration). The proxy is config.wsgi's business."""

from django.urls import path

from apps.gateway import views

urlpatterns = [
    path("routes", views.RouteListView.as_view(), name="gateway-routes"),
    path("routes/<str:name>", views.RouteDetailView.as_view(), name="gateway-route"),
    path("routes/<str:name>/status", views.RouteStatusView.as_view(), name="gateway-route-status"),
]
