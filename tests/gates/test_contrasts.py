"""Contrasts of one metric over several prediction sets: the spread equals a plain row bootstrap."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from gates.context import Predictions
from gates.contrasts import contrast_estimate, paired_mean
from gates.metrics import metric_registry
from gates.stats.partials import CellCounts

Stat = Callable[[np.ndarray, Predictions], float]


def pairwise_auc(y_pos: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by its definition: P(positive outscores negative), ties counting half."""
    diff = scores[y_pos][:, None] - scores[~y_pos][None, :]
    return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


def step_average_precision(y_pos: np.ndarray, scores: np.ndarray) -> float:
    """Average precision by its step-wise definition: sum over thresholds of (R_j - R_j-1) P_j."""
    order = np.argsort(-scores, kind="mergesort")
    ends = np.r_[np.flatnonzero(np.diff(scores[order]) != 0), len(scores) - 1]
    tp = np.cumsum(y_pos[order])[ends]
    precision, recall = tp / (ends + 1), tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def ovr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean([pairwise_auc(y == c, proba[:, c]) for c in range(proba.shape[1])]))


TEXTBOOK: dict[str, Stat] = {
    "roc_auc": lambda y, p: pairwise_auc(y == 1, p.scores),
    "accuracy": lambda y, p: float(np.mean(y == p.labels)),
    "log_loss": lambda y, p: float(-np.mean(y * np.log(p.scores) + (1 - y) * np.log(1 - p.scores))),
    "average_precision": lambda y, p: step_average_precision(y == 1, p.scores),
    "roc_auc_ovr": lambda y, p: ovr_auc(y, p.scores),
}


@pytest.fixture(scope="module")
def binary_sets() -> tuple[np.ndarray, list[Predictions]]:
    """Four correlated scorers of the same 500 rows (a model clean and perturbed, twice)."""
    rng = np.random.default_rng(1)
    n = 500
    y = rng.integers(0, 2, n)
    signal = rng.normal(size=n)
    preds = []
    for noise in (0.0, 0.8, 0.3, 1.2):
        s = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + signal + noise * rng.normal(size=n))))
        preds.append(Predictions(labels=(s >= 0.5).astype(int), scores=s, classes=(0, 1)))
    return y, preds


@pytest.fixture(scope="module")
def multiclass_sets() -> tuple[np.ndarray, list[Predictions]]:
    rng = np.random.default_rng(4)
    n, k = 450, 3
    y = rng.integers(0, k, n)
    base = rng.normal(size=(n, k))
    preds = []
    for noise in (0.0, 1.0, 0.5, 1.5):
        logits = base + 1.5 * np.eye(k)[y] + noise * rng.normal(size=(n, k))
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        preds.append(Predictions(labels=proba.argmax(axis=1), scores=proba, classes=(0, 1, 2)))
    return y, preds


def slow_bootstrap_sd(stat: Callable[[np.ndarray], float], n: int, n_boot: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    return float(np.std([stat(rng.integers(0, n, n)) for _ in range(n_boot)], ddof=1))


def spread(est: object) -> float:
    se = est.se
    return float(se) if se is not None else float(np.std(est.replicates, ddof=1))


@pytest.mark.parametrize(("name", "method"), [("roc_auc", "delong"), ("accuracy", "bootstrap-multinomial"),
                                              ("log_loss", "bootstrap-rows"),
                                              ("average_precision", "bootstrap-rows")])
def test_difference_of_drops_matches_a_slow_row_bootstrap(binary_sets: tuple[np.ndarray, list[Predictions]],
                                                          name: str, method: str) -> None:
    y, preds = binary_sets
    metric, textbook = metric_registry()[name], TEXTBOOK[name]
    weights = metric.direction * np.array([1.0, -1.0, -1.0, 1.0])
    est = contrast_estimate(metric, y, preds, weights, n_boot=2000, rng=np.random.default_rng(2),
                            positive_label=1, classes=(0, 1))

    def stat(idx: np.ndarray) -> float:
        return float(np.dot(weights, [textbook(y[idx], Predictions(p.labels[idx], p.scores[idx], p.classes))
                                      for p in preds]))

    assert est.method == method
    if name == "average_precision":
        assert textbook(y, preds[1]) == pytest.approx(average_precision_score(y, preds[1].scores))
    assert est.value == pytest.approx(np.dot(weights, [textbook(y, p) for p in preds]), rel=1e-9)
    assert spread(est) == pytest.approx(slow_bootstrap_sd(stat, len(y), 300, 3), rel=0.15)


def test_multiclass_auc_contrast_matches_a_slow_row_bootstrap(
        multiclass_sets: tuple[np.ndarray, list[Predictions]]) -> None:
    y, preds = multiclass_sets
    weights = np.array([1.0, -1.0, -1.0, 1.0])
    est = contrast_estimate(metric_registry()["roc_auc_ovr"], y, preds, weights, n_boot=100,
                            rng=np.random.default_rng(0), classes=(0, 1, 2))
    expected = [roc_auc_score(y, p.scores, multi_class="ovr") for p in preds]
    assert est.value == pytest.approx(np.dot(weights, expected), rel=1e-9)

    def stat(idx: np.ndarray) -> float:
        return float(np.dot(weights, [ovr_auc(y[idx], p.scores[idx]) for p in preds]))

    assert est.se == pytest.approx(slow_bootstrap_sd(stat, len(y), 300, 5), rel=0.15)


def test_contrast_is_reproducible_from_its_generator(binary_sets: tuple[np.ndarray, list[Predictions]]) -> None:
    y, preds = binary_sets
    metric = metric_registry()["accuracy"]
    a, b, c = (contrast_estimate(metric, y, preds, [1, -1, -1, 1], n_boot=300, rng=np.random.default_rng(s),
                                 positive_label=1, classes=(0, 1)) for s in (9, 9, 10))
    assert np.array_equal(a.replicates, b.replicates)
    assert not np.array_equal(a.replicates, c.replicates)


def test_paired_mean_is_the_mean_difference_with_its_standard_error() -> None:
    rng = np.random.default_rng(0)
    diff = rng.integers(-1, 2, 1000).astype(float)
    est = paired_mean(diff)
    assert est.value == diff.mean()
    assert est.se == pytest.approx(diff.std(ddof=1) / math.sqrt(1000))
    assert not paired_mean(np.array([1.0])).is_defined


def test_confusion_contrast_draws_the_seen_joint_cells_with_the_cores_one_sampler(
        binary_sets: tuple[np.ndarray, list[Predictions]]) -> None:
    """Replicate b is the accuracy contrast of CellCounts' b-th multinomial draw of the (y, labels...) cells."""
    y, preds = binary_sets
    weights = np.array([1.0, -1.0, -1.0, 1.0])
    est = contrast_estimate(metric_registry()["accuracy"], y, preds, weights, n_boot=400,
                            rng=np.random.default_rng(5), positive_label=1, classes=(0, 1))
    joint = np.stack([y, *[p.labels for p in preds]], axis=1)
    cells, counts = np.unique(joint, axis=0, return_counts=True)  # seen cells, in code order
    draws = np.concatenate(list(CellCounts(counts).replicates(400, np.random.default_rng(5), budget=97)))
    correct = np.stack([cells[:, 0] == cells[:, j] for j in range(1, 5)], axis=1).astype(float)
    expected = (draws @ correct / len(y)) @ weights
    assert np.allclose(est.replicates, expected, rtol=0, atol=1e-12)
