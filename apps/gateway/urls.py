"""URLs under /api/v1/gateway/ (route administration)."""

urlpatterns: list = []
