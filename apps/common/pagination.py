"""Page-number pagination with a bounded page size, for admin list endpoints."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class PageNumberField(serializers.IntegerField):
    """A page number or size from the query string: ASCII digits only. Python's `int()` (so
    DRF's `IntegerField` and the paginator) also takes other scripts' digits (`٣`), full-width
    ones, a sign, blanks, underscores and DRF a trailing `.0`; none is how a client writes a
    page, and each is refused as any other bad value is."""

    def to_internal_value(self, data: Any) -> int:
        if not (isinstance(data, str) and data.isascii() and data.isdigit()):
            self.fail("invalid")
        return super().to_internal_value(data)


class _PageQuery(serializers.Serializer[Any]):
    """`?page=` and `?page_size=` must be whole numbers from 1, as on every list."""

    page = PageNumberField(min_value=1, required=False)
    page_size = PageNumberField(min_value=1, required=False)


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M` (M cut to 200); answers `{count, next, previous, results}`.

    A page or size that is not a whole number from 1 is a 400 `validation_error` (DRF alone
    would answer 404 for the one and ignore the other); a page past the end is a 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        _PageQuery(data=request.query_params).is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)


# A raw schema: drf-spectacular's parameter types carry no bounds, and both are refused below 1.
_FROM_ONE = {"type": "integer", "minimum": 1}


def page_parameters(items: str) -> list[OpenApiParameter]:
    """The OpenAPI parameters of a paginated list: `?page=` and `?page_size=`."""
    most = PagePagination.max_page_size
    return [
        OpenApiParameter("page", _FROM_ONE, description="Page number (from 1)."),
        OpenApiParameter(
            "page_size",
            _FROM_ONE,
            description=f"{items} per page (at most {most}: larger values are cut to {most}).",
        ),
    ]
