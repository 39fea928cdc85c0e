"""URLs under /api/v1/aggregation/ (composites, runs)."""

urlpatterns: list = []
