"""What every context's Django admin shares: request data that Django's admin would hand to the
ORM unchecked is checked first, so a hand-made URL or form answers Django's own "invalid"
answers instead of a 500 (a database error, or a value the primary key cannot hold).

Every `ModelAdmin` registered with the site mixes `CheckedInputAdmin` in (a test walks the
site's registry to hold new ones to it).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse


class OwnFiltersChangeList(ChangeList):
    """Django's change list, filtered by its admin's own list filters and date hierarchy only.

    Django applies any other `field__lookup=value` of the query string to the query as it
    comes, and a value the database refuses only fails when the page is rendered (a 500 on
    `?name__regex=[`). Such a parameter gets Django's answer to a malformed filter instead: a
    redirect to the unfiltered list (`?e=1`). The admins link to no list with other filters
    (no `raw_id_fields` popups, no `limit_choices_to`).

    A date hierarchy's year, month and day outside what `datetime` holds get the same answer:
    Django turns only a ValueError from the chosen period's first day into it, and the end of
    year 9999 or a year past a C long raised (ValueError or OverflowError) as a 500."""

    def get_filters(self, request: HttpRequest) -> Any:
        try:
            filters = super().get_filters(request)
        except (ValueError, OverflowError) as error:  # the date hierarchy's bounds, computed
            raise IncorrectLookupParameters(error) from error
        remaining = filters[2]  # what no list filter took, for Django to filter by as it is
        # The date hierarchy's year/month/day become these bounds (values Django computed).
        bounds = {f"{self.date_hierarchy}__gte", f"{self.date_hierarchy}__lt"}
        unknown = sorted(set(remaining) - (bounds if self.date_hierarchy else set()))
        if unknown:
            raise IncorrectLookupParameters(f"Not a filter of this list: {', '.join(unknown)}.")
        return filters


class CheckedInputAdmin:
    """`ModelAdmin` mixin (put it first): the change list filters only by its own filters
    (`OwnFiltersChangeList`), and an action leaves out selected ids that are no primary keys
    of the model, with a warning (Django filters the rows by them as they come: `abc` for a
    UUID or a number was a 500)."""

    model: Any

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return OwnFiltersChangeList

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        valid = [value for value in selected if self.is_selectable_id(value)]
        if len(valid) < len(selected):
            post = request.POST.copy()
            post.setlist(ACTION_CHECKBOX_NAME, valid)
            request.POST = post  # type: ignore[assignment]
            ignored = len(selected) - len(valid)
            messages.warning(
                request,
                f"{ignored} selected id(s) ignored: not {self.model._meta.verbose_name} ids.",
            )
        response: HttpResponse | None = super().response_action(  # type: ignore[misc]
            request, queryset
        )
        return response

    def is_selectable_id(self, value: str) -> bool:
        """Whether an action may filter the rows by `value`: one the primary key can hold (a
        number within the column's range: SQLite cannot even bind one past 64 bits)."""
        pk = self.model._meta.pk
        try:
            key = pk.to_python(value)
        except ValidationError:
            return False
        if not isinstance(key, int):
            return True
        ops = connections[router.db_for_read(self.model)].ops
        low, high = ops.integer_field_range(pk.get_internal_type())
        return (low is None or key >= low) and (high is None or key <= high)
