"""Gates on a partitioned context: each gate's partial-statistics form, or a not_distributable error.

A gate runs on the dask engine only through a form that measures partitions where they live and
merges their statistics (the modules of :data:`PARTITIONED`). A gate without
one yields a single ``error`` check ``<gate>.not_distributable``, blocking when the gate has a
blocking check: the verdict then fails rather than pass on checks that were never computed, and
the rows are never collected on the client to compute them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any

from gates.checks import MSG_GATE_NOT_DISTRIBUTABLE, Plan, gate_registry, not_distributable
from gates.results import CheckResult

if TYPE_CHECKING:
    from gates.engine.context import PartitionedContext
    from gates.policy import Policy

#: gates with a partitioned form: gate name -> module with ``run(ctx, plan)``
PARTITIONED: Mapping[str, str] = {"data": "gates.checks.data.partitioned",
                                  "regression": "gates.checks.regression_partitioned",
                                  "fairness": "gates.checks.fairness.partitioned",
                                  "robustness": "gates.checks.robustness.partitioned"}


def distributable(name: str, plan: Plan, policy: Policy) -> str | None:
    """Return why gate ``name`` cannot run from partition partials under ``policy``, or None when it can.

    The gate's partitioned module decides, through its ``distributable(plan, policy)`` hook (the
    same function its ``run`` reports from); a gate without a partitioned form, or whose module has
    no hook, cannot.
    """
    module = PARTITIONED.get(name)
    hook = None if module is None else getattr(import_module(module), "distributable", None)
    if hook is None:
        return MSG_GATE_NOT_DISTRIBUTABLE.format(gate=name)
    reason: str | None = hook(plan, policy)
    return reason


def policy_distributable(policy: Policy, only: Sequence[str] | None = None) -> str | None:
    """Return why some gate a run of ``policy`` runs (all configured, or those in ``only``) cannot
    run from partials, or None when every one can."""
    for name in gate_registry():
        if name in policy.gates and (only is None or name in only):
            reason = distributable(name, policy.plan(name), policy)
            if reason is not None:
                return f"{name}: {reason}"
    return None


def run_gate(ctx: PartitionedContext, name: str, plan: Plan) -> list[CheckResult]:
    """Return ``name``'s checks computed from partition partials, or its not_distributable error."""
    module = PARTITIONED.get(name)
    if module is not None:
        return list(import_module(module).run(ctx, plan))
    return [not_distributable(name, plan)]


def score_checks(ctx: PartitionedContext) -> list[CheckResult]:
    """The always-on ``data.scores.not_null[COLUMN]`` checks of a per_example policy, from partition counts."""
    from gates.checks.data.scores import score_result

    if not ctx.is_per_example:
        return []
    named = [(role, name, col) for role in ("candidate", "baseline")
             for name, col in getattr(ctx.policy.model, role).named_scores]
    columns = list(dict.fromkeys(col for _, _, col in named))
    found = ctx.engine.map(score_partition, ctx.eval_partitions, columns=columns)
    out = []
    for role, name, col in named:
        k = sum(f[col][0] for f in found)
        n = sum(f[col][1] for f in found)
        examples = [e for f in found for e in f[col][2]]
        out.append(score_result(role, name, col, k, n, examples))
    return out


def score_partition(part: Any, columns: list[str]) -> dict[str, tuple[int, int, list[dict[str, Any]]]]:
    """Return, per score column, a partition's rows without a score, its rows and first examples (runs on a worker)."""
    from gates.checks.data._common import DEFAULT_MAX_FAILURE_CASES
    from gates.checks.data.scores import missing_scores

    frame = part.read(columns)
    return {col: missing_scores(frame[col], DEFAULT_MAX_FAILURE_CASES) for col in columns}
