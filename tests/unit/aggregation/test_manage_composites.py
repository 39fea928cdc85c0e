"""Creating, reading, listing, changing and removing composites."""

from dataclasses import replace

from core.domain.aggregation.composite import Composite, CompositeChanges, Source, SourceSpec
from core.domain.shared.result import Err, Ok
from core.usecases.aggregation.composites import (
    CreateComposite,
    DeleteComposite,
    EnsureComposite,
    GetComposite,
    ListComposites,
    UpdateComposite,
)
from core.usecases.aggregation.errors import CompositeError
from tests.fakes.aggregation import InMemoryCompositeRepository, OvertakenCompositeRepository
from tests.fakes.transactions import FakeUnitOfWork

DASH = Composite(name="dash", sources=(Source(key="a", url="http://h/a"),))
INVALID = replace(DASH, name="Not Valid")


def test_create_stores_a_valid_composite():
    repo = InMemoryCompositeRepository()
    assert CreateComposite(repo).execute(DASH) == Ok(DASH)
    assert repo.get("dash") == DASH


def test_create_refuses_invalid_and_taken_names():
    repo = InMemoryCompositeRepository(DASH)
    assert CreateComposite(repo).execute(INVALID) == Err(CompositeError.INVALID)
    assert CreateComposite(repo).execute(DASH) == Err(CompositeError.NAME_TAKEN)


def test_create_that_loses_a_race_for_the_name_is_name_taken():
    other = replace(DASH, description="the winner's")
    repo = OvertakenCompositeRepository(seen=[], now=[other])
    assert CreateComposite(repo).execute(DASH) == Err(CompositeError.NAME_TAKEN)
    assert repo.items == {"dash": other}


def test_get_and_list():
    other = replace(DASH, name="alpha")
    repo = InMemoryCompositeRepository(DASH, other)
    assert GetComposite(repo).execute("dash") == Ok(DASH)
    assert GetComposite(repo).execute("nope") == Err(CompositeError.NOT_FOUND)
    assert [c.name for c in ListComposites(repo).execute()] == ["alpha", "dash"]


def test_update_applies_the_change():
    repo = InMemoryCompositeRepository(DASH)
    result = UpdateComposite(repo, FakeUnitOfWork()).execute(
        "dash", CompositeChanges(timeout_ms=900)
    )
    assert result.unwrap().timeout_ms == 900
    assert repo.get("dash").timeout_ms == 900


def test_update_merges_into_the_composite_as_stored_under_its_lock_and_commits():
    # What a lock-free read saw is older than the stored composite (another change came in):
    # the change merges into the stored one, keeping the other change.
    stored = replace(DASH, description="changed meanwhile")
    repo, uow = OvertakenCompositeRepository(seen=[DASH], now=[stored]), FakeUnitOfWork()
    updated = UpdateComposite(repo, uow).execute("dash", CompositeChanges(timeout_ms=900))
    assert updated == Ok(replace(stored, timeout_ms=900))
    assert repo.items == {"dash": replace(stored, timeout_ms=900)}
    assert (uow.commits, uow.rollbacks) == (1, 0)


def test_an_update_that_changes_nothing_writes_nothing():
    repo, uow = InMemoryCompositeRepository(DASH), FakeUnitOfWork()
    update = UpdateComposite(repo, uow)
    assert update.execute("dash", CompositeChanges()) == Ok(DASH)
    assert update.execute("dash", CompositeChanges(name="dash", timeout_ms=DASH.timeout_ms)) == Ok(
        DASH
    )
    assert repo.writes == 0
    assert uow.commits == 0


def test_a_refused_update_commits_nothing():
    repo, uow = InMemoryCompositeRepository(DASH), FakeUnitOfWork()
    update = UpdateComposite(repo, uow)
    assert update.execute("nope", CompositeChanges()) == Err(CompositeError.NOT_FOUND)
    assert update.execute("dash", CompositeChanges(name="Bad")) == Err(CompositeError.INVALID)
    assert (uow.commits, uow.rollbacks) == (0, 2)


def test_update_gives_new_sources_without_a_timeout_the_composites():
    repo = InMemoryCompositeRepository(replace(DASH, timeout_ms=700))
    changes = CompositeChanges(sources=(SourceSpec(key="b", url="http://h/b"),))
    updated = UpdateComposite(repo, FakeUnitOfWork()).execute("dash", changes).unwrap()
    assert updated.sources == (Source(key="b", url="http://h/b", timeout_ms=700),)
    assert repo.get("dash") == updated


def test_update_can_rename_to_a_free_name_only():
    repo = InMemoryCompositeRepository(DASH, replace(DASH, name="taken"))
    update = UpdateComposite(repo, FakeUnitOfWork())
    assert update.execute("dash", CompositeChanges(name="taken")) == Err(CompositeError.NAME_TAKEN)
    assert update.execute("dash", CompositeChanges(name="fresh")).is_ok()
    assert repo.exists("fresh")
    assert not repo.exists("dash")


def test_update_refuses_unknown_and_invalid_results():
    repo = InMemoryCompositeRepository(DASH)
    update = UpdateComposite(repo, FakeUnitOfWork())
    assert update.execute("nope", CompositeChanges()) == Err(CompositeError.NOT_FOUND)
    assert update.execute("dash", CompositeChanges(name=INVALID.name)) == Err(
        CompositeError.INVALID
    )
    assert repo.get("dash") == DASH


def test_update_of_a_composite_deleted_meanwhile_is_not_found_and_recreates_nothing():
    repo = OvertakenCompositeRepository(seen=[DASH], now=[])
    assert UpdateComposite(repo, FakeUnitOfWork()).execute(
        "dash", CompositeChanges(timeout_ms=900)
    ) == Err(CompositeError.NOT_FOUND)
    assert repo.items == {}


def test_rename_that_loses_a_race_for_the_new_name_is_name_taken():
    winner = replace(DASH, name="taken")
    repo = OvertakenCompositeRepository(seen=[DASH], now=[DASH, winner])
    assert UpdateComposite(repo, FakeUnitOfWork()).execute(
        "dash", CompositeChanges(name="taken")
    ) == Err(CompositeError.NAME_TAKEN)
    assert repo.items == {"dash": DASH, "taken": winner}


def test_delete():
    repo = InMemoryCompositeRepository(DASH)
    assert DeleteComposite(repo).execute("dash") == Ok(None)
    assert DeleteComposite(repo).execute("dash") == Err(CompositeError.NOT_FOUND)


def test_ensure_is_idempotent():
    repo = InMemoryCompositeRepository()
    assert EnsureComposite(repo).execute(DASH) == Ok(True)
    assert EnsureComposite(repo).execute(DASH) == Ok(False)
    assert EnsureComposite(repo).execute(INVALID) == Err(CompositeError.INVALID)
