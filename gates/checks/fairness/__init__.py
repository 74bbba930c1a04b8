"""The fairness gate: per-group metrics, disparities between groups, and intervals on them.

Each configured metric is a disparity (fairlearn's ``demographic_parity_difference``,
``equalized_odds_ratio``, ..., or ``<group metric>_difference`` / ``_ratio``) measured over each
grouping (a sensitive column, or an intersection written as a list). A threshold kind gives one
check: ``min``/``max`` bound the candidate's disparity, ``no_worse_than_baseline`` compares it
with the baseline's on the same rows, paired. Every disparity gets a paired bootstrap interval
(:mod:`gates.groups`), decided like a regression check by :mod:`gates.decisions`, with multiple
testing over the gate's interval checks.

Small groups are honest: a group below ``min_group_size`` (or a rate whose denominator, such as
the group's positives for ``tpr``, is below ``min_positives``) is listed in ``details.groups``
with the reason and left out of the disparity; an undefined rate is ``null``, never 0.

A grouping column that is not in the eval data is a config error (:class:`~gates.errors.UserError`
pointing at the ``groups`` entry, or at ``data.sensitive`` for the default groupings), like a
missing ``data.target``: no check can be about a grouping that does not exist.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gates.checks import GateKind, NamedColumn, Spec, listed_columns
from gates.checks.fairness._config import (
    DEFAULT_MARGIN,
    DEFAULTS,
    GATE_NAME,
    MSG_AGG,
    MSG_AVERAGE_PER_CLASS,
    MSG_AVERAGE_TASK,
    MSG_MACRO_SELECTION,
    MSG_MARGIN_ALONE,
    MSG_NO_GROUPS,
    MSG_NO_THRESHOLD,
    MSG_UNKNOWN_METRIC,
    NAMED,
    FairnessPlan,
    MetricSpec,
    Settings,
    as_plan,
    declares_blocking,
    groupings,
    make_plan,
    scope_of,
    validate,
)
from gates.checks.fairness._decide import (
    MSG_BOUND_FAIL,
    MSG_BOUND_PASS,
    MSG_NO_BASELINE,
    MSG_NO_BASELINE_REQUIRED,
    Pending,
    check_id,
    decide,
    pending_checks,
)
from gates.checks.fairness._measure import (
    MSG_TOO_FEW_GROUPS,
    MSG_WHY_FEW,
    REASON_SIZE,
    REASON_SUPPORT,
    REASON_SUPPORT_MACRO,
    REASON_UNDEFINED,
    REASON_UNDEFINED_MACRO,
    measure,
    views,
)
from gates.checks.fairness._stats import PER_EXAMPLE, EvalData, GroupStats, eval_data, needs_scores
from gates.clusters import ClusterIndex
from gates.errors import UserError
from gates.groups import group_index
from gates.identity import Reason
from gates.stats.weights import eval_row_keys
from gates.metrics import REGRESSION
from gates.results import CheckResult, Outcome

MSG_MISSING_COLUMN = "grouping column '{col}' is not in the eval data{hint}"
MSG_NO_SCORES = "{metric} needs scores, which the {role} does not give (a scores column or predict_proba)"


#: builds one grouping's statistics: (columns, n_boot, the grouping's rng factory) -> GroupStats
StatsFactory = Callable[[tuple[str, ...], int, Callable[[str], np.random.Generator]], GroupStats]


def assess(frame: pd.DataFrame, data: EvalData, section: FairnessPlan | Spec,
           rng_for: Callable[..., np.random.Generator], *,
           sensitive: Sequence[str] = (), require_baseline: bool = False, scores: Sequence[str] = (),
           clusters: ClusterIndex | None = None, keys: np.ndarray | None = None,
           stats_of: StatsFactory | None = None) -> list[CheckResult]:
    """Return the fairness gate's results for ``data`` grouped by columns of ``frame``.

    ``rng_for(*names)`` returns a seeded generator per name (``EvalContext.rng``); each grouping
    and statistic draws from its own, so results do not depend on which other checks exist.
    ``scores`` are a per_example policy's score names; with ``clusters`` whole clusters are resampled
    and ``min_group_size`` counts clusters. ``keys`` are the rows' keys for the Poisson weights
    (:func:`gates.stats.weights.eval_row_keys`; default their positions). Replicates: enough for the
    family's most adjusted level (:meth:`gates.stats.IntervalSettings.replicates`). ``stats_of``
    replaces the statistics computed from ``frame``'s rows (a partitioned run's merged partials).
    ``section`` is the gate's plan (a section mapping is planned here).
    """
    plan = as_plan(section, data.task, scores)
    found = missing_grouping(frame, plan, sensitive)
    if found is not None:
        raise UserError(f"{_dotted(found[0])}: {found[1]}")
    settings = plan.settings
    metrics = list(plan.metrics)
    grouped = groupings(plan, sensitive)
    settings = dataclasses.replace(settings, n_boot=settings.intervals.replicates(
        family_size(settings, metrics, data, len(grouped), data.baseline is not None)))
    pending: list[Pending] = []
    factorized: dict[str, Any] = {}
    unscored = {m.name: text for m in metrics if (text := _missing_scores(m, data))}
    for columns in grouped:
        scope = scope_of(columns)
        streams = functools.partial(rng_for, GATE_NAME, scope)
        if stats_of is not None:
            stats = stats_of(tuple(columns), settings.n_boot, streams)
        else:
            stats = GroupStats(data, group_index(frame, columns, factorized), settings.n_boot, streams, keys,
                               clusters)
        for metric in metrics:
            if metric.name in unscored:
                pending += _error_checks([metric], scope, unscored[metric.name], Reason.MISSING_SCORES, settings)
                continue
            for view, label in views(data, metric):
                measured = measure(stats, metric, view, label, settings)
                pending += pending_checks(measured, settings, has_baseline=data.baseline is not None,
                                          require_baseline=require_baseline)
    return decide(pending, settings)


def family_size(settings: Settings, metrics: Sequence[MetricSpec], data: EvalData, n_groupings: int,
                has_baseline: bool) -> int:
    """Return how many blocking ``no_worse_than_baseline`` checks the gate can have (replicates are drawn for them)."""
    if not has_baseline:
        return 0
    per_grouping = sum(len(views(data, m)) for m in metrics
                       if m.no_worse and (m.severity or settings.severity) == "block")
    return per_grouping * n_groupings


def missing_grouping(frame: pd.DataFrame, section: FairnessPlan | Spec, sensitive: Sequence[str] = ()
                     ) -> tuple[tuple[str | int, ...], str] | None:
    """Return (policy keypath, message) of the first grouping column not in ``frame``, else None.

    The keypath is the ``gates.fairness.groups`` entry naming it, or ``data.sensitive`` when the
    groupings default to the sensitive columns.
    """
    written = section.groups if isinstance(section, FairnessPlan) else section.get("groups")
    for i, columns in enumerate(groupings(section, sensitive)):
        for col in columns:
            if col not in frame.columns:
                keypath = ("gates", GATE_NAME, "groups", i) if written else ("data", "sensitive")
                return keypath, _missing_column(col, frame)
    return None


def _dotted(keypath: Sequence[str | int]) -> str:
    """Return ``gates.fairness.groups[0]`` for ``("gates", "fairness", "groups", 0)``."""
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keypath).lstrip(".")


def _missing_column(col: str, frame: pd.DataFrame) -> str:
    close = difflib.get_close_matches(col, [str(c) for c in frame.columns], n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return MSG_MISSING_COLUMN.format(col=col, hint=hint)


def _missing_scores(metric: MetricSpec, data: EvalData) -> str | None:
    """Return why a metric built on scores (ROC AUC, log loss, ...) cannot be computed, if it cannot."""
    if not any(needs_scores(r, data.task) for r in metric.rates):
        return None
    for role in ("candidate", "baseline"):
        pred = getattr(data, role)
        if pred is not None and pred.scores is None:
            return MSG_NO_SCORES.format(metric=metric.name, role=role)
    return None


def _error_checks(metrics: Sequence[MetricSpec], scope: str, text: str, reason: str,
                  settings: Settings) -> list[Pending]:
    """Return one ``error`` check per threshold kind of ``metrics`` over ``scope``."""
    return [Pending(check_id(m.name, kind, scope), m, kind, None, (m.severity or settings.severity) == "block",
                    preset=Outcome.ERROR, message=text, reason=reason)
            for m in metrics for kind in m.kinds]


def run(ctx: Any, section: FairnessPlan | Spec) -> list[CheckResult]:
    """Run the fairness gate on an :class:`~gates.context.EvalContext`, from its plan (a mapping is planned here).

    Raises :class:`~gates.errors.UserError` (exit 2) when a grouping column is not in the eval data.
    """
    policy = ctx.policy
    scores = [n for n, _ in policy.model.candidate.named_scores]
    plan = as_plan(section, policy.model.task, scores)
    found = missing_grouping(ctx.frame, plan, policy.data.sensitive)
    if found is not None:
        keypath, text = found
        raise UserError(f"{_dotted(keypath)}: {text}", location=policy.where(*keypath))
    candidate = ctx.predictions("candidate")
    baseline = ctx.predictions("baseline")
    task = policy.model.task
    data = eval_data(task, ctx.y_true, candidate, baseline, policy.model.positive_label,
                     None if task in (REGRESSION, PER_EXAMPLE) else ctx.classes)
    return assess(ctx.frame, data, plan, ctx.rng, sensitive=policy.data.sensitive,
                  require_baseline=bool(getattr(ctx, "require_baseline", False)),
                  scores=scores, clusters=getattr(ctx, "clusters", None),
                  keys=eval_row_keys(ctx))


def columns(spec: Spec) -> list[NamedColumn]:
    """Return the grouping columns the ``groups`` list names (``data.sensitive`` is checked on its own)."""
    return listed_columns(spec.get("groups"), ("groups",))


GATE = GateKind(name=GATE_NAME, schema_file="gate_fairness.schema.json", validate=validate, columns=columns,
                declares_blocking=declares_blocking, run=run, plan=make_plan)


__all__ = [
    "DEFAULTS", "DEFAULT_MARGIN", "GATE", "GATE_NAME", "MSG_AGG", "MSG_AVERAGE_PER_CLASS", "MSG_AVERAGE_TASK", "MSG_BOUND_FAIL",
    "MSG_BOUND_PASS",
    "MSG_MACRO_SELECTION", "MSG_MARGIN_ALONE", "MSG_MISSING_COLUMN", "MSG_NO_BASELINE", "MSG_NO_BASELINE_REQUIRED",
    "MSG_NO_GROUPS", "MSG_NO_SCORES", "MSG_NO_THRESHOLD", "MSG_TOO_FEW_GROUPS", "MSG_UNKNOWN_METRIC", "MSG_WHY_FEW", "NAMED",
    "REASON_SIZE", "REASON_SUPPORT", "REASON_SUPPORT_MACRO", "REASON_UNDEFINED", "REASON_UNDEFINED_MACRO",
    "EvalData", "FairnessPlan", "MetricSpec", "Settings", "as_plan", "assess", "declares_blocking", "eval_data", "make_plan", "missing_grouping", "run",
    "validate",
]
