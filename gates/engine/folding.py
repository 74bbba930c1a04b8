"""Merging partition partials as they arrive, in partition order, at about O(N log P) cost.

:meth:`gates.engine.Engine.fold` hands each partition's partial to a merge function as soon as
the partials before it are merged, so the client holds one partial and the running total, not
every partial at once. A running total merged with each partial in turn costs O(P * N) when the
total keeps growing (a table keyed by distinct values); :class:`Tiered` keeps a stack of merged
tables instead and merges the two newest when the newer is at least as big as the one below it,
like a binary counter, so every entry is merged about ``log2(P)`` times. Merges are only ever of
neighbours in partition order, so an associative merge (adding the counts of equal keys, in first
appearance order) gives exactly the table of merging all partials at once.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Tiered(Generic[T]):
    """A stack of merged tables of consecutive partitions, oldest at the bottom.

    ``merge(older, newer)`` returns the merged table of both (older first); ``size`` its number
    of entries.
    """

    def __init__(self, merge: Callable[[T, T], T], size: Callable[[T], int]) -> None:
        self._merge = merge
        self._size = size
        self._stack: list[tuple[T, int]] = []

    def add(self, table: T) -> None:
        """Push the next partition's table and merge while the newest is as big as the one below."""
        entry = (table, self._size(table))
        while self._stack and entry[1] >= self._stack[-1][1]:
            older, _ = self._stack.pop()
            merged = self._merge(older, entry[0])
            entry = (merged, self._size(merged))
        self._stack.append(entry)

    def result(self) -> T | None:
        """Return the merged table of every table added, or None when none was."""
        while len(self._stack) > 1:
            newer, _ = self._stack.pop()
            older, _ = self._stack.pop()
            merged = self._merge(older, newer)
            self._stack.append((merged, self._size(merged)))
        return self._stack[0][0] if self._stack else None


__all__ = ["Tiered"]
