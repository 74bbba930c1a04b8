"""Gates on a partitioned context: each gate's partial-statistics form, or a not_distributable error.

A gate runs on the dask engine only through a form that measures partitions where they live and
merges their statistics (:mod:`gates.checks.data.partitioned` for the data gate). A gate without
one yields a single ``error`` check ``<gate>.not_distributable``, blocking when the gate has a
blocking check: the verdict then fails rather than pass on checks that were never computed, and
no row is ever collected on the client to compute them.
"""
from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from gates.checks import MSG_GATE_NOT_DISTRIBUTABLE, REASON_NOT_DISTRIBUTABLE, not_distributable
from gates.decisions import to_status
from gates.results import CheckResult, Outcome

if TYPE_CHECKING:
    from gates.engine.context import PartitionedContext

#: gates with a partitioned form: gate name -> module with ``run(ctx, spec)``
PARTITIONED: Mapping[str, str] = {"data": "gates.checks.data.partitioned",
                                  "regression": "gates.checks.regression_partitioned",
                                  "fairness": "gates.checks.fairness.partitioned"}


def run_gate(ctx: PartitionedContext, name: str, spec: Mapping[str, Any]) -> list[CheckResult]:
    """Return ``name``'s checks computed from partition partials, or its not_distributable error."""
    module = PARTITIONED.get(name)
    if module is not None:
        return list(import_module(module).run(ctx, spec))
    return [not_distributable(name, spec)]


def score_checks(ctx: PartitionedContext) -> list[CheckResult]:
    """The always-on ``data.scores.not_null[COLUMN]`` checks of a per_example policy, as not_distributable."""
    from gates.checks.data.scores import CHECK_PREFIX

    if not ctx.is_per_example:
        return []
    return [CheckResult(id=f"{CHECK_PREFIX}[{col}]", gate="data", status=to_status(Outcome.ERROR, True),
                        blocking=True, reason=REASON_NOT_DISTRIBUTABLE,
                        message=MSG_GATE_NOT_DISTRIBUTABLE.format(gate="score-column"))
            for role in ("candidate", "baseline") for _, col in getattr(ctx.policy.model, role).named_scores]
