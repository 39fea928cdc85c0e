"""The bases of every DRF view of the platform: `PlatformAPIView` and `PlatformGenericAPIView`.

DRF's `APIView.dispatch` runs `initial()` (content negotiation, then authentication,
permissions and throttles) before it looks the handler up, so a method the view does not
implement answered 401 to a caller without a token and 405 only to one with it. These bases
refuse such a method with DRF's own 405 before anything asks who the caller is. Views subclass
them instead of DRF's classes (ruff's TID251 says so on import); nothing else belongs here.
"""

from __future__ import annotations

from rest_framework.exceptions import MethodNotAllowed
from rest_framework.generics import GenericAPIView  # noqa: TID251 - the one subclass allowed
from rest_framework.request import Request
from rest_framework.views import APIView  # noqa: TID251 - the one subclass allowed


class PlatformAPIView(APIView):
    """DRF's `APIView`, answering 405 `method_not_allowed` (with `Allow`) for a method it has
    no handler for whether or not a token came, and whatever the token's roles."""

    def perform_authentication(self, request: Request) -> None:
        """Refuse a method the view does not implement, then authenticate as DRF does.

        The first of DRF's caller checks (permissions and throttles follow it in `initial()`),
        so none of them runs for such a method; content negotiation has run, as for a public
        view (406 before 405). A handler is what `dispatch` would call: a listed method the
        view has (HEAD where it has GET, set by Django's `setup`; OPTIONS from DRF).
        """
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):
            raise MethodNotAllowed(request.method)
        super().perform_authentication(request)


class PlatformGenericAPIView(PlatformAPIView, GenericAPIView):
    """DRF's `GenericAPIView` (pagination), with `PlatformAPIView`'s early 405."""
