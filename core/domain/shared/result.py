"""A small `Result` type: `Ok(value)` or `Err(error)`.

Use it the seed's way (`is_ok()`, `unwrap()`, `map`, `and_then`) or with structural pattern
matching (`match result: case Ok(value): ... case Err(error): ...`). Exceptions stay for
programmer errors and infrastructure failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeAlias, TypeVar

T = TypeVar("T")
E = TypeVar("E")
U = TypeVar("U")
F = TypeVar("F")


class UnwrapError(Exception):
    """Raised when `unwrap` meets an `Err` or `unwrap_err` meets an `Ok`: a programmer error."""


@dataclass(frozen=True, slots=True)
class Ok(Generic[T]):
    """The success case, holding `value`."""

    value: T
    __match_args__ = ("value",)

    def is_ok(self) -> bool:
        return True

    def is_err(self) -> bool:
        return False

    def unwrap(self) -> T:
        return self.value

    def unwrap_err(self) -> NoReturn:
        raise UnwrapError(f"unwrap_err() called on Ok({self.value!r})")

    def unwrap_or(self, default: object) -> T:
        return self.value

    def map(self, fn: Callable[[T], U]) -> Ok[U]:
        return Ok(fn(self.value))

    def map_err(self, fn: object) -> Ok[T]:
        return self

    def and_then(self, fn: Callable[[T], Result[U, F]]) -> Result[U, F]:
        return fn(self.value)


@dataclass(frozen=True, slots=True)
class Err(Generic[E]):
    """The failure case, holding `error` (usually an enum member with a stable code)."""

    error: E
    __match_args__ = ("error",)

    def is_ok(self) -> bool:
        return False

    def is_err(self) -> bool:
        return True

    def unwrap(self) -> NoReturn:
        raise UnwrapError(f"unwrap() called on Err({self.error!r})")

    def unwrap_err(self) -> E:
        return self.error

    def unwrap_or(self, default: U) -> U:
        return default

    def map(self, fn: object) -> Err[E]:
        return self

    def map_err(self, fn: Callable[[E], F]) -> Err[F]:
        return Err(fn(self.error))

    def and_then(self, fn: object) -> Err[E]:
        return self


Result: TypeAlias = Ok[T] | Err[E]
