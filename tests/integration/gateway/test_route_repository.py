"""DjangoRouteRepository: a lost race is a refusal, any other integrity error still raises."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.db import IntegrityError

from apps.gateway.repositories import DjangoRouteRepository
from core.usecases.gateway.ports import RouteWrite
from tests.factories.gateway import route

pytestmark = pytest.mark.django_db(databases=["gateway"])


def test_a_taken_name_or_prefix_is_a_refusal_that_says_which():
    repository = DjangoRouteRepository()
    assert repository.add(route(name="orders", path_prefix="/orders")) is RouteWrite.DONE
    assert repository.add(route(name="orders", path_prefix="/other")) is RouteWrite.NAME_TAKEN
    assert repository.add(route(name="other", path_prefix="/orders")) is RouteWrite.PREFIX_TAKEN
    assert repository.add(route(name="billing", path_prefix="/billing")) is RouteWrite.DONE
    assert (
        repository.update(route(name="billing", path_prefix="/orders")) is RouteWrite.PREFIX_TAKEN
    )
    assert repository.update(route(name="gone", path_prefix="/gone")) is RouteWrite.NOT_FOUND
    assert [r.name for r in repository.all()] == ["billing", "orders"]


def test_a_broken_invariant_is_not_taken_for_a_lost_race():
    repository = DjangoRouteRepository()
    with pytest.raises(IntegrityError):  # the domain refuses it; the column's CHECK too
        repository.add(route(name="odd", path_prefix="/odd", timeout_ms=-1))
    assert repository.add(route(name="fine", path_prefix="/fine")) is RouteWrite.DONE
    with pytest.raises(IntegrityError):
        repository.update(replace(repository.get("fine"), retries=-1))
