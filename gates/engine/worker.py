"""Predictions on a worker: the client's EvalContext logic, run on one partition's rows.

A worker builds an :class:`~gates.context.EvalContext` whose frame is its partition and whose
models are the shipped ones (checked by sha256, loaded under the policy's trust rules), with the
class list and negative label the client fixed from the whole target, so labels, scores and
thresholds are exactly those of an embedded run on the same rows.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gates.context import EvalContext, Predictions, ResolvedModel
from gates.engine.shipping import ShippedModel, load_shipped, ship
from gates.models import Trust
from gates.policy import Policy

if TYPE_CHECKING:
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
    engine's handles to the bytes; raises :class:`~gates.engine.shipping.NotShippable` for a
    model of several files.
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
    if ctx.policy.model.task == "regression":  # no labels: the target's distinct values are not needed
        plan = PredictPlan(ctx.policy, (), None, ctx.resolved_baseline, models)
    else:
        plan = PredictPlan(ctx.policy, ctx.classes, ctx.negative_label, ctx.resolved_baseline, models)
    return plan, handles


def predict_partition(plan: PredictPlan, frame: pd.DataFrame, candidate_bytes: bytes | None = None,
                      baseline_bytes: bytes | None = None) -> tuple[np.ndarray, Predictions, Predictions | None]:
    """Return the partition's target and both models' predictions (runs on a worker)."""
    ctx = EvalContext(plan.policy)
    ctx.__dict__.update(frame=frame, classes=plan.classes, negative_label=plan.negative_label,
                        resolved_baseline=plan.resolved_baseline)
    for role, data in (("candidate", candidate_bytes), ("baseline", baseline_bytes)):
        shipped = plan.models.get(role)
        ctx.__dict__[f"{role}_model"] = None if shipped is None or data is None else load_shipped(shipped, data)
    candidate = ctx.predictions("candidate")
    assert candidate is not None
    return frame[plan.policy.data.target].to_numpy(), candidate, ctx.predictions("baseline")


def target_values(part: Any, column: str) -> list[Any]:
    """Return the distinct values of a partition's target, in first-seen order (runs on a worker)."""
    return pd.unique(part.read([column])[column].to_numpy()).tolist()
