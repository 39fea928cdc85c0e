"""The unit of work's double, shared by every context's use-case tests."""

from __future__ import annotations


class FakeUnitOfWork:
    """`UnitOfWork` that records commits; a block left without `commit()` counts as rolled
    back. `open` while inside the block."""

    def __init__(self) -> None:
        self.commits = 0
        self.rollbacks = 0
        self.open = False
        self._committed = False

    def __enter__(self):
        self._committed = False
        self.open = True
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.open = False
        if not self._committed:
            self.rollbacks += 1

    def commit(self) -> None:
        self._committed = True
        self.commits += 1
