"""Influence values of paired differences, checked against sklearn, DeLong and closed forms."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from gates.context import Predictions
from gates.influence import ap_weight_gradient, difference_influence
from gates.stats.partials import numeric_gradient
from gates.intervals import delong_paired
from gates.metrics import metric_registry, r2_from_means

REGISTRY = metric_registry()


def scorers(n: int, seed: int = 0, ties: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)
    a = 1 / (1 + np.exp(-(1.1 * y + shared + 0.5 * rng.normal(size=n))))
    b = 1 / (1 + np.exp(-(0.9 * y + shared + 0.5 * rng.normal(size=n))))
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    return y, a, b


@pytest.mark.parametrize("ties", [False, True])
def test_ap_weight_gradient_matches_sklearn_finite_differences(ties):
    y, a, _ = scorers(150, seed=1, ties=ties)
    grad = ap_weight_gradient(y == 1, a)
    step = 1e-6
    at_one = average_precision_score(y, a)
    numeric = np.empty(len(y))
    for i in range(len(y)):
        w = np.ones(len(y))
        w[i] += step
        numeric[i] = (average_precision_score(y, a, sample_weight=w) - at_one) / step
    np.testing.assert_allclose(grad, numeric, atol=1e-6)
    assert grad.sum() == pytest.approx(0.0, abs=1e-12)  # AP does not change when every weight scales


def test_ap_gradient_without_positives_is_undefined():
    assert np.isnan(ap_weight_gradient(np.zeros(5, dtype=bool), np.arange(5.0))).all()


def test_auc_null_influence_gives_delong_variance_of_the_doubled_rows():
    """The doubled population's DeLong variance, rescaled from 2n to n rows, is mean(phi**2) / n."""
    y, a, b = scorers(3000, seed=2)
    phi = difference_influence(REGISTRY["roc_auc"], y, Predictions(y, a), Predictions(y, b), positive_label=1,
                               classes=(0, 1))
    doubled = delong_paired(np.r_[y, y] == 1, np.r_[a, b], np.r_[b, a])[1]
    assert doubled.value == pytest.approx(0.0, abs=1e-12)
    assert np.sqrt(np.mean(phi ** 2) / len(y)) == pytest.approx(doubled.se * np.sqrt(2), rel=2e-3)


def test_ap_influence_is_antisymmetric_over_the_twins():
    """Swapping the models negates the difference, so each twin's influence is minus the row's."""
    y, a, b = scorers(400, seed=3, ties=True)
    y2 = np.r_[y, y] == 1
    psi = ap_weight_gradient(y2, np.r_[a, b]) - ap_weight_gradient(y2, np.r_[b, a])
    np.testing.assert_allclose(psi[400:], -psi[:400], atol=1e-12)
    phi = difference_influence(REGISTRY["average_precision"], y, Predictions(y, a), Predictions(y, b),
                               positive_label=1, classes=(0, 1))
    np.testing.assert_allclose(phi, 800 * psi[:400])


def test_row_mean_influence_of_log_loss_is_the_loss_difference():
    y, a, b = scorers(200, seed=4)
    phi = difference_influence(REGISTRY["log_loss"], y, Predictions(y, a), Predictions(y, b), positive_label=1,
                               classes=(0, 1))
    def loss(p: np.ndarray) -> np.ndarray:
        return -np.log(np.where(y == 1, p, 1 - p))

    np.testing.assert_allclose(phi, loss(a) - loss(b), rtol=1e-6)


def test_numeric_gradient_of_r2_matches_its_closed_form():
    means = np.array([0.4, 0.1, 1.3])  # mean squared error, mean of centred y, mean of its square
    sst = means[2] - means[1] ** 2
    expected = np.array([-1 / sst, -2 * means[1] * means[0] / sst ** 2, means[0] / sst ** 2])
    np.testing.assert_allclose(numeric_gradient(r2_from_means, means), expected, rtol=1e-6)


def test_confusion_metrics_have_no_influence_function():
    y, a, b = scorers(20)
    with pytest.raises(ValueError, match="confusion"):
        difference_influence(REGISTRY["accuracy"], y, Predictions(y, a), Predictions(y, b), positive_label=1,
                             classes=(0, 1))
