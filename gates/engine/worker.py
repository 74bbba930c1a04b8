"""Predictions on a worker: the client's EvalContext logic, run on one partition's rows.

A worker builds an :class:`~gates.context.EvalContext` whose frame is its partition and whose
models are the shipped ones (checked by sha256, loaded under the policy's trust rules), with the
class list and negative label the client fixed from the whole target, so labels, scores and
thresholds are exactly those of an embedded run on the same rows.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.context import EvalContext, Predictions, ResolvedModel, as_labels, target_missing
from gates.engine.shipping import ModelHandle, ShippedModel, load_shipped, ship
from gates.models import Trust
from gates.policy import Policy

if TYPE_CHECKING:
    from gates.datasets import Partition
    from gates.engine.context import PartitionedContext

ROLES = ("candidate", "baseline")


@dataclass(frozen=True)
class PredictPlan:
    """What every worker needs to predict its partitions like the client would."""

    policy: Policy
    classes: tuple[Any, ...]
    negative_label: Any
    resolved_baseline: ResolvedModel | None
    models: Mapping[str, ShippedModel] = field(default_factory=dict)


def ship_models(ctx: PartitionedContext) -> tuple[PredictPlan, dict[str, Any]]:
    """Load each model file on the client (trust rules, identity) and send its bytes to the workers once.

    Returns the plan and the task arguments (``candidate_bytes``, ``baseline_bytes``) holding the
    engine's handles to the bytes (a model of several files as its deterministic archive), or with
    the local engine to the loaded models themselves.
    """
    spec = ctx.policy.model
    trust = Trust(trust_pickle=spec.trust_pickle, trusted_types=spec.trusted_types)
    models: dict[str, ShippedModel] = {}
    handles: dict[str, Any] = {}
    for role in ROLES:
        loaded = ctx.model(role)  # type: ignore[arg-type]
        if loaded is None:
            continue
        src = getattr(spec, role)
        outputs = src.outputs if src.kind == "file" else None
        models[role], handles[f"{role}_bytes"] = ship(ctx.engine, role, loaded, trust, outputs)
    if ctx.policy.model.task in ("regression", "per_example"):  # no labels: the target's distinct values are not needed
        plan = PredictPlan(ctx.policy, (), None, ctx.resolved_baseline, models)
    else:
        plan = PredictPlan(ctx.policy, ctx.classes, ctx.negative_label, ctx.resolved_baseline, models)
    return plan, handles


def worker_context(plan: PredictPlan, frame: pd.DataFrame, candidate_bytes: ModelHandle | None,
                   baseline_bytes: ModelHandle | None) -> EvalContext:
    """Return an EvalContext on one partition's rows with the client's facts and the shipped models
    (runs on a worker: the classes, negative label and baseline are the client's, never re-derived)."""
    ctx = EvalContext(plan.policy)
    ctx.__dict__.update(frame=frame, classes=plan.classes, negative_label=plan.negative_label,
                        resolved_baseline=plan.resolved_baseline)
    for role, data in (("candidate", candidate_bytes), ("baseline", baseline_bytes)):
        shipped = plan.models.get(role)
        ctx.__dict__[f"{role}_model"] = None if shipped is None or data is None else load_shipped(shipped, data)
    return ctx


def predict_partition(plan: PredictPlan, frame: pd.DataFrame, candidate_bytes: ModelHandle | None = None,
                      baseline_bytes: ModelHandle | None = None) -> tuple[np.ndarray, Predictions, Predictions | None]:
    """Return the partition's target and both models' predictions (runs on a worker)."""
    ctx = worker_context(plan, frame, candidate_bytes, baseline_bytes)
    candidate = ctx.predictions("candidate")
    assert candidate is not None
    target = plan.policy.data.target  # per_example has none; its metrics read only scores (zeros stand in)
    y = np.zeros(len(frame)) if target is None else as_labels(frame[target].to_numpy(), plan.policy.model.task)
    return y, candidate, ctx.predictions("baseline")


def read_scored(part: Partition, policy: Policy) -> pd.DataFrame:
    """Return a partition's rows that have a target, as the embedded run scores them (runs on a worker)."""
    frame = part.read()
    if policy.data.target is None:
        return frame
    missing = target_missing(frame[policy.data.target])
    return frame[~missing] if missing.any() else frame


def target_values(part: Partition, column: str) -> list[Any]:
    """Return the distinct values of a partition's target, rows without one left out (runs on a worker)."""
    values = part.read([column])[column]
    return pd.unique(values[~target_missing(values)].to_numpy()).tolist()


@dataclass(frozen=True)
class TargetPartial:
    """One partition's target: its rows, those without a target (count, first indices), the others' labels.

    ``counts`` pairs each label of the scored rows with its count (empty when labels are not
    asked for); ``predicted`` holds each prediction column's distinct values on those rows.
    """

    rows: int
    n_missing: int
    missing_index: tuple[Any, ...]
    counts: tuple[tuple[Any, int], ...]
    predicted: Mapping[str, tuple[Any, ...]]


def target_partial(part: Partition, column: str, predictions: Sequence[str], count_labels: bool,
                   keep: int) -> TargetPartial:
    """Measure one partition for the target's checks (runs on a worker)."""
    frame = part.read(list(dict.fromkeys([column, *predictions])))
    missing = target_missing(frame[column])
    scored = frame[~missing]
    counts = scored[column].value_counts(sort=False) if count_labels else pd.Series(dtype=object)
    return TargetPartial(rows=len(frame), n_missing=int(missing.sum()),
                         missing_index=tuple(frame.index[missing][:keep].tolist()),
                         counts=tuple((label, int(n)) for label, n in counts.items()),
                         predicted={c: tuple(pd.unique(scored[c].dropna()).tolist()) for c in predictions})
