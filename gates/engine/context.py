"""The client's side of a partitioned run: the data's shape and partitions, never its rows.

:class:`PartitionedContext` is an :class:`~gates.context.EvalContext` whose data lives in
partitions that the engine's workers read. It knows the source's schema (from Parquet metadata),
row counts and hashes, which is all a report and lineage need; asking it for ``frame`` is an
error, so no code path can quietly collect the rows on the client.
"""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.clusters import cluster_index
from gates.context import (MAX_MISSING_KEPT, MSG_EMPTY_EVAL, MSG_NO_TARGET, BaselineResolver, EvalContext, as_labels,
                           target_missing)
from gates.datasets import Partition, data_sha256, empty_frame, partitions
from gates.engine import Engine
from gates.errors import UserError
from gates.policy import Policy

if TYPE_CHECKING:
    from gates.checks.data.target import TargetFacts

MSG_NO_FRAME = ("the dask engine never collects the eval data on the client; "
                "use engine kind local to work with the whole frame")
MSG_NEEDS_PARQUET = "the dask engine reads Parquet (a file, a folder or a glob); {name} is not Parquet"
#: rows per partition: whole Parquet row groups are read until at least this many rows are in
PARTITION_ROWS = 250_000


class PartitionedContext(EvalContext):
    """An EvalContext whose eval and reference rows stay with the engine's workers."""

    def __init__(self, policy: Policy, resolve_baseline: BaselineResolver | None = None, *,
                 require_baseline: bool = False, engine: Engine, partition_rows: int = PARTITION_ROWS) -> None:
        super().__init__(policy, resolve_baseline, require_baseline=require_baseline)
        self.engine = engine
        self.partition_rows = partition_rows

    # the rows are never here
    @property
    def frame(self) -> pd.DataFrame:  # type: ignore[override]
        raise UserError(MSG_NO_FRAME, location=self.policy.where("engine"))

    @property
    def reference(self) -> pd.DataFrame | None:  # type: ignore[override]
        raise UserError(MSG_NO_FRAME, location=self.policy.where("engine"))

    @cached_property
    def eval_partitions(self) -> list[Partition]:
        """The eval data's partitions, in source order."""
        return self._partitions(self.policy.data.eval, "eval")

    @cached_property
    def reference_partitions(self) -> list[Partition]:
        ref = self.policy.data.reference
        return [] if ref is None else self._partitions(ref, "reference")

    def _partitions(self, path: Any, key: str) -> list[Partition]:
        where = self.policy.where("data", key)
        if path.suffix.lower() == ".csv":
            raise UserError(MSG_NEEDS_PARQUET.format(name=path.name), location=where)
        return partitions(path, self.partition_rows, where)

    @cached_property
    def schema(self) -> pd.DataFrame:
        """A zero-row frame with the eval data's columns and dtypes, every referenced column checked."""
        spec = self.policy.data
        df = empty_frame(spec.eval, self.policy.where("data", "eval"))
        if self.n_eval_rows == 0:
            raise UserError(MSG_EMPTY_EVAL, location=self.policy.where("data", "eval"))
        if spec.target is not None:  # per_example has none
            self._require(df, [spec.target], ("data", "target"), "the eval data")
        self._require(df, list(spec.sensitive), ("data", "sensitive"), "the eval data")
        if spec.cluster is not None:
            self._require(df, [spec.cluster], ("data", "cluster"), "the eval data")
        for role in ("candidate", "baseline"):
            src = getattr(self.policy.model, role)
            if src.kind == "columns":
                cols = [src.predictions] if src.predictions else []
                cols += [src.scores] if isinstance(src.scores, str) else list(src.scores or ())
                cols += [c for _, c in src.named_scores]
                self._require(df, cols, ("model", role), "the eval data")
        self._require_named_columns(df, lambda: self.reference_schema)
        return df

    @cached_property
    def reference_schema(self) -> pd.DataFrame | None:
        ref = self.policy.data.reference
        return None if ref is None else empty_frame(ref, self.policy.where("data", "reference"))

    @property
    def y_true(self) -> Any:  # type: ignore[override]
        raise UserError(MSG_NO_FRAME, location=self.policy.where("engine"))

    @cached_property
    def classes(self) -> tuple[Any, ...]:
        """The sorted labels of the rows that have a target (the embedded run's ``classes``)."""
        facts = self.target_facts
        if facts.counts is not None:
            return tuple(sorted(facts.counts.index.tolist()))
        from gates.engine.worker import target_values

        found = self.engine.map(target_values, self.eval_partitions, column=self.policy.data.target)
        values = np.asarray(pd.unique(pd.Series([v for part in found for v in part], dtype=object)).tolist())
        return tuple(sorted(as_labels(values, self.policy.model.task).tolist()))

    @cached_property
    def target_facts(self) -> TargetFacts:
        """The target's checks' facts, merged from one pass over the partitions' target (and prediction) columns.

        Counts add, the first rows without a target are taken in partition order, and labels are
        read as the embedded run reads them (whole floats of a classification target as integers).
        """
        from gates.checks.data.target import TargetFacts, prediction_columns
        from gates.engine.worker import target_partial

        col, task = self.policy.data.target, self.policy.model.task
        preds = prediction_columns(self)
        parts = self.engine.map(target_partial, self.eval_partitions, column=col, predictions=preds,
                                count_labels=task != "regression", keep=MAX_MISSING_KEPT)
        n_rows, n_missing = sum(p.rows for p in parts), sum(p.n_missing for p in parts)
        if n_missing == n_rows:
            raise UserError(MSG_NO_TARGET.format(col=col, n=n_rows), location=self.policy.where("data", "target"))
        counts: dict[Any, int] = {}
        predicted: dict[str, dict[Any, None]] = {c: {} for c in preds}
        for p in parts:
            for label, n in p.counts:
                counts[label] = counts.get(label, 0) + n
            for c, values in p.predicted.items():
                predicted[c].update(dict.fromkeys(values))
        labels = None
        if task != "regression":
            index = as_labels(pd.Index(list(counts)).to_numpy(), task)
            labels = pd.Series(list(counts.values()), index=pd.Index(index), dtype=np.int64)
        missing = tuple(i for p in parts for i in p.missing_index)[:MAX_MISSING_KEPT]
        return TargetFacts(n_rows, n_missing, missing, self.schema[col].dtype, labels,
                           {c: tuple(v) for c, v in predicted.items()})

    @property
    def n_eval_rows(self) -> int:
        """Every row of the eval data."""
        return sum(p.rows for p in self.eval_partitions)

    @property
    def n_rows(self) -> int:
        """The number of scored rows (those with a target), as on the embedded context."""
        return self.n_eval_rows if self.policy.data.target is None else self.target_facts.n_scored

    @cached_property
    def data_info(self) -> dict[str, dict[str, Any]]:
        spec = self.policy.data
        out: dict[str, dict[str, Any]] = {"eval": {"uri": str(spec.eval), "sha256": data_sha256(spec.eval),
                                                   "rows": self.n_eval_rows}}
        if spec.cluster is not None:
            out["eval"].update(cluster=spec.cluster, clusters=self.n_clusters)
        if spec.reference is not None:
            out["reference"] = {"uri": str(spec.reference), "sha256": data_sha256(spec.reference),
                                "rows": sum(p.rows for p in self.reference_partitions)}
        return out

    @cached_property
    def n_clusters(self) -> int:
        """The scored rows' clusters (``data.cluster``) as the embedded run counts them: each distinct
        value, and each row without one alone."""
        found = self.engine.map(cluster_keys, self.eval_partitions, column=self.policy.data.cluster,
                                target=self.policy.data.target)
        keys = np.unique(np.concatenate([np.empty(0, dtype=np.uint64), *(k for k, _ in found)]))
        return int(keys.size) + sum(n for _, n in found)

    def engine_info(self) -> dict[str, Any]:
        """``run.engine`` of report.json: kind, scheduler address, workers, eval partitions."""
        return {"kind": self.engine.kind, "address": self.engine.address, "workers": self.engine.workers(),
                "partitions": len(self.eval_partitions)}

    def close(self) -> None:
        self.engine.close()


