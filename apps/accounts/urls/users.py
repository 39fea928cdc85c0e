"""`/api/v1/users` and `/api/v1/users/{id}` (the include has no trailing slash).

The id is any text: the use case parses it, so an upper-case UUID finds its user and a
malformed one is that resource's 404 (Django's `uuid` converter takes lower case only).
"""

from django.urls import path

from apps.accounts.views import users as views

urlpatterns = [
    path("", views.UserListView.as_view(), name="users"),
    path("/<str:user_id>", views.UserDetailView.as_view(), name="user"),
]
