"""Paired resampling and analytic intervals shared by every gate.

A gate says *what* to measure; this module says *how sure* we are. Every interval check produces
an :class:`Estimate` (a point value plus either bootstrap replicates or a standard error), from
which an interval at any confidence level and a one-sided p-value can be read. That lets
:mod:`gates.decisions` adjust levels for multiple testing after all estimates are known.

Resampling methods:

* ``multinomial``: confusion-matrix metrics are functions of joint cell counts over (group or
  slice, y, candidate label, baseline label). One multinomial draw of the cell counts per
  replicate is exactly the distribution of a row bootstrap of those counts (Efron & Tibshirani,
  1993, ch. 6), in milliseconds for 1000 replicates; the one sampler is
  :meth:`gates.stats.partials.CellCounts.replicates`.
* ``row bootstrap``: score-mean metrics (log loss, brier, mae, rmse) resample per-row values with
  vectorised index matrices in chunks, giving the sums each metric needs per replicate.
* ``delong``: the paired DeLong et al. (1988) variance of a difference of ROC AUCs, using the
  O(n log n) midrank formulation of Sun & Xu (2014).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

#: how an interval is read from bootstrap replicates (:attr:`Estimate.reading`)
PERCENTILE = "percentile"
#: the hull of the percentile and basic (reverse percentile) intervals, for statistics whose
#: replicates sit to one side of the point (a max over groups of noisy rates): see :func:`hull_interval`
HULL = "hull"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with the sampling distribution needed to build intervals.

    Exactly one of ``replicates`` (bootstrap values, shape ``(B,)``) and ``se`` (a normal
    approximation's standard error) is set, unless the estimate is undefined (``value`` NaN).
    ``bounds`` is the range the quantity can take (``(0, 1)`` for ROC AUC, ``(-1, 1)`` for a
    difference of two AUCs): intervals are clipped to it.
    """

    value: float
    method: str
    replicates: np.ndarray | None = None
    se: float | None = None
    bounds: tuple[float, float] | None = None
    reading: str = PERCENTILE

    def interval(self, confidence: float) -> tuple[float, float]:
        """Return the two-sided ``confidence`` interval (percentile or hull, as ``reading`` says, or
        normal), clipped to ``bounds``."""
        alpha = 1.0 - confidence
        if self.replicates is not None:
            finite = self.replicates[np.isfinite(self.replicates)]
            if finite.size == 0:
                return (float("nan"), float("nan"))
            if self.reading == HULL:
                return self._clip(*hull_interval(self.value, finite, confidence))
            lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
            return self._clip(float(lo), float(hi))
        if self.se is None or not np.isfinite(self.value):
            return (float("nan"), float("nan"))
        z = NormalDist().inv_cdf(1 - alpha / 2)
        return self._clip(self.value - z * self.se, self.value + z * self.se)

    def _clip(self, lo: float, hi: float) -> tuple[float, float]:
        if self.bounds is None:
            return (lo, hi)
        a, b = self.bounds
        return (min(max(lo, a), b), min(max(hi, a), b))

    def within(self, bounds: tuple[float, float] | None) -> Estimate:
        """Return this estimate with intervals clipped to ``bounds``."""
        return Estimate(self.value, self.method, self.replicates, self.se, bounds, self.reading)

    def p_below(self, bound: float) -> float:
        """Return the one-sided p-value of H0 "true value < bound" (small p: value >= bound shown).

        It is the level at which the interval's lower end reaches ``bound``, for either reading.
        """
        if self.replicates is not None:
            finite = self.replicates[np.isfinite(self.replicates)]
            if finite.size == 0:
                return float("nan")
            percentile = float((np.count_nonzero(finite < bound) + 1) / (finite.size + 1))
            if self.reading == HULL and math.isfinite(self.value):
                # the hull's lower end passes the bound only when both its percentile and basic ends do
                basic = float((np.count_nonzero(finite > 2 * self.value - bound) + 1) / (finite.size + 1))
                return 1.0 if bound > self.value else max(percentile, basic)
            return percentile
        if self.se is None or not np.isfinite(self.value):
            return float("nan")
        if self.se == 0:
            return 0.0 if self.value >= bound else 1.0
        return normal_sf((self.value - bound) / self.se)

    @property
    def is_defined(self) -> bool:
        return bool(np.isfinite(self.value))


