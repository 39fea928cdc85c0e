"""Random ids a test can predict: the one fake of `RandomHex` (trace and span ids)."""

from __future__ import annotations


class FakeRandomHex:
    """Hands out predictable hex strings (…01, …02, …), each one new, and remembers each one."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def hex(self, nbytes: int) -> str:
        self.issued.append(format(len(self.issued) + 1, f"0{2 * nbytes}x"))
        return self.issued[-1]
