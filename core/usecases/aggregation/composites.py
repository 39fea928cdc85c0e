"""Managing composites: create, read, list, change and remove them."""

from __future__ import annotations

from collections.abc import Sequence

from core.domain.aggregation.composite import Composite, CompositeChanges, composite_problems
from core.domain.shared.result import Err, Ok, Result
from core.usecases.aggregation.errors import CompositeError
from core.usecases.aggregation.ports import CompositeRepository, CompositeWrite
from core.usecases.shared.ports import UnitOfWork

# A write that lost a race answers as the same request would have after the winner.
_LOST_RACE = {
    CompositeWrite.NAME_TAKEN: CompositeError.NAME_TAKEN,
    CompositeWrite.NOT_FOUND: CompositeError.NOT_FOUND,
}


class CreateComposite:
    """Store a new, valid composite under an unused name."""

    def __init__(self, composites: CompositeRepository) -> None:
        self._composites = composites

    def execute(self, composite: Composite) -> Result[Composite, CompositeError]:
        if composite_problems(composite):
            return Err(CompositeError.INVALID)
        if self._composites.exists(composite.name):
            return Err(CompositeError.NAME_TAKEN)
        written = self._composites.add(composite)  # a concurrent create may win in between
        return Ok(composite) if written is CompositeWrite.DONE else Err(_LOST_RACE[written])


class GetComposite:
    """Read one composite by name."""

    def __init__(self, composites: CompositeRepository) -> None:
        self._composites = composites

    def execute(self, name: str) -> Result[Composite, CompositeError]:
        composite = self._composites.get(name)
        return Err(CompositeError.NOT_FOUND) if composite is None else Ok(composite)


class ListComposites:
    """Every composite, by name."""

    def __init__(self, composites: CompositeRepository) -> None:
        self._composites = composites

    def execute(self) -> Sequence[Composite]:
        """The composites themselves, not a `Result`: a listing has no error to report."""
        return self._composites.list()


class UpdateComposite:
    """Apply a change set to a stored composite; the result must still be valid.

    The change is merged into the composite as stored, locked until it is written: two
    changes made at once end as if one had come after the other, neither undoing the other.
    """

    def __init__(self, composites: CompositeRepository, uow: UnitOfWork) -> None:
        self._composites = composites
        self._uow = uow

    def execute(self, name: str, changes: CompositeChanges) -> Result[Composite, CompositeError]:
        with self._uow:
            current = self._composites.get_for_update(name)
            if current is None:
                return Err(CompositeError.NOT_FOUND)
            changed = changes.applied_to(current)
            if changed == current:
                return Ok(current)  # nothing to write, and no cached definition to retire
            if composite_problems(changed):
                return Err(CompositeError.INVALID)
            if changed.name != name and self._composites.exists(changed.name):
                return Err(CompositeError.NAME_TAKEN)
            written = self._composites.replace(name, changed)  # a create may take the name
            if written is not CompositeWrite.DONE:
                return Err(_LOST_RACE[written])
            self._uow.commit()
        return Ok(changed)


class DeleteComposite:
    """Remove a composite (its past runs stay in the history)."""

    def __init__(self, composites: CompositeRepository) -> None:
        self._composites = composites

    def execute(self, name: str) -> Result[None, CompositeError]:
        return Ok(None) if self._composites.delete(name) else Err(CompositeError.NOT_FOUND)


class EnsureComposite:
    """Create a composite unless one of that name exists (idempotent seeding)."""

    def __init__(self, composites: CompositeRepository) -> None:
        self._create = CreateComposite(composites)

    def execute(self, composite: Composite) -> Result[bool, CompositeError]:
        """Ok(True) when created, Ok(False) when it was already there."""
        match self._create.execute(composite):
            case Ok(_):
                return Ok(True)
            case Err(CompositeError.NAME_TAKEN):
                return Ok(False)
            case Err(error):
                return Err(error)
        raise AssertionError("unreachable")  # pragma: no cover
