"""Drift statistics against scipy and the textbook formulas, on bins cut independently here."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from gates.checks.data import drift
from gates.results import Status
from tests.gates.checks.data.conftest import RunData


def frames(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a reference and an eval frame whose columns drift by different amounts."""
    rng = np.random.default_rng(seed)

    def make(shift: float, size: int, cats: list[str], probs: list[float]) -> pd.DataFrame:
        x = rng.normal(shift, 1.0, size)
        x[rng.random(size) < 0.02] = np.nan
        return pd.DataFrame({
            "x": x,
            "y": rng.exponential(1.0 + shift, size),
            "z": rng.integers(0, 4, size).astype(float) + (rng.random(size) < shift / 3),
            "cat": rng.choice(cats, size, p=probs),
            "target": rng.normal(size=size),
        })

    ref = make(0.0, n, ["a", "b", "c"], [0.5, 0.3, 0.2])
    ev = make(0.3, n // 2, ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1])
    return ref, ev


def quantile_counts(ref: np.ndarray, ev: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin both samples at the reference's quantile cut points, [lo, hi), outer bins open."""
    cuts = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    edges = np.concatenate([[-np.inf], cuts, [np.inf]])
    count = lambda v: pd.Series(pd.cut(v, edges, right=False)).value_counts(sort=False).to_numpy()  # noqa: E731
    return count(ref), count(ev)


def psi_direct(r: np.ndarray, e: np.ndarray) -> float:
    p = np.maximum(r / r.sum(), drift.PSI_FLOOR)
    q = np.maximum(e / e.sum(), drift.PSI_FLOOR)
    return float(sum((qi - pi) * np.log(qi / pi) for pi, qi in zip(p, q)))


def test_gate_statistics_equal_independent_computations(run_data: RunData) -> None:
    ref, ev = frames()
    res = run_data(ev, """
        drift:
          bins: 8
          columns:
            x: {method: psi, max: 0.5}
            y: {method: ks, max: 0.5, min_p_value: 0.01}
            z: {method: wasserstein, max: 1}
            cat: {method: chi2, max: 1000, min_p_value: 0.05}
            target: {method: js, max: 0.5}
        """, reference=ref)
    x_r, x_e = ref["x"].dropna().to_numpy(), ev["x"].dropna().to_numpy()
    r, e = quantile_counts(x_r, x_e, 8)
    assert res["data.drift.max[x]"].observed == pytest.approx(psi_direct(r, e), rel=1e-12)
    assert res["data.drift.max[x]"].ci_method == "psi"

    ks = stats.ks_2samp(ref["y"], ev["y"], method="asymp")
    assert res["data.drift.max[y]"].observed == pytest.approx(ks.statistic, rel=1e-12)
    assert res["data.drift.max[y]"].details["p_value"] == pytest.approx(ks.pvalue, rel=1e-9)
    assert res["data.drift.min_p_value[y]"].observed == res["data.drift.max[y]"].observed
    assert res["data.drift.min_p_value[y]"].status is (Status.PASS if ks.pvalue >= 0.01 else Status.FAIL)

    w = stats.wasserstein_distance(ref["z"], ev["z"]) / np.std(ref["z"])
    assert res["data.drift.max[z]"].observed == pytest.approx(w, rel=1e-12)

    table = np.array([[(ref["cat"] == c).sum() for c in "abcd"], [(ev["cat"] == c).sum() for c in "abcd"]])
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    cat = res["data.drift.min_p_value[cat]"]
    assert cat.observed == pytest.approx(chi2, rel=1e-12)
    assert cat.details["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert cat.details["dof"] == dof == 3
    assert cat.status is Status.FAIL  # "d" never occurs in the reference
    assert {"bin": drift.UNSEEN, "reference": 0.0, "eval": pytest.approx((ev["cat"] == "d").mean())} in \
        cat.details["bins"]

    r, e = quantile_counts(ref["target"].to_numpy(), ev["target"].to_numpy(), 8)
    assert res["data.drift.max[target]"].observed == pytest.approx(jensenshannon(r, e, base=2), rel=1e-9)


def test_default_method_per_column_type_and_thresholds(run_data: RunData) -> None:
    ref, ev = frames()
    res = run_data(ev, "drift: {}", reference=ref)
    assert res["data.drift.max[x]"].ci_method == "psi"
    assert res["data.drift.max[x]"].threshold == {"max": drift.DEFAULT_MAX["psi"]}
    assert res["data.drift.max[cat]"].ci_method == "js"
    assert res["data.drift.max[cat]"].threshold == {"max": drift.DEFAULT_MAX["js"]}
    assert "data.drift.max[target]" in res  # the target drifts too (prior shift)


def test_default_numeric_only_method_falls_back_for_categories(run_data: RunData) -> None:
    ref, ev = frames()
    res = run_data(ev, "drift: {default: {method: ks, max: 0.05}, exclude: [target]}", reference=ref)
    assert res["data.drift.max[x]"].ci_method == "ks"
    assert res["data.drift.max[x]"].threshold == {"max": 0.05}
    cat = res["data.drift.max[cat]"]
    assert cat.ci_method == "js" and cat.threshold == {"max": drift.DEFAULT_MAX["js"]}
    assert "needs numbers" in cat.details["note"]
    assert "data.drift.max[target]" not in res


def test_identical_data_has_no_drift(run_data: RunData) -> None:
    ref, _ = frames()
    res = run_data(ref, """
        drift: {default: {method: psi}, columns: {y: {method: ks}, z: {method: wasserstein}, cat: {method: chi2}}}
        """, reference=ref)
    for check_id in ("data.drift.max[x]", "data.drift.max[y]", "data.drift.max[z]"):
        assert res[check_id].observed == 0.0
        assert res[check_id].status is Status.PASS
    assert res["data.drift.min_p_value[cat]"].details["p_value"] == pytest.approx(1.0)


def test_min_rows_skips_with_a_reason(run_data: RunData) -> None:
    ref, ev = frames(n=400)
    res = run_data(ev, "drift: {min_rows: 250, columns: {x: {method: psi}}}", reference=ref)
    x = res["data.drift.max[x]"]
    assert x.status is Status.SKIPPED
    assert x.reason == "too_few_rows"
    assert x.message == drift.MSG_TOO_FEW.format(what="the eval data", n=int(ev["x"].notna().sum()), col="x",
                                                 min_rows=250)


def test_type_change_unshared_columns_and_constant_reference(run_data: RunData) -> None:
    ref, ev = frames()
    ev = ev.assign(x=ev["x"].astype(str), const=1.0, only_eval=0.0)
    ref = ref.assign(const=1.0)
    res = run_data(ev, """
        drift: {columns: {const: {method: wasserstein}}}
        """, reference=ref.assign(const2=2.0))
    assert res["data.drift.max[x]"].status is Status.ERROR
    assert res["data.drift.max[x]"].reason == "type_mismatch"
    assert not any("only_eval" in i or "const2" in i for i in res)  # unnamed: only shared columns drift
    assert res["data.drift.max[const]"].observed == 0.0  # constant and equal: no drift
    res = run_data(ev.assign(const=2.0), "drift: {columns: {const: {method: wasserstein}}}", reference=ref)
    assert res["data.drift.max[const]"].status is Status.ERROR
    assert res["data.drift.max[const]"].reason == "undefined"


def test_numeric_bins_come_from_the_reference_only() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=10_000)
    edges = drift.numeric_edges(ref, 10)
    assert len(edges) == 9
    h = drift.numeric_histogram(ref, rng.normal(5, 1, 100), 10)
    assert h.reference.tolist() == [1000] * 10  # deciles of the reference
    assert h.eval[-1] == 100  # far-away eval values land in the open last bin
    discrete = drift.numeric_histogram(np.array([0.0, 1.0] * 50), np.array([1.0, 1.0, 2.0]), 10)
    assert discrete.reference.tolist() == [50, 50]  # one bin per distinct value
    assert discrete.eval.tolist() == [0, 3]


def test_a_column_whose_first_values_repeat_still_gets_its_own_bins() -> None:
    """Few distinct values among the first rows decide nothing: the whole column is counted."""
    head = np.repeat([0.0, 1.0], drift.FEW_DISTINCT_PREFIX)  # two values where the prefix looks
    many = np.concatenate([head, np.arange(2.0, 1002.0)])
    want = np.unique(np.quantile(many, np.arange(1, 10) / 10))
    assert np.array_equal(drift.numeric_edges(many, 10), want)
    few = np.concatenate([head, np.repeat([2.0, 3.0, 4.0], 400)])
    assert drift.numeric_edges(few, 10).tolist() == [1.0, 2.0, 3.0, 4.0]  # one bin per distinct value
    varied = np.random.default_rng(2).normal(size=5000)
    assert np.array_equal(drift.numeric_edges(varied, 10), np.quantile(varied, np.arange(1, 10) / 10))


def test_categories_beyond_the_cap_share_other() -> None:
    ref = pd.Series(list("aaaabbbcd"))
    ev = pd.Series(list("abcdez"))
    h = drift.categorical_histogram(ref, ev, max_categories=2)
    assert h.labels == ["a", "b", drift.OTHER, drift.UNSEEN]
    assert h.reference.tolist() == [4, 3, 2, 0]
    assert h.eval.tolist() == [1, 1, 2, 2]


def test_method_thresholds_do_not_leak_between_methods() -> None:
    spec = {"default": {"method": "psi", "max": 0.3}, "columns": {"a": {"method": "wasserstein"}, "b": {"max": 0.4}}}
    from gates.checks.data._plan import plan_drift

    a = drift.resolve_rule(plan_drift(spec, "block"), "a", "numeric")
    b = drift.resolve_rule(plan_drift(spec, "block"), "b", "numeric")
    c = drift.resolve_rule(plan_drift(spec, "warn"), "c", "categorical")
    assert (a.method, a.max) == ("wasserstein", drift.DEFAULT_MAX["wasserstein"])
    assert (b.method, b.max) == ("psi", 0.4)
    assert (c.method, c.max, c.blocking) == ("psi", 0.3, False)
