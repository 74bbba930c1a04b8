"""Engines: where a run's statistics are computed.

``local`` (the default) computes in this process. ``dask`` computes on a dask.distributed cluster:
workers read their partitions of the eval data, predict, and return partial statistics; the
client merges them in partition order and decides (DESIGN section 12). Both satisfy
:class:`Engine`, so the code that measures is the same and only the map step moves.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from gates.errors import UserError
from gates.policy import EngineSpec

__all__ = ["Engine", "EngineSpec", "engine_problem", "open_engine", "resolve_spec"]

MSG_ADDRESS_NEEDS_DASK = "an address names a dask scheduler: set kind: dask"
MSG_BATCHES_NEED_LOCAL = "batches is a setting of engine kind local (the dask engine always reads partitions)"
MSG_NO_DASK = "engine kind dask needs the dask extra: pip install 'model-gates[dask]'"


class Engine(Protocol):
    """Runs one function over many items (partitions) and returns the results in item order."""

    kind: str
    address: str | None

    def workers(self) -> int:
        """Return how many worker processes compute."""

    def share(self, value: Any) -> Any:
        """Return a handle to ``value`` that tasks receive as the value itself, sent once per worker."""

    def map(self, fn: Callable[..., Any], items: Sequence[Any], **shared: Any) -> list[Any]:
        """Return ``[fn(item, **shared) for item in items]``, in item order, wherever it computes."""

    def fold(self, fn: Callable[..., Any], items: Sequence[Any], merge: Callable[[Any, Any], Any], initial: Any,
             **shared: Any) -> Any:
        """Return ``initial`` merged with each ``fn(item, **shared)`` in item order (``merge(total, result)``).

        The client holds one result at a time besides the total: results not yet merged wait
        where they were computed. Use :class:`gates.engine.folding.Tiered` inside ``merge`` for
        tables that grow with each result.
        """

    def fold_keeping(self, fn: Callable[..., Any], items: Sequence[Any], split: Callable[[Any], tuple[Any, Any]],
                     merge: Callable[[Any, Any], Any], initial: Any, **shared: Any) -> tuple[Any, list[Any]]:
        """:meth:`fold` where ``split(result)`` gives ``(merged part, kept part)``: the merged parts
        come to the client, the kept parts stay where they were computed; return the total and
        handles to the kept parts, in item order (see :meth:`then`)."""

    def then(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` where it computes, handles among ``args`` (also inside lists)
        given as their values, and return a handle to the result, kept there."""

    def pull(self, handles: Sequence[Any]) -> list[Any]:
        """Return the values of kept results, in order, and release them."""

    def drop(self, handles: Sequence[Any]) -> None:
        """Release kept results no task still needs."""

    def close(self) -> None:
        """Release the cluster (a LocalCluster this engine started is shut down)."""


def engine_problem(kind: str) -> str | None:
    """Return why ``kind`` cannot run here (a missing extra), or None."""
    if kind == "dask" and importlib.util.find_spec("distributed") is None:
        return MSG_NO_DASK
    return None


def resolve_spec(configured: EngineSpec, kind: str | None = None, address: str | None = None) -> EngineSpec:
    """Return the engine of a run: command-line ``kind``/``address`` win over gates.yaml's ``engine``.

    An address on the command line means dask unless ``kind`` says otherwise; ``--engine local``
    keeps gates.yaml's ``batches``.
    """
    chosen = kind or ("dask" if address else configured.kind)
    if chosen == "local":
        if address:
            raise UserError(MSG_ADDRESS_NEEDS_DASK, location="--engine-address")
        return EngineSpec("local", batches=configured.batches if configured.kind == "local" else True)
    return EngineSpec("dask", address=address or configured.address, workers=configured.workers)


def open_engine(spec: EngineSpec, location: str | None = None) -> Engine:
    """Return a ready engine for ``spec`` (connects to, or starts, a dask cluster)."""
    problem = engine_problem(spec.kind)
    if problem is not None:
        raise UserError(problem, location=location)
    if spec.kind == "dask":
        from gates.engine.dask import DaskEngine

        return DaskEngine(spec, location)
    from gates.engine.local import LocalEngine

    return LocalEngine()
