"""Curve statistics for the report's charts, computed once during the run from the cached predictions.

Reporters never recompute a statistic, and ``model-gates report report.json --format html`` has
only the file: so the run stores small, fixed-size summaries under the report's ``curves`` key.

* ROC and precision-recall curves from the sorted scores (exactly the points scikit-learn's
  ``roc_curve(drop_intermediate=False)`` and ``precision_recall_curve`` give), thinned to at most
  :data:`MAX_POINTS` points evenly spaced along the curve; the area (ROC AUC, average precision) is
  computed on every point before thinning.
* Reliability bins (``calibration_curve(strategy="uniform")``): per bin the row count, the sum of
  scores and the positives, so partitions merge by adding.
* Confusion matrices of predicted labels (counts: mergeable).
* Residual histograms for regression on edges shared by both models.
* Drift histograms for drift checks whose method keeps no bins (ks, wasserstein), binned like psi.

Only predictions the gates already computed are read: this module never runs a model.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gates.context import EvalContext, Predictions
    from gates.results import CheckResult

#: points kept per curve (a chart shows no more; enough that the eye sees no corners)
MAX_POINTS = 200
#: reliability bins on [0, 1]
CALIBRATION_BINS = 10
#: residual histogram bins
RESIDUAL_BINS = 30
#: classes drawn one-vs-rest; a model with more gets curves for none (a confusion matrix still)
MAX_CLASSES = 10
#: confusion matrices up to this many classes
MAX_CONFUSION = 20
#: drift bins for methods that keep none
DRIFT_BINS = 10
ROLES = ("candidate", "baseline")


def summarise(ctx: EvalContext, results: Sequence[CheckResult]) -> dict[str, Any] | None:
    """Return the run's curve summaries (None when no gate computed predictions nor drift).

    ``results`` are the run's checks: drift checks without bins get a histogram of their column.
    """
    out: dict[str, Any] = {}
    preds = {role: ctx.computed_predictions(role) for role in ROLES}
    task = ctx.policy.model.task
    if preds["candidate"] is not None:
        y = ctx.y_true
        if task == "regression":
            out["residuals"] = residual_histograms(y, {r: p.labels for r, p in preds.items() if p is not None})
        elif task != "per_example":  # per-example scores have no target to draw curves against
            out.update(classification_curves(ctx, y, preds))
    drift = drift_histograms(ctx, results)
    if drift:
        out["drift"] = drift
    return out or None


# ---------------------------------------------------------------- classification


def classification_curves(ctx: EvalContext, y: np.ndarray, preds: Mapping[str, Predictions | None]) -> dict[str, Any]:
    """Return ROC, PR and reliability per class (binary: the positive class) and confusion matrices."""
    classes = list(ctx.classes)
    out: dict[str, Any] = {}
    if len(classes) <= MAX_CONFUSION:
        out["confusion"] = {"labels": [_label(c) for c in classes],
                            **{r: confusion_matrix(y, p.labels, classes) for r, p in preds.items() if p is not None}}
    per_class = _one_vs_rest(ctx, y, preds, classes)
    if per_class:
        ranked = [{r: _ranked(t, s) for r, s in by_role.items()} for _, t, by_role in per_class]  # sorted once
        out["roc"] = [{"class": c, **{r: roc_curve(t, s, ranked=ranked[i][r]) for r, s in by_role.items()}}
                      for i, (c, t, by_role) in enumerate(per_class)]
        out["pr"] = [{"class": c, **{r: pr_curve(t, s, ranked=ranked[i][r]) for r, s in by_role.items()}}
                     for i, (c, t, by_role) in enumerate(per_class)]
        cal = [{"class": c, **{r: reliability(t, s) for r, s in by_role.items() if _is_probability(s)}}
               for c, t, by_role in per_class]
        cal = [entry for entry in cal if len(entry) > 1]
        if cal:
            out["calibration"] = cal
    return out


def _one_vs_rest(ctx: EvalContext, y: np.ndarray, preds: Mapping[str, Predictions | None],
                 classes: list[Any]) -> list[tuple[Any, np.ndarray, dict[str, np.ndarray]]]:
    """Return ``(class, is_class, {role: score})`` for the classes whose scores every role has."""
    task = ctx.policy.model.task
    if task == "binary_classification":
        pos = ctx.policy.model.positive_label
        scores = {r: np.asarray(p.scores, dtype=float) for r, p in preds.items()
                  if p is not None and p.scores is not None and np.ndim(p.scores) == 1}
        truth = y == pos
        return [(_label(pos), truth, scores)] if scores and 0 < truth.sum() < len(truth) else []
    if len(classes) > MAX_CLASSES:
        return []
    out = []
    for c in classes:
        truth = y == c
        if not 0 < truth.sum() < len(truth):
            continue
        by_role = {}
        for r, p in preds.items():
            if p is None or p.scores is None or np.ndim(p.scores) != 2 or p.classes is None or c not in p.classes:
                continue
            by_role[r] = np.asarray(p.scores[:, list(p.classes).index(c)], dtype=float)
        if by_role:
            out.append((_label(c), truth, by_role))
    return out


def _label(value: Any) -> Any:
    """Return a class label as JSON keeps it (numpy scalars as Python numbers, else text)."""
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def _is_probability(scores: np.ndarray) -> bool:
    finite = scores[np.isfinite(scores)]
    return finite.size > 0 and float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0


#: (thresholds, true positives, false positives) at each distinct score, highest first
Ranked = tuple[np.ndarray, np.ndarray, np.ndarray]


def _ranked(truth: np.ndarray, scores: np.ndarray) -> Ranked:
    """Return (thresholds, true positives, false positives) at each distinct score, highest first."""
    keep = np.isfinite(scores)
    s, t = scores[keep], truth[keep]
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # the last row of each run of equal scores
    tps = np.cumsum(t, dtype=np.int64)[last]
    fps = (last + 1) - tps
    return s[last], tps, fps


def roc_curve(truth: np.ndarray, scores: np.ndarray, max_points: int = MAX_POINTS,
              ranked: Ranked | None = None) -> dict[str, Any]:
    """Return the ROC curve (thinned), its exact AUC and the class sizes.

    ``thresholds[0]`` is None: the point (0, 0) that no score reaches (scikit-learn's ``inf``).
    ``ranked`` is ``_ranked(truth, scores)`` when the caller has it (the PR curve sorts the same scores).
    """
    thr, tps, fps = _ranked(truth, scores) if ranked is None else ranked
    pos, neg = int(tps[-1]), int(fps[-1])
    tpr = np.r_[0.0, tps / pos]
    fpr = np.r_[0.0, fps / neg]
    auc = float(np.trapezoid(tpr, fpr))
    keep = thin(fpr, tpr, max_points)
    return {"fpr": _floats(fpr[keep]), "tpr": _floats(tpr[keep]),
            "thresholds": [None, *_floats(thr[keep[1:] - 1])],  # thin() keeps index 0, the (0, 0) point
            "auc": auc, "positives": pos, "negatives": neg}


def pr_curve(truth: np.ndarray, scores: np.ndarray, max_points: int = MAX_POINTS,
             ranked: Ranked | None = None) -> dict[str, Any]:
    """Return the precision-recall curve (thinned, highest threshold first), its average precision.

    Points are scikit-learn's ``precision_recall_curve`` ones in reverse order, without its final
    (recall 0, precision 1) point; ``average_precision`` equals ``average_precision_score``.
    ``ranked`` as in :func:`roc_curve`.
    """
    thr, tps, fps = _ranked(truth, scores) if ranked is None else ranked
    pos = int(tps[-1])
    precision = tps / (tps + fps)
    recall = tps / pos
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    keep = thin(recall, precision, max_points)
    return {"recall": _floats(recall[keep]), "precision": _floats(precision[keep]), "thresholds": _floats(thr[keep]),
            "average_precision": ap, "prevalence": pos / float(tps[-1] + fps[-1])}


def thin(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Return indices of at most ``max_points`` + 1 points evenly spaced along the path (x, y).

    The first and last points are always kept; in between, a point is kept where the path's
    length (in the L1 metric of the unit square) first passes each ``k / max_points`` of the total.
    """
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    steps = np.abs(np.diff(x)) + np.abs(np.diff(y))
    length = np.r_[0.0, np.cumsum(steps)]
    total = length[-1]
    if total <= 0:
        return np.array([0, n - 1])
    marks = np.searchsorted(length, np.linspace(0, total, max_points), side="left")
    return np.unique(np.r_[0, marks, n - 1])


def reliability(truth: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Return per uniform bin of [0, 1] the row count, score sum and positives (mergeable by adding).

    ``mean_score = score_sum / count`` and ``fraction_positive = positives / count`` are
    scikit-learn's ``calibration_curve(strategy="uniform")`` ``prob_pred`` and ``prob_true``.
    """
    keep = np.isfinite(scores)
    s, t = scores[keep], truth[keep]
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], s)
    count = np.bincount(ids, minlength=bins)
    total = np.bincount(ids, weights=s, minlength=bins)
    positives = np.bincount(ids, weights=t.astype(float), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        brier = float(np.mean((s - t) ** 2)) if s.size else None
    return {"edges": _floats(edges), "count": [int(v) for v in count], "score_sum": _floats(total),
            "positives": [int(round(v)) for v in positives], "brier": brier}


def confusion_matrix(y: np.ndarray, labels: np.ndarray, classes: Sequence[Any]) -> list[list[int]]:
    """Return counts[i][j] of rows of class ``classes[i]`` predicted as ``classes[j]``."""
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    yi = _codes(y, index)
    pi = _codes(labels, index)
    ok = (yi >= 0) & (pi >= 0)
    counts = np.bincount(yi[ok] * k + pi[ok], minlength=k * k).reshape(k, k)
    return counts.tolist()


def _codes(values: np.ndarray, index: Mapping[Any, int]) -> np.ndarray:
    keys = list(index)
    try:
        arr = np.asarray(values)
        sorter = np.asarray(keys)
        if arr.dtype.kind in "biuf" and sorter.dtype.kind in "biuf":
            pos = np.searchsorted(sorter, arr)
            pos = np.clip(pos, 0, len(keys) - 1)
            return np.where(sorter[pos] == arr, pos, -1)
    except (TypeError, ValueError):
        pass
    import pandas as pd

    codes = pd.Categorical(values, categories=keys).codes
    return np.asarray(codes, dtype=np.int64)


# ---------------------------------------------------------------- regression


def residual_histograms(y: np.ndarray, predicted: Mapping[str, np.ndarray], bins: int = RESIDUAL_BINS) -> dict[str, Any]:
    """Return histograms of ``y - predicted`` per model on shared edges, with mean and RMSE.

    Edges span the 0.5%-99.5% range of both models' residuals (outliers are counted in
    ``below``/``above``, not stretched into the axis).
    """
    y = np.asarray(y, dtype=float)
    res = {r: y - np.asarray(p, dtype=float) for r, p in predicted.items()}
    res = {r: v[np.isfinite(v)] for r, v in res.items()}
    both = np.concatenate(list(res.values()))
    if both.size == 0:
        return {}
    lo, hi = np.quantile(both, [0.005, 0.995])
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    out: dict[str, Any] = {"edges": _floats(edges)}
    for r, v in res.items():
        counts, _ = np.histogram(np.clip(v, lo, hi), edges)
        out[r] = {"counts": [int(c) for c in counts], "below": int((v < lo).sum()), "above": int((v > hi).sum()),
                  "mean": float(v.mean()), "rmse": float(math.sqrt(float(np.mean(v * v)))), "rows": int(v.size)}
    return out


# ---------------------------------------------------------------- drift


def drift_histograms(ctx: EvalContext, results: Sequence[CheckResult]) -> dict[str, Any]:
    """Return reference and eval shares per bin for numeric drift checks whose method keeps no bins."""
    from gates.checks.data.drift import numeric_histogram

    out: dict[str, Any] = {}
    for r in results:
        if not r.id.startswith("data.drift.") or "[" not in r.id or (r.details or {}).get("bins"):
            continue
        col = r.id[r.id.index("[") + 1:-1]
        if col in out or ctx.reference is None or col not in ctx.reference or col not in ctx.frame:
            continue
        ref = ctx.reference[col]
        ev = ctx.frame[col]
        if ref.dtype.kind not in "biuf" or ev.dtype.kind not in "biuf":
            continue
        rv = ref.to_numpy(dtype=float, na_value=np.nan)
        evv = ev.to_numpy(dtype=float, na_value=np.nan)
        rv, evv = rv[np.isfinite(rv)], evv[np.isfinite(evv)]
        if rv.size == 0 or evv.size == 0:
            continue
        hist = numeric_histogram(rv, evv, DRIFT_BINS)
        out[col] = {"bins": [{"bin": label, "reference": float(a) / rv.size, "eval": float(b) / evv.size}
                             for label, a, b in zip(hist.labels, hist.reference, hist.eval)],
                    "binning": hist.binning}
    return out


def _floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float)]
