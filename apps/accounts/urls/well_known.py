"""`/.well-known/jwks.json`."""

from django.urls import path

from apps.accounts.views.well_known import JwksView

urlpatterns = [path("jwks.json", JwksView.as_view(), name="jwks")]
