"""Every registry metric equals sklearn.metrics; count functions agree on batches of tables."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from gates.context import Predictions
from gates.metrics import (
    BINARY,
    MULTICLASS,
    REGRESSION,
    RankedScores,
    confusion_table,
    count_churn,
    encode_labels,
    metric_names,
    metric_registry,
)

AVERAGED = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}


def sklearn_binary(y, labels, scores, pos):
    y_pos = (np.asarray(y) == pos).astype(int)
    out = {
        "accuracy": skm.accuracy_score(y, labels),
        "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
        "precision": skm.precision_score(y, labels, pos_label=pos),
        "recall": skm.recall_score(y, labels, pos_label=pos),
        "f1": skm.f1_score(y, labels, pos_label=pos),
        "roc_auc": skm.roc_auc_score(y_pos, scores),
        "average_precision": skm.average_precision_score(y_pos, scores),
        "log_loss": skm.log_loss(y_pos, scores, labels=[0, 1]),
        "brier": skm.brier_score_loss(y_pos, scores),
    }
    for base, fn in AVERAGED.items():
        for avg in ("macro", "weighted"):
            out[f"{base}_{avg}"] = fn(y, labels, average=avg)
    return out


def sklearn_multiclass(y, labels, proba, classes):
    out = {
        "accuracy": skm.accuracy_score(y, labels),
        "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
        "roc_auc_ovr": skm.roc_auc_score(y, proba, multi_class="ovr", labels=list(classes)),
        "roc_auc_ovr_weighted": skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted",
                                                  labels=list(classes)),
        "log_loss": skm.log_loss(y, proba, labels=list(classes)),
        "brier": skm.brier_score_loss(y, proba, labels=list(classes)),
    }
    for base, fn in AVERAGED.items():
        for avg in ("macro", "weighted"):
            out[f"{base}_{avg}"] = fn(y, labels, average=avg)
    return out


def sklearn_regression(y, yhat):
    return {"mae": skm.mean_absolute_error(y, yhat), "mse": skm.mean_squared_error(y, yhat),
            "rmse": skm.root_mean_squared_error(y, yhat), "r2": skm.r2_score(y, yhat),
            "mape": skm.mean_absolute_percentage_error(y, yhat)}


def ours(task, y, pred, pos, classes):
    reg = metric_registry()
    return {n: reg[n].compute(y, pred, positive_label=pos, classes=classes)
            for n in metric_names(task) if n != "churn"}


def binary_case(seed, n, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    if ties:
        scores = np.round(scores, 1)
    labels = (scores >= 0.5).astype(int)
    return y, labels, scores


@pytest.mark.parametrize("seed,n,ties", [(0, 50, False), (1, 500, True), (2, 3000, False), (3, 7, True)])
def test_binary_metrics_equal_sklearn(seed, n, ties):
    y, labels, scores = binary_case(seed, n, ties)
    got = ours(BINARY, y, Predictions(labels, scores, (0, 1)), 1, (0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = sklearn_binary(y, labels, scores, 1)
    assert set(got) == set(want)
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-12, abs=1e-12), name


def test_string_labels_and_a_smaller_positive_label():
    y, labels, scores = binary_case(4, 400)
    names = np.array(["no", "yes"])
    # positive "no": scores are P(no), so flip them
    got = ours(BINARY, names[y], Predictions(names[1 - labels], 1 - scores, ("no", "yes")), "no", ("no", "yes"))
    want = sklearn_binary(names[y], names[1 - labels], 1 - scores, "no")
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-12), name


def test_zero_division_follows_sklearn():
    y = np.zeros(10, dtype=int)
    labels = np.zeros(10, dtype=int)
    pred = Predictions(labels, None, (0, 1))
    reg = metric_registry()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in AVERAGED.items():
            assert reg[name].compute(y, pred, positive_label=1, classes=(0, 1)) == fn(y, labels)


@pytest.mark.parametrize("seed,k", [(0, 3), (1, 5)])
def test_multiclass_metrics_equal_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    n = 800
    classes = tuple(f"c{i}" for i in range(k))
    y_idx = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y_idx] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    labels_idx = proba.argmax(axis=1)
    labels_idx[labels_idx == k - 1] = 0  # one class never predicted: macro averages must still match
    y, labels = np.array(classes)[y_idx], np.array(classes)[labels_idx]
    got = ours(MULTICLASS, y, Predictions(labels, proba, classes), None, classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = sklearn_multiclass(y, labels, proba, classes)
    assert set(got) == set(want)
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-12), name


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = 1000 + 3 * rng.normal(size=600)  # a large offset: r2 must not lose precision
    yhat = y + rng.normal(size=600)
    got = ours(REGRESSION, y, Predictions(yhat, None), None, None)
    want = sklearn_regression(y, yhat)
    assert set(got) == set(want)
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-9), name


def test_r2_of_a_constant_target_follows_sklearn():
    y = np.full(5, 0.1)
    r2 = metric_registry()["r2"]
    assert r2.compute(y, Predictions(y.copy(), None), positive_label=None, classes=None) == skm.r2_score(y, y)
    assert r2.compute(y, Predictions(y + 1, None), positive_label=None, classes=None) == skm.r2_score(y, y + 1)


def test_churn_is_the_share_of_changed_labels():
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    churn = metric_registry()["churn"]
    got = churn.compute(np.zeros(300), Predictions(a, None), positive_label=None, classes=None,
                        baseline=Predictions(b.astype(float), None))
    assert got == np.mean(a != b)
    assert np.isnan(churn.compute(np.zeros(300), Predictions(a, None), positive_label=None, classes=None))
    joint = confusion_table(a, b, 3)
    assert count_churn(joint) == pytest.approx(np.mean(a != b))


def test_count_functions_work_on_batches():
    """A (B, S, K, K) batch gives, per table, what sklearn gives on rows rebuilt from that table."""
    rng = np.random.default_rng(6)
    tables = rng.integers(0, 30, size=(4, 3, 3, 3)).astype(float)
    reg = metric_registry()
    for name in ("accuracy", "balanced_accuracy", "f1_macro", "precision_weighted", "recall_macro"):
        batch = reg[name].counts(tables, -1)
        assert batch.shape == (4, 3)
        for b in range(4):
            for s in range(3):
                i, j = np.nonzero(tables[b, s] > -1)
                reps = tables[b, s].astype(int).ravel()
                y, p = np.repeat(i, reps), np.repeat(j, reps)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    want = {"accuracy": skm.accuracy_score(y, p), "balanced_accuracy": skm.balanced_accuracy_score(y, p),
                            "f1_macro": skm.f1_score(y, p, average="macro"),
                            "precision_weighted": skm.precision_score(y, p, average="weighted"),
                            "recall_macro": skm.recall_score(y, p, average="macro")}[name]
                assert batch[b, s] == pytest.approx(want, rel=1e-12), name


def test_weighted_average_precision_equals_sklearn_with_sample_weight():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300).astype(bool)
    s = np.round(rng.random(300) + 0.3 * y, 2)
    w = rng.poisson(1.0, size=(5, 300)).astype(float)
    got = RankedScores.of(y, s).average_precision(w)
    for b in range(5):
        assert got[b] == pytest.approx(skm.average_precision_score(y, s, sample_weight=w[b]), rel=1e-6)


def test_encode_labels_covers_the_union_and_the_positive_label():
    enc = encode_labels(np.array([0, 0, 2]), np.array([0.0, 3.0, 2.0]), positive_label=1, classes=(0, 1, 2))
    assert enc.k == 4
    assert enc.labels[enc.positive] == 1
    assert [enc.labels[c] for c in enc.codes[1]] == [0, 3, 2]
    mixed = encode_labels(np.array(["a", "b"], dtype=object), np.array(["b", "c"]), positive_label="b")
    assert mixed.labels[mixed.positive] == "b" and mixed.k == 3


def test_registry_is_read_only_and_names_are_per_task():
    reg = metric_registry()
    with pytest.raises(TypeError):
        reg["x"] = reg["f1"]  # type: ignore[index]
    assert "f1" in metric_names(BINARY) and "f1" not in metric_names(MULTICLASS)
    assert "f1_macro" in metric_names(MULTICLASS) and "rmse" in metric_names(REGRESSION)
    assert all(m.direction in (1, -1) and m.needs in ("labels", "scores") for m in reg.values())
    assert reg["log_loss"].direction == -1 and reg["r2"].direction == 1 and reg["churn"].needs_baseline
