"""Per-row influence values of paired metric differences on the symmetrised (null) population.

``calibrate`` needs the sampling distribution of ``d = metric(candidate) - metric(baseline)`` when
the two models are equally good. It builds that null from the eval rows themselves: every row
appears twice, once as measured and once with the two models' outputs swapped, so the models are
exchangeable (equal true performance, same within-row correlation) and ``d`` is exactly 0 on the
population. A dataset of ``n`` rows drawn from it has ``d ~ (1/n) sum(phi_i)`` to first order,
where ``phi`` is the influence function of ``d`` (von Mises expansion; Hampel 1974).

The functions here return ``phi`` for the *original* half of the doubled population; the swapped
twin of row ``i`` has ``-phi_i`` (swapping the models negates the difference), so the doubled
population's values are ``concat(phi, -phi)`` and they sum to 0.

* ROC AUC: DeLong's structural components (DeLong et al. 1988) are exactly the influence
  function of the Mann-Whitney AUC; one-vs-rest averages combine them per class.
* average precision: the gradient of the row-weighted step-wise AP (sklearn's definition) with
  respect to the row weights, by reverse accumulation over the thresholds.
* score means (log loss, brier, mae, rmse, r2): the gradient of the metric's ``from_means`` at the
  pooled means, dotted with each row's statistics.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gates.context import Predictions
from gates.estimates import ovr_delong
from gates.intervals import delong_influence
from gates.metrics import Metric, RankedScores
from gates.stats.partials import numeric_gradient


def take(pred: Predictions, rows: np.ndarray) -> Predictions:
    """Return ``pred`` restricted to ``rows``."""
    scores = None if pred.scores is None else np.asarray(pred.scores)[rows]
    return Predictions(np.asarray(pred.labels)[rows], scores, pred.classes)


def difference_influence(metric: Metric, y: np.ndarray, candidate: Predictions, baseline: Predictions, *,
                         positive_label: Any, classes: tuple[Any, ...] | None) -> np.ndarray:
    """Return the null influence values ``phi`` (one per row) of ``metric(candidate) - metric(baseline)``.

    Defined for the ``auc``, ``ranking`` and ``row_mean`` families; confusion metrics are simulated
    exactly from cell counts instead. NaN values mean the metric is undefined on these rows.
    """
    y = np.asarray(y)
    if metric.family == "row_mean":
        return _row_mean_influence(metric, y, candidate, baseline, positive_label, classes)
    sc = np.asarray(candidate.scores, dtype=np.float64)
    sb = np.asarray(baseline.scores, dtype=np.float64)
    n = len(y)
    y2, s1, s2 = np.concatenate([y, y]), np.concatenate([sc, sb]), np.concatenate([sb, sc])
    if metric.family == "auc":
        cls = tuple(candidate.classes or classes or ())
        psi = _auc_influence(y2, s1, s2, positive_label, cls, metric.average == "weighted")
    elif metric.family == "ranking":
        y_pos = y2 == positive_label
        psi = ap_weight_gradient(y_pos, s1) - ap_weight_gradient(y_pos, s2)
    else:
        raise ValueError(f"no influence function for the {metric.family} family")
    return (2 * n) * psi[:n]


def _auc_influence(y2: np.ndarray, s1: np.ndarray, s2: np.ndarray, positive_label: Any,
                   classes: tuple[Any, ...], weighted: bool) -> np.ndarray:
    """Return the population-scaled influence of ``AUC(s1) - AUC(s2)`` on the doubled rows."""
    if s1.ndim == 2:
        _, infl = ovr_delong(y2, [s1, s2], classes, weighted)
        return np.asarray(infl[0] - infl[1])
    _, infl = delong_influence(y2 == positive_label, np.vstack([s1, s2]))
    return np.asarray(infl[0] - infl[1])


def ap_weight_gradient(y_pos: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Return ``d AP / d w_i`` at unit row weights, for every row (NaN without positives).

    With thresholds ``t`` (tie groups holding a positive, best score first), ``TP_t`` and ``seen_t``
    the weights of positives and of all rows up to ``t``, ``AP = sum_t dTP_t prec_t / TP``. Row ``i``
    enters every threshold from the first one ``t(i)`` at or after its sorted position, so
    ``dAP/dw_i = (pos_i (prec_t(i) - AP + A_t(i)) - B_t(i)) / TP`` with the suffix sums
    ``A_t = sum_{u>=t} dTP_u / seen_u`` and ``B_t = sum_{u>=t} dTP_u prec_u / seen_u``.
    """
    ranked = RankedScores.of(y_pos, scores)
    n = len(ranked.order)
    if len(ranked.k) == 0:
        return np.full(n, np.nan)
    seen = ranked.ends + 1.0
    tp = ranked.k.astype(np.float64)
    step = np.diff(tp, prepend=0.0)
    prec = tp / seen
    total = tp[-1]
    ap = float(step @ prec) / total
    a_suffix = np.cumsum((step / seen)[::-1])[::-1]
    b_suffix = np.cumsum((step * prec / seen)[::-1])[::-1]
    t = np.searchsorted(ranked.ends, np.arange(n), side="left")
    inside = t < len(ranked.ends)
    t = np.minimum(t, len(ranked.ends) - 1)
    pos = ranked.y_sorted.astype(np.float64)
    grad_sorted = np.where(inside, (pos * (prec[t] - ap + a_suffix[t]) - b_suffix[t]) / total, 0.0)
    out = np.empty(n)
    out[ranked.order] = grad_sorted
    return out


def _row_mean_influence(metric: Metric, y: np.ndarray, cand: Predictions, base: Predictions, positive_label: Any,
                        classes: tuple[Any, ...] | None) -> np.ndarray:
    """Return ``grad F(pooled means) . (stats_candidate_i - stats_baseline_i)`` per row.

    On the doubled population both models have the pooled means, so the gradient is shared and
    the statistics that do not depend on the model (r2's centred target) cancel.
    """
    assert metric.row_stats is not None and metric.from_means is not None
    sa = metric.row_stats(y, cand, positive_label, classes)
    sb = metric.row_stats(y, base, positive_label, classes)
    pooled = (sa.mean(axis=0) + sb.mean(axis=0)) / 2
    grad = numeric_gradient(metric.from_means, pooled)
    return np.asarray((sa - sb) @ grad, dtype=np.float64)
