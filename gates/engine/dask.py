"""The dask engine: partition tasks on a dask.distributed cluster.

With an address it connects to that scheduler and leaves it running; without one it starts a
LocalCluster of worker processes on 127.0.0.1 (one thread each, no dashboard) and shuts it down
on :meth:`DaskEngine.close`. Results come back in partition order whatever order workers finish
in, so merges are deterministic.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from gates.errors import UserError
from gates.policy import EngineSpec

CONNECT_TIMEOUT = "20s"
MSG_CONNECT = "cannot reach the dask scheduler at {address}: {problem}"


class DaskEngine:
    """A dask.distributed client, and the LocalCluster behind it when this engine started one."""

    kind = "dask"

    def __init__(self, spec: EngineSpec, location: str | None = None) -> None:
        from distributed import Client, LocalCluster

        self._cluster: Any = None
        if spec.address:
            try:
                self.client = Client(spec.address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise UserError(MSG_CONNECT.format(address=spec.address, problem=exc),
                                location=location) from None
            self.address: str | None = spec.address
        else:
            self._cluster = LocalCluster(n_workers=spec.workers or os.cpu_count() or 1, threads_per_worker=1,
                                         processes=True, host="127.0.0.1", dashboard_address=None,
                                         silence_logs=logging.ERROR)
            self.client = Client(self._cluster, set_as_default=False)
            self.address = None

    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def share(self, value: Any) -> Any:
        """Send ``value`` to every worker once; tasks given the handle receive the value."""
        return self.client.scatter(value, broadcast=True, hash=False)

    def map(self, fn: Callable[..., Any], items: Sequence[Any], **shared: Any) -> list[Any]:
        if not items:
            return []
        futures = self.client.map(fn, list(items), pure=False, **shared)
        try:
            return list(self.client.gather(futures))
        finally:
            for f in futures:
                f.release()

    def fold(self, fn: Callable[..., Any], items: Sequence[Any], merge: Callable[[Any, Any], Any], initial: Any,
             **shared: Any) -> Any:
        """Submit every task, then fetch and merge the results one at a time in item order,
        releasing each once merged (later results wait on the workers)."""
        if not items:
            return initial
        return _merge_in_order(list(self.client.map(fn, list(items), pure=False, **shared)), merge, initial)

    def fold_keeping(self, fn: Callable[..., Any], items: Sequence[Any], split: Callable[[Any], tuple[Any, Any]],
                     merge: Callable[[Any, Any], Any], initial: Any, **shared: Any) -> tuple[Any, list[Any]]:
        """Each result is split on its worker: the merged part is fetched and merged in item order,
        the kept part stays there as a future."""
        if not items:
            return initial, []
        whole = self.client.map(fn, list(items), pure=False, **shared)
        kept = [self.client.submit(_second, f, split, pure=False) for f in whole]
        light = [self.client.submit(_first, f, split, pure=False) for f in whole]
        for f in whole:
            f.release()  # the scheduler keeps each result until both parts are taken
        return _merge_in_order(light, merge, initial), kept

    def then(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, **kwargs)

    def pull(self, handles: Sequence[Any]) -> list[Any]:
        try:
            return list(self.client.gather(list(handles)))
        finally:
            self.drop(handles)

    def drop(self, handles: Sequence[Any]) -> None:
        for f in handles:
            f.release()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _merge_in_order(futures: list[Any], merge: Callable[[Any, Any], Any], initial: Any) -> Any:
    """Fetch and merge the futures' results one at a time in order, releasing each once merged
    (later results wait on the workers)."""
    total = initial
    try:
        for i, future in enumerate(futures):
            result = future.result()
            future.release()
            futures[i] = None
            total = merge(total, result)
            del result
    finally:
        for f in futures:
            if f is not None:
                f.release()
    return total


def _first(result: Any, split: Callable[[Any], tuple[Any, Any]]) -> Any:
    return split(result)[0]


def _second(result: Any, split: Callable[[Any], tuple[Any, Any]]) -> Any:
    return split(result)[1]
