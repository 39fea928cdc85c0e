"""`/api/v1/auth/...` (included by config/urls.py; no trailing slashes).

A session id is any text: the use case parses it, so an upper-case UUID finds its session and
a malformed one is that resource's 404 (Django's `uuid` converter takes lower case only).
"""

from django.urls import path

from apps.accounts.views import auth as views

urlpatterns = [
    path("register", views.RegisterView.as_view(), name="auth-register"),
    path("verify-email", views.VerifyEmailView.as_view(), name="auth-verify-email"),
    path(
        "verify-email/resend",
        views.ResendVerificationView.as_view(),
        name="auth-verify-email-resend",
    ),
    path("login", views.LoginView.as_view(), name="auth-login"),
    path("refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("logout", views.LogoutView.as_view(), name="auth-logout"),
    path("logout-all", views.LogoutAllView.as_view(), name="auth-logout-all"),
    path("me", views.MeView.as_view(), name="auth-me"),
    path("password/change", views.PasswordChangeView.as_view(), name="auth-password-change"),
    path("password/reset", views.PasswordResetView.as_view(), name="auth-password-reset"),
    path(
        "password/reset/confirm",
        views.PasswordResetConfirmView.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("sessions", views.SessionListView.as_view(), name="auth-sessions"),
    path("sessions/<str:session_id>", views.SessionDetailView.as_view(), name="auth-session"),
]
