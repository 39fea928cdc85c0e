"""`/api/v1/users` and `/api/v1/users/{id}` (the include has no trailing slash)."""

from django.urls import path

from apps.accounts.views import users as views

urlpatterns = [
    path("", views.UserListView.as_view(), name="users"),
    path("/<uuid:user_id>", views.UserDetailView.as_view(), name="user"),
]