def negate(est: Estimate) -> Estimate:
    """Return the estimate of ``-value`` (to orient lower-is-better metrics as higher-is-better)."""
    reps = None if est.replicates is None else -est.replicates
    bounds = None if est.bounds is None else (-est.bounds[1], -est.bounds[0])
    return Estimate(-est.value, est.method, reps, est.se, bounds, est.reading)


def hull_interval(point: float, replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    """Return the hull of the percentile and the basic bootstrap intervals of ``point``.

    The percentile interval ``[q_lo, q_hi]`` (the replicates' ``alpha/2`` and ``1 - alpha/2``
    quantiles) and the basic, reverse-percentile one ``[2 t - q_hi, 2 t - q_lo]`` (Davison &
    Hinkley 1997, section 5.2) agree when the replicates sit evenly about the point ``t``. They
    part when they do not: a disparity ``max |rate_g - rate_h|`` over noisy group rates overshoots
    the true disparity, and its replicates overshoot the point (``bench/bench_fairness_coverage.py``),
    so the percentile interval can lie wholly above its point and miss the truth, while the basic
    one reflects the bias back but can shrink to the point at the top. The hull takes the lower of
    the two lower ends and the higher of the two upper ends: it always holds ``t``, covers the truth
    at least as often as either, and never reads a disparity as smaller than the percentile
    interval does, so a gate deciding on it is never less cautious than on either.

    >>> reps = np.array([0.20, 0.22, 0.24, 0.26, 0.28, 0.30])
    >>> [round(v, 4) for v in hull_interval(0.21, reps, 0.5)]
    [0.145, 0.275]
    >>> [round(v, 4) for v in hull_interval(0.25, reps, 0.5)]
    [0.225, 0.275]
    """
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or not math.isfinite(point):
        return (float("nan"), float("nan"))
    alpha = 1 - confidence
    q_lo, q_hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return (float(min(q_lo, 2 * point - q_hi)), float(max(q_hi, 2 * point - q_lo)))


def difference_bounds(bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    """Return the range of ``a - b`` when ``a`` and ``b`` both lie in ``bounds``."""
    if bounds is None:
        return None
    lo, hi = bounds
    return (lo - hi, hi - lo)


def normal_sf(z: float) -> float:
    """Return P(Z > z) for a standard normal Z, accurate in the far tail (no ``1 - cdf`` cancellation)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def midranks(x: np.ndarray) -> np.ndarray:
    """Return 1-based ranks of ``x`` with ties given their average rank (``scipy.stats.rankdata``)."""
    return _midranks_by_class(np.asarray(x), np.zeros(np.shape(x), dtype=bool))[0]


def _midranks_by_class(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return midranks of ``x`` overall and within its class (``y`` true or false), from one sort.

    Tied values share the average of the ranks they span, overall and within each class.
    """
    n = len(x)
    order = np.argsort(x)  # ties are averaged, so the sort need not be stable
    xs, ys = x[order], y[order].astype(np.int64)
    distinct = np.r_[True, xs[1:] != xs[:-1]] if n else np.zeros(0, dtype=bool)
    if distinct.all():
        overall_sorted = np.arange(1.0, n + 1.0)
        within_sorted = np.where(ys == 1, np.cumsum(ys), np.cumsum(1 - ys)).astype(np.float64)
    else:
        starts = np.r_[np.flatnonzero(distinct), n]
        sizes = np.diff(starts)
        group = np.cumsum(distinct) - 1
        pos = np.add.reduceat(ys, starts[:-1])
        neg = sizes - pos
        overall_sorted = ((starts[:-1] + starts[1:] + 1) / 2.0)[group]
        within_sorted = np.where(ys == 1, (np.cumsum(pos) - pos + (pos + 1) / 2.0)[group],
                                 (np.cumsum(neg) - neg + (neg + 1) / 2.0)[group])
    overall, within = np.empty(n), np.empty(n)
    overall[order] = overall_sorted
    within[order] = within_sorted
    return overall, within


def delong_components(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (AUCs, V10, V01) for ``k`` score vectors (shape ``(k, n)``) over binary ``y``.

    V10 has shape ``(k, m)`` (one structural component per positive: the share of negatives it
    outranks), V01 ``(k, n_neg)`` (per negative: the share of positives that outrank it).
    Fast midrank formulation of Sun & Xu (2014), "Fast implementation of DeLong's algorithm";
    the overall and within-class midranks come from one sort per score vector.
    """
    y = np.asarray(y).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    m, n = int(y.sum()), int((~y).sum())
    k = scores.shape[0]
    tz_pos, tz_neg, tx, ty = np.empty((k, m)), np.empty((k, n)), np.empty((k, m)), np.empty((k, n))
    for r in range(k):
        overall, within = _midranks_by_class(scores[r], y)
        tz_pos[r], tz_neg[r], tx[r], ty[r] = overall[y], overall[~y], within[y], within[~y]
    aucs = tz_pos.sum(axis=1) / m / n - (m + 1.0) / 2.0 / n
    v10 = (tz_pos - tx) / n
    v01 = 1.0 - (tz_neg - ty) / m
    return aucs, v10, v01


def delong_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the AUCs of ``k`` score vectors (shape ``(k, n)``) over binary ``y`` and DeLong's covariance ``(k, k)``.

    ``cov = S10 / m + S01 / n`` (DeLong et al. 1988), with ``S10`` and ``S01`` the covariances of
    the structural components over the ``m`` positives and the ``n`` negatives. NaN with fewer than
    2 positives or 2 negatives.
    """
    y = np.asarray(y).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    m, n, k = int(y.sum()), int((~y).sum()), scores.shape[0]
    if m < 2 or n < 2:
        return np.full(k, np.nan), np.full((k, k), np.nan)
    aucs, v_pos, v_neg = delong_components(y, scores)
    return aucs, np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n


def delong_influence(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the AUCs of ``k`` score vectors over binary ``y`` and each row's influence ``(k, len(y))``.

    A positive's influence is its structural component minus the AUC, over the number of positives;
    a negative's the same over the number of negatives. Then ``AUC_hat - AUC ~ sum(influence)``,
    and a contrast ``c`` of the ``k`` AUCs has variance about ``sum((c @ influence) ** 2)``, which
    is how one-vs-rest averages and the null simulations combine them. NaN with fewer than 2
    positives or 2 negatives.
    """
    y = np.asarray(y).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    m, n, k = int(y.sum()), int((~y).sum()), scores.shape[0]
    if m < 2 or n < 2:
        return np.full(k, np.nan), np.full((k, len(y)), np.nan)
    aucs, v_pos, v_neg = delong_components(y, scores)
    infl = np.empty((k, len(y)))
    infl[:, y] = (v_pos - aucs[:, None]) / m
    infl[:, ~y] = (v_neg - aucs[:, None]) / n
    return aucs, infl


def delong_difference(y: np.ndarray, candidate: np.ndarray, baseline: np.ndarray) -> Estimate:
    """Return the paired DeLong estimate of ``AUC(candidate) - AUC(baseline)``."""
    return delong_paired(y, candidate, baseline)[1]


def delong_paired(y: np.ndarray, candidate: np.ndarray, baseline: np.ndarray) -> tuple[Estimate, Estimate]:
    """Return DeLong estimates of ``AUC(candidate)`` and of ``AUC(candidate) - AUC(baseline)``.

    One pass over the midranks serves both (a regression check reports the candidate's interval
    and decides on the difference's).
    """
    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return Estimate(float("nan"), "delong"), Estimate(float("nan"), "delong")
    aucs, cov = delong_covariance(y, np.vstack([candidate, baseline]))
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    single = Estimate(float(aucs[0]), "delong", se=float(np.sqrt(max(cov[0, 0], 0.0))))
    return single, Estimate(float(aucs[0] - aucs[1]), "delong", se=float(np.sqrt(max(var, 0.0))))


def delong_single(y: np.ndarray, scores: np.ndarray) -> Estimate:
    """Return the DeLong estimate of one model's ROC AUC with its standard error."""
    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return Estimate(float("nan"), "delong")
    aucs, v10, v01 = delong_components(y, scores)
    var = float(np.var(v10[0], ddof=1) / m + np.var(v01[0], ddof=1) / n)
    return Estimate(float(aucs[0]), "delong", se=float(np.sqrt(max(var, 0.0))))
