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
        total = initial
        if not items:
            return total
        futures: list[Any] = list(self.client.map(fn, list(items), pure=False, **shared))
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

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
