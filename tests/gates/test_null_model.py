"""The symmetrised null model against a slow loop that really draws eval sets from the doubled rows.

The loop picks ``n`` of the ``2n`` doubled rows with replacement (a row as measured, or its twin
with the two models' outputs swapped) and computes each metric with :meth:`Metric.compute`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from gates.context import Predictions
from gates.estimates import slice_by, whole
from gates.metrics import BINARY, MULTICLASS, REGRESSION, metric_registry
from gates.null_model import METHOD_MULTINOMIAL, METHOD_NORMAL, NullModel, Target

REGISTRY = metric_registry()
ROWS = 800
LOOPS = 500
SIMULATIONS = 4000


def binary_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Predictions, Predictions]:
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)
    a = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + shared + 0.6 * rng.normal(size=n))))
    b = 1 / (1 + np.exp(-(1.0 * (2 * y - 1) + shared + 0.6 * rng.normal(size=n))))
    return y, Predictions((a > 0.5).astype(int), a), Predictions((b > 0.45).astype(int), b)


def multiclass_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Predictions, Predictions]:
    y = rng.integers(0, 3, n)
    shared = rng.normal(size=(n, 3))
    out = []
    for strength in (1.5, 1.2):
        logits = strength * np.eye(3)[y] + shared + 0.7 * rng.normal(size=(n, 3))
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        out.append(Predictions(proba.argmax(axis=1), proba, (0, 1, 2)))
    return y, out[0], out[1]


def regression_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Predictions, Predictions]:
    y = rng.normal(3.0, 2.0, n)
    shared = rng.normal(size=n)
    return (y, Predictions(y + shared + 0.5 * rng.normal(size=n), None),
            Predictions(y + 1.1 * shared + 0.5 * rng.normal(size=n), None))


DATA = {BINARY: binary_data, MULTICLASS: multiclass_data, REGRESSION: regression_data}
CASES = [(BINARY, m) for m in ("roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1", "precision")]
CASES += [(MULTICLASS, m) for m in ("roc_auc_ovr", "roc_auc_ovr_weighted", "accuracy", "f1_macro", "log_loss")]
CASES += [(REGRESSION, m) for m in ("mae", "rmse", "r2")]


def settings(task: str) -> dict[str, Any]:
    return {"positive_label": 1 if task == BINARY else None, "classes": None if task == REGRESSION else
            ((0, 1) if task == BINARY else (0, 1, 2))}


def swapped(idx: np.ndarray, n: int, a: Predictions, b: Predictions) -> tuple[Predictions, Predictions]:
    """Return (candidate, baseline) of the doubled rows ``idx``: row ``i`` as measured, ``i + n`` swapped."""
    rows, twin = idx % n, idx >= n

    def pick(first: np.ndarray | None, second: np.ndarray | None) -> np.ndarray | None:
        if first is None or second is None:
            return None
        mask = twin.reshape((-1,) + (1,) * (np.ndim(first) - 1))
        return np.where(mask, second[rows], first[rows])

    return (Predictions(pick(a.labels, b.labels), pick(a.scores, b.scores), a.classes),
            Predictions(pick(b.labels, a.labels), pick(b.scores, a.scores), a.classes))


def slow_null(task: str, metrics: list[str], y: np.ndarray, a: Predictions, b: Predictions, *,
              rows: np.ndarray | None = None, loops: int = LOOPS) -> np.ndarray:
    """Return ``(loops, len(metrics))`` differences on eval sets drawn from the doubled rows.

    ``rows`` restricts each metric to the drawn rows that fall in it (a slice).
    """
    n = len(y)
    rng = np.random.default_rng(123)
    inside = np.zeros(n, dtype=bool) if rows is not None else np.ones(n, dtype=bool)
    if rows is not None:
        inside[rows] = True
    out = np.empty((loops, len(metrics)))
    for r in range(loops):
        idx = rng.integers(0, 2 * n, n)
        idx = idx[inside[idx % n]]
        cand, base = swapped(idx, n, a, b)
        for j, name in enumerate(metrics):
            m = REGISTRY[name]
            out[r, j] = m.compute(y[idx % n], cand, **settings(task)) - m.compute(y[idx % n], base, **settings(task))
    return out


def null_model(task: str, y: np.ndarray, a: Predictions, b: Predictions, slicings: list[Any]) -> NullModel:
    return NullModel.of(y, a, b, slicings, task=task, **settings(task))


@pytest.mark.parametrize("task, metric", CASES)
def test_null_standard_error_matches_resampling_the_doubled_rows(task, metric):
    y, a, b = DATA[task](np.random.default_rng(7), ROWS)
    draws, ses, methods = null_model(task, y, a, b, [whole(ROWS)]).simulate(
        [Target(REGISTRY[metric], 0, 0)], SIMULATIONS, np.random.default_rng(1))
    slow = slow_null(task, [metric], y, a, b)[:, 0]
    assert ses[0] == pytest.approx(slow.std(ddof=1), rel=0.12)
    assert draws[:, 0].std(ddof=1) == pytest.approx(ses[0], rel=0.05)
    assert abs(draws[:, 0].mean()) < 4 * ses[0] / np.sqrt(SIMULATIONS)  # the null is centred at 0
    assert abs(slow.mean()) < 4 * slow.std() / np.sqrt(LOOPS)
    family = REGISTRY[metric].family
    assert methods == [METHOD_MULTINOMIAL if family == "confusion" else METHOD_NORMAL]


def test_accuracy_and_auc_move_together_as_on_real_data():
    """The cell counts couple the exactly simulated accuracy with the normally simulated AUC."""
    y, a, b = binary_data(np.random.default_rng(8), ROWS)
    targets = [Target(REGISTRY["roc_auc"], 0, 0), Target(REGISTRY["accuracy"], 0, 0), Target(REGISTRY["log_loss"], 0, 0)]
    draws, _, _ = null_model(BINARY, y, a, b, [whole(ROWS)]).simulate(targets, SIMULATIONS, np.random.default_rng(2))
    slow = slow_null(BINARY, ["roc_auc", "accuracy", "log_loss"], y, a, b)
    simulated, resampled = np.corrcoef(draws.T), np.corrcoef(slow.T)
    assert abs(resampled[0, 1]) > 0.3  # a real correlation, which independence would miss
    np.testing.assert_allclose(simulated[np.triu_indices(3, 1)], resampled[np.triu_indices(3, 1)], atol=0.12)


def test_slices_of_two_slicings_share_one_finest_partition():
    rng = np.random.default_rng(9)
    y, a, b = binary_data(rng, 1200)
    frame = pd.DataFrame({"region": rng.choice(["east", "west"], 1200, p=[0.3, 0.7]),
                          "channel": rng.choice(["app", "web", "shop"], 1200)})
    slicings = [whole(1200), slice_by(frame, ["region"]), slice_by(frame, ["region", "channel"])]
    model = null_model(BINARY, y, a, b, slicings)
    assert model.cells.shape[0] == 6  # region x channel: the finest partition
    assert model.cells.sum() == pytest.approx(1200)
    east = slicings[1].keys.index(("east",))
    east_web = slicings[2].keys.index(("east", "web"))
    targets = [Target(REGISTRY["accuracy"], 1, east), Target(REGISTRY["roc_auc"], 2, east_web)]
    _, ses, _ = model.simulate(targets, SIMULATIONS, np.random.default_rng(3))
    slow_east = slow_null(BINARY, ["accuracy"], y, a, b, rows=slicings[1].rows[east], loops=400)[:, 0]
    slow_web = slow_null(BINARY, ["roc_auc"], y, a, b, rows=slicings[2].rows[east_web], loops=400)[:, 0]
    assert ses[0] == pytest.approx(slow_east.std(ddof=1), rel=0.15)
    assert ses[1] == pytest.approx(slow_web.std(ddof=1), rel=0.15)


def test_symmetrised_table_is_its_own_transpose():
    y, a, b = multiclass_data(np.random.default_rng(10), 300)
    model = null_model(MULTICLASS, y, a, b, [whole(300)])
    np.testing.assert_array_equal(model.cells, model.cells.swapaxes(-1, -2))
    # each model's own confusion table is the average of the two measured ones
    measured = np.zeros((3, 3, 3))
    np.add.at(measured, (y, a.labels, b.labels), 1)
    np.testing.assert_allclose(model.cells[0].sum(axis=-1), (measured.sum(axis=-1) + measured.sum(axis=-2)) / 2)
