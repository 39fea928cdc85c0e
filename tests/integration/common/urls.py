"""A test-only URLconf: small DRF views that exercise the shared error handling."""

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET
from rest_framework import serializers
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.exceptions import ProblemError
from apps.common.permissions import IsAdmin, IsAuthenticated
from apps.common.serializers import JSONString


class EchoView(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=10)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class StrictView(APIView):
    class InputSerializer(serializers.Serializer):
        name = JSONString(max_length=10)

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class WhoAmIView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        principal = request.user.principal
        return Response({"user_id": principal.user_id, "roles": sorted(principal.roles)})


class AdminOnlyView(APIView):
    permission_classes = [IsAdmin]

    def get(self, request):
        return Response({"ok": True})


class ThrottledView(APIView):
    def get(self, request):
        raise Throttled(wait=7)


class ConflictView(APIView):
    def get(self, request):
        raise ProblemError(409, "email_taken", "Taken.", extra={"hint": "log in"})


class WrongPasswordView(APIView):
    def get(self, request):
        raise ProblemError(401, "invalid_credentials", "Wrong.")


class BrokenView(APIView):
    def get(self, request):
        raise RuntimeError("secret internal detail")


@require_GET
def plain_view(request):
    """A plain Django view: its 405 is Django's, turned into a problem by the middleware."""
    return HttpResponse("ok", content_type="text/plain")


def plain_status(request, status):
    """A plain Django view answering a bare error page, as a third-party view might."""
    return HttpResponse("<h1>Oops</h1>", status=status, content_type="text/html")


urlpatterns = [
    path("plain", plain_view),
    path("plain-status/<int:status>", plain_status),
    path("echo", EchoView.as_view()),
    path("strict", StrictView.as_view()),
    path("whoami", WhoAmIView.as_view()),
    path("admin-only", AdminOnlyView.as_view()),
    path("throttled", ThrottledView.as_view()),
    path("conflict", ConflictView.as_view()),
    path("wrong-password", WrongPasswordView.as_view()),
    path("broken", BrokenView.as_view()),
    path("", include("config.urls")),
]

handler400 = "apps.common.views.bad_request"
handler403 = "apps.common.views.permission_denied"
handler404 = "apps.common.views.not_found"
handler500 = "apps.common.views.server_error"
