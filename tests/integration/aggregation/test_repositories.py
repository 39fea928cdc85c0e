"""The ORM repositories: mapping, ordering, cached definitions and their invalidation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from apps.aggregation.repositories import (
    CachedCompositeRepository,
    DjangoCompositeRepository,
)
from core.domain.aggregation.composite import AuthMode, Composite, Source
from core.usecases.aggregation.ports import CompositeWrite
from tests.integration.aggregation.conftest import DATABASES
from tests.integration.races import lose_to_a_vanishing_winner

pytestmark = pytest.mark.django_db(databases=DATABASES, transaction=True)

DASH = Composite(
    name="dash",
    auth=AuthMode.NONE,
    cache_ttl_seconds=5,
    timeout_ms=900,
    sources=(
        Source(key="b", url="http://h/b", fields=("x",), rename={"x": "y"}, forward_auth=True),
        Source(key="a", url="http://h/a/{id}", required=False, timeout_ms=100),
    ),
)


def test_composites_round_trip_with_sources_in_order():
    repo = DjangoCompositeRepository()
    repo.add(DASH)
    assert repo.get("dash") == DASH
    assert [c.name for c in repo.list()] == ["dash"]
    assert repo.list()[0] == DASH
    assert len(repo.list()) == 1


def test_replace_and_delete():
    repo = DjangoCompositeRepository()
    repo.add(DASH)
    repo.replace("dash", replace(DASH, name="board", sources=DASH.sources[:1]))
    assert repo.get("dash") is None
    assert repo.get("board").sources == DASH.sources[:1]
    assert repo.delete("board") is True
    assert repo.delete("board") is False


def test_a_broken_constraint_other_than_the_name_is_raised_not_taken_for_a_lost_race():
    from django.db import IntegrityError

    repo = DjangoCompositeRepository()
    twice = replace(DASH, sources=(DASH.sources[0], DASH.sources[0]))  # past the domain rules
    with pytest.raises(IntegrityError):
        repo.add(twice)
    assert repo.get("dash") is None  # nothing half-written
    repo.add(DASH)
    with pytest.raises(IntegrityError):
        repo.replace("dash", replace(twice, name="board"))
    assert repo.get("dash") == DASH


def test_a_rename_that_lost_the_name_to_a_composite_deleted_at_once_is_name_taken():
    # Told by the index that refused it, not by looking again: the winner is gone by then.
    repo = DjangoCompositeRepository()
    repo.add(DASH)
    answers = lose_to_a_vanishing_winner(
        "aggregation",
        "aggregation_composite",
        win=lambda: repo.add(replace(DASH, name="board")),
        race=lambda: repo.replace("dash", replace(DASH, name="board")),
        vanish=lambda: repo.delete("board"),
    )
    assert answers == [CompositeWrite.NAME_TAKEN]
    assert [c.name for c in repo.list()] == ["dash"]


def test_definitions_are_served_from_the_cache_after_the_first_read(
    django_assert_num_queries,
):
    repo = CachedCompositeRepository()
    repo.add(DASH)
    assert repo.get("dash") == DASH
    with django_assert_num_queries(0):
        assert repo.get("dash") == DASH


def test_writes_through_the_repository_forget_the_cached_copy():
    repo = CachedCompositeRepository()
    repo.add(DASH)
    repo.get("dash")
    repo.replace("dash", replace(DASH, timeout_ms=50))
    assert repo.get("dash").timeout_ms == 50
    repo.replace("dash", replace(DASH, name="renamed"))
    assert repo.get("dash") is None
    repo.delete("renamed")
    assert repo.get("renamed") is None


def test_an_unreachable_cache_falls_back_to_the_database(request):
    repo = CachedCompositeRepository()
    DjangoCompositeRepository().add(DASH)
    request.getfixturevalue("redis_down")
    assert repo.get("dash") == DASH
    repo.replace("dash", replace(DASH, timeout_ms=10))
    assert repo.get("dash").timeout_ms == 10
