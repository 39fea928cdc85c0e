"""URLs under /api/v1/aggregation/ (composites, runs)."""

from django.urls import path

from apps.aggregation import views

urlpatterns = [
    path("composites", views.CompositeListView.as_view(), name="aggregation-composites"),
    path(
        "composites/<str:name>",
        views.CompositeDetailView.as_view(),
        name="aggregation-composite",
    ),
    path(
        "composites/<str:name>/run",
        views.CompositeRunView.as_view(),
        name="aggregation-composite-run",
    ),
    path("runs", views.RunListView.as_view(), name="aggregation-runs"),
]
