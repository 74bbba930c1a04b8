"""The embedded engine: every partition computed in this process, one after another."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class LocalEngine:
    """Runs partition tasks in-process; memory follows one partition at a time."""

    kind = "local"
    address: str | None = None

    def workers(self) -> int:
        return 1

    def share(self, value: Any) -> Any:
        return value

    def map(self, fn: Callable[..., Any], items: Sequence[Any], **shared: Any) -> list[Any]:
        return [fn(item, **shared) for item in items]

    def fold(self, fn: Callable[..., Any], items: Sequence[Any], merge: Callable[[Any, Any], Any], initial: Any,
             **shared: Any) -> Any:
        total = initial
        for item in items:
            total = merge(total, fn(item, **shared))
        return total

    def fold_keeping(self, fn: Callable[..., Any], items: Sequence[Any], split: Callable[[Any], tuple[Any, Any]],
                     merge: Callable[[Any, Any], Any], initial: Any, **shared: Any) -> tuple[Any, list[Any]]:
        total, kept = initial, []
        for item in items:
            merged, keep = split(fn(item, **shared))
            kept.append(keep)
            total = merge(total, merged)
        return total, kept

    def then(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def pull(self, handles: Sequence[Any]) -> list[Any]:
        return list(handles)

    def drop(self, handles: Sequence[Any]) -> None:
        return None

    def close(self) -> None:
        return None
