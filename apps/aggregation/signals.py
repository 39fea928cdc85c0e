"""Drop cached composite definitions when the Django admin (or any ORM write) changes them.

Connected in `AggregationConfig.ready()`; REST writes go through `CachedCompositeRepository`,
which does the same, so both paths invalidate.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.aggregation.models import CompositeRow, SourceRow
from apps.aggregation.repositories import DB
from apps.aggregation.repositories import forget_definitions as _forget


def forget_definitions(*names: str) -> None:
    """After the commit: forgetting earlier would let a concurrent run re-cache the old copy."""
    transaction.on_commit(lambda: _forget(*names), using=DB)


def composite_saving(sender: Any, instance: CompositeRow, **kwargs: Any) -> None:
    """Before a save, forget the stored name too: a rename must not leave the old one cached."""
    old = CompositeRow.objects.using(DB).filter(pk=instance.pk).values_list("name", flat=True)
    forget_definitions(instance.name, *list(old))


def composite_changed(sender: Any, instance: CompositeRow, **kwargs: Any) -> None:
    forget_definitions(instance.name)


def source_changed(sender: Any, instance: SourceRow, **kwargs: Any) -> None:
    name = (
        CompositeRow.objects.using(DB)
        .filter(pk=instance.composite_id)
        .values_list("name", flat=True)
    )
    forget_definitions(*name)


def connect() -> None:
    from django.db.models.signals import post_delete, post_save, pre_save

    pre_save.connect(composite_saving, sender=CompositeRow, dispatch_uid="aggregation-pre")
    post_save.connect(composite_changed, sender=CompositeRow, dispatch_uid="aggregation-post")
    post_delete.connect(composite_changed, sender=CompositeRow, dispatch_uid="aggregation-del")
    post_save.connect(source_changed, sender=SourceRow, dispatch_uid="aggregation-src")
    post_delete.connect(source_changed, sender=SourceRow, dispatch_uid="aggregation-src-del")