def cluster_keys(part: Partition, column: str, target: str | None) -> tuple[np.ndarray, int]:
    """Return the distinct cluster keys (:func:`gates.clusters.cluster_index`) of a partition's scored
    rows that have a cluster value, and how many scored rows have none (runs on a worker).

    Only the target and cluster columns are read; a value's key is the same in every partition, so
    the client's union of the keys counts each cluster once.
    """
    frame = part.read(list(dict.fromkeys([*([target] if target is not None else []), column])))
    if target is not None:
        frame = frame[~target_missing(frame[target])]
    lone = frame[column].isna().to_numpy()
    return np.unique(cluster_index(frame, column).keys[~lone]), int(lone.sum())


class BatchedContext(PartitionedContext):
    """The embedded engine on Parquet: the gates run from partials, one partition in memory at a time.

    Every gate of the policy has a partitioned form here (:func:`gates.engine.runner.distributable`),
    so a run never reads the rows whole. Code that asks for them still gets them (a pytest user
    test's ``frame``, ``y_true`` or ``predictions``): they are then read whole, on first use only,
    as the whole-frame context reads them.
    """

    frame = EvalContext.frame  # type: ignore[assignment]
    reference = EvalContext.reference  # type: ignore[assignment]
    y_true = EvalContext.y_true  # type: ignore[assignment]

    def __init__(self, policy: Policy, resolve_baseline: BaselineResolver | None = None, *,
                 require_baseline: bool = False, partition_rows: int = PARTITION_ROWS) -> None:
        from gates.engine.local import LocalEngine

        super().__init__(policy, resolve_baseline, require_baseline=require_baseline, engine=LocalEngine(),
                         partition_rows=partition_rows)

    def feature_sample(self) -> pd.DataFrame:
        """The candidate's feature columns of the first partition's scored rows (column names and
        types for a registry's signature), without reading the whole data."""
        from gates.engine.worker import read_scored

        frame = read_scored(self.eval_partitions[0], self.policy)
        sample = EvalContext(self.policy, self._resolve, require_baseline=self.require_baseline)
        sample.__dict__.update(frame=frame, candidate_model=self.candidate_model)
        return frame[sample.features_of("candidate")]
