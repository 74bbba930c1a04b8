"""Curve summaries against scikit-learn's own curves, and the report key a real run writes."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from gates import curves


def _scores(n: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y)))
    if ties:
        s = np.round(s, 2)  # many equal scores: thresholds are the distinct values
    return y, s


@pytest.mark.parametrize("n, ties", [(50, False), (5000, False), (5000, True)])
def test_roc_points_are_sklearns_and_auc_is_exact(n, ties):
    y, s = _scores(n, 1, ties)
    got = curves.roc_curve(y, s)
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert got["auc"] == pytest.approx(skm.auc(fpr, tpr), abs=1e-12)
    assert len(got["fpr"]) <= curves.MAX_POINTS + 1
    assert got["thresholds"][0] is None and np.isinf(thr[0])
    where = {t: i for i, t in enumerate(thr[1:], 1)}
    for f, t, th in zip(got["fpr"][1:], got["tpr"][1:], got["thresholds"][1:]):
        i = where[th]  # every kept point is one of sklearn's, at the same threshold
        assert (f, t) == pytest.approx((fpr[i], tpr[i]), abs=1e-12)
    assert (got["fpr"][-1], got["tpr"][-1]) == (1.0, 1.0)
    assert (got["positives"], got["negatives"]) == (int(y.sum()), int((~y).sum()))


def test_thinning_spreads_points_along_the_curve():
    y, s = _scores(100_000, 2)
    got = curves.roc_curve(y, s)
    steps = np.abs(np.diff(got["fpr"])) + np.abs(np.diff(got["tpr"]))
    assert 150 <= len(got["fpr"]) <= curves.MAX_POINTS + 1
    assert steps.max() < 4 * 2 / curves.MAX_POINTS  # no long straight chords


@pytest.mark.parametrize("ties", [False, True])
def test_pr_points_and_average_precision_are_sklearns(ties):
    y, s = _scores(5000, 3, ties)
    got = curves.pr_curve(y, s)
    precision, recall, thr = skm.precision_recall_curve(y, s)
    assert got["average_precision"] == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    where = {t: i for i, t in enumerate(thr)}
    for p, r, th in zip(got["precision"], got["recall"], got["thresholds"]):
        i = where[th]
        assert (p, r) == pytest.approx((precision[i], recall[i]), abs=1e-12)
    assert got["recall"][-1] == 1.0 and got["prevalence"] == pytest.approx(y.mean())


def test_reliability_bins_give_sklearns_calibration_curve_and_merge_by_adding():
    y, s = _scores(20_000, 4)
    s[:5] = [0.0, 0.1, 0.2, 1.0, 0.5]  # bin edges themselves
    got = curves.reliability(y, s)
    count = np.array(got["count"])
    nonzero = count > 0
    prob_true, prob_pred = calibration_curve(y, s, n_bins=curves.CALIBRATION_BINS, strategy="uniform")
    np.testing.assert_allclose(np.array(got["positives"])[nonzero] / count[nonzero], prob_true, atol=1e-12)
    np.testing.assert_allclose(np.array(got["score_sum"])[nonzero] / count[nonzero], prob_pred, atol=1e-12)
    assert got["brier"] == pytest.approx(skm.brier_score_loss(y, s))
    a, b = curves.reliability(y[:7000], s[:7000]), curves.reliability(y[7000:], s[7000:])
    assert [x + z for x, z in zip(a["count"], b["count"])] == got["count"]
    assert [x + z for x, z in zip(a["positives"], b["positives"])] == got["positives"]


@pytest.mark.parametrize("classes", [[0, 1], ["a", "b", "c"], [2, 5, 9, 11]])
def test_confusion_matrix_is_sklearns(classes):
    rng = np.random.default_rng(5)
    y = rng.choice(classes, 3000)
    pred = np.where(rng.random(3000) < 0.7, y, rng.choice(classes, 3000))
    assert curves.confusion_matrix(y, pred, classes) == skm.confusion_matrix(y, pred, labels=classes).tolist()


def test_residual_histograms_share_edges_and_count_every_row():
    rng = np.random.default_rng(6)
    y = rng.normal(size=10_000)
    cand, base = y + rng.normal(0, 0.3, 10_000), y + rng.normal(0.2, 0.6, 10_000)
    cand[0] = 1e6  # an outlier is counted, not stretched into the axis
    got = curves.residual_histograms(y, {"candidate": cand, "baseline": base})
    edges = np.array(got["edges"])
    for role, pred in (("candidate", cand), ("baseline", base)):
        r = y - pred
        h = got[role]
        inside = (r >= edges[0]) & (r <= edges[-1])
        expected, _ = np.histogram(r[inside], edges)
        counts = np.array(h["counts"])
        counts[0] -= h["below"]
        counts[-1] -= h["above"]
        assert counts.tolist() == expected.tolist()
        assert sum(h["counts"]) == h["rows"] == 10_000
        assert h["rmse"] == pytest.approx(np.sqrt(np.mean(r ** 2)))
        assert h["mean"] == pytest.approx(r.mean())
    assert got["candidate"]["below"] == 1


def test_a_run_stores_curves_for_both_models_in_the_report(tmp_path):
    from gates.config import load_policy
    from gates.reporters.json_report import build_report, dumps, load_report
    from gates.runner import run_policy
    from tests.conftest import scored_frame

    frame = scored_frame(3000, cand_shift=0.4)
    frame.to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "gates.yaml").write_text(
        "version: 1\nmodel:\n  name: m\n  task: binary_classification\n"
        "  candidate: {predictions: cand_pred, scores: cand_score}\n"
        "  baseline: {predictions: base_pred, scores: base_score}\n  positive_label: 1\n"
        "data:\n  eval: eval.csv\n  target: label\n"
        "gates:\n  regression:\n    metrics:\n      roc_auc: {min: 0.5}\n")
    report = build_report(run_policy(load_policy(tmp_path / "gates.yaml")))
    (tmp_path / "report.json").write_text(dumps(report))
    loaded = load_report(tmp_path / "report.json")  # valid against the shipped schema
    c = loaded["curves"]
    y = frame["label"].to_numpy() == 1
    for role, col in (("candidate", "cand_score"), ("baseline", "base_score")):
        assert c["roc"][0][role]["auc"] == pytest.approx(skm.roc_auc_score(y, frame[col]))
        assert c["pr"][0][role]["average_precision"] == pytest.approx(skm.average_precision_score(y, frame[col]))
        pred = frame["cand_pred" if role == "candidate" else "base_pred"]
        assert c["confusion"][role] == skm.confusion_matrix(frame["label"], pred, labels=[0, 1]).tolist()
    assert c["roc"][0]["class"] == 1 and c["confusion"]["labels"] == [0, 1]
    assert len(json.dumps(c)) < 60_000
