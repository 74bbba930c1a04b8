"""The robustness gate, on real sklearn models saved with skops and a gates.yaml loaded from disk.

Every number is compared with an independent computation: the perturbation re-derived here from
its documented draws, the model called directly, and sklearn's metrics.
"""
from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from gates.checks.robustness import (
    GATE,
    MSG_BASELINE_NO_MODEL,
    MSG_CHURN,
    MSG_DIRECTIONAL_TASK,
    MSG_EMPTY,
    MSG_FLIP_REGRESSION,
    MSG_MARGIN_ALONE,
    MSG_METRICS_UNUSED,
    MSG_NAN_REJECTED,
    MSG_NO_BASELINE,
    MSG_NO_MODEL,
    MSG_NO_THRESHOLDS,
    MSG_NOT_FEATURE,
)
from gates.config import load_policy
from gates.context import EvalContext, Predictions, make_rng
from gates.errors import UserError
from gates.reporters.json_report import build_report, dumps, report_schema
from gates.results import CheckResult, Status
from gates.runner import run_policy
from gates.stats.weights import poisson_weights, row_keys
from tests.conftest import count_calls, trusted_types_for
from tests.row_draws import normals, uniforms

N = 3000
SEED = 7
FEATURES = ["customer_id", "age", "income", "region"]


# ---------------------------------------------------------------- data and models


def credit_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    """Synthetic credit data whose label leans on income, age, region and (spuriously) on the id."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "customer_id": rng.permutation(n) + 1000,
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50.0, 15.0, n),
        "region": rng.choice(["north", "south", "east"], n),
        "ticket": rng.integers(0, 10**6, n),
    })
    region = df["region"].map({"north": 0.5, "south": -0.5, "east": 0.0}).to_numpy()
    z = (0.08 * (df["income"] - 50) + 0.03 * (df["age"] - 45) + region
         + 2.5 * ((df["customer_id"] - 1000) / n - 0.5))
    df["label"] = (z + rng.logistic(size=n) > 0).astype(int)
    return df


def _columns(numeric: list[str], encoder: Any) -> ColumnTransformer:
    return ColumnTransformer([("num", StandardScaler(), numeric), ("cat", encoder, ["region"])], remainder="drop")


def lr_ignoring_id() -> Any:
    return make_pipeline(_columns(["age", "income"], OneHotEncoder(handle_unknown="ignore")),
                         LogisticRegression(max_iter=500))


def lr_using_id() -> Any:
    return make_pipeline(_columns(["customer_id", "age", "income"], OneHotEncoder(handle_unknown="ignore")),
                         LogisticRegression(max_iter=500))


def hgb() -> Any:
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return make_pipeline(ColumnTransformer([("num", "passthrough", ["age", "income"]), ("cat", enc, ["region"])]),
                         HistGradientBoostingClassifier(max_iter=40, random_state=0))


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Keep OpenMP to one thread: on a busy shared machine its spin-waits make HGB 20x slower."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit_frame()


@pytest.fixture(scope="module")
def models(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fit the models once and save each as .skops."""
    folder = tmp_path_factory.mktemp("models")
    X, y = frame[FEATURES], frame["label"]
    bump = (np.abs(frame["income"] - 50) < 10).astype(int)  # non-monotonic in income
    fitted = {"lr": lr_ignoring_id().fit(X, y), "lr_id": lr_using_id().fit(X, y), "hgb": hgb().fit(X, y),
              "hgb_bump": hgb().fit(X, bump)}
    paths = {}
    for name, est in fitted.items():
        paths[name] = folder / f"{name}.skops"
        skops.io.dump(est, paths[name])
    return paths


def load(path: Path) -> Any:
    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


PolicyWriter = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path, frame: pd.DataFrame) -> PolicyWriter:
    """Write eval.csv and a gates.yaml with the given robustness section; return the yaml's path."""

    def write_policy(section: str, *, candidate: str = "lr", baseline: str = "none", seed: int = SEED,
                     data: pd.DataFrame | None = None, task: str = "binary_classification",
                     target: str = "label", features: list[str] | None = None, models: dict[str, Path] | None = None
                     ) -> Path:
        (data if data is not None else frame).to_csv(tmp_path / "eval.csv", index=False)
        cand = str(models[candidate]) if models and candidate in models else candidate
        base = str(models[baseline]) if models and baseline in models else baseline
        feature_line = f"  features: [{', '.join(features)}]\n" if features else ""
        trust = trusted_types_for(*(Path(m) for m in (cand, base)))
        trust_line = f"  {trust}\n" if trust else ""
        text = (f"version: 1\nmodel:\n  name: credit\n  task: {task}\n  candidate: {cand}\n  baseline: {base}\n"
                f"{trust_line}"
                f"data:\n  eval: eval.csv\n  target: {target}\n{feature_line}seed: {seed}\n"
                f"gates:\n  robustness:\n{textwrap.indent(textwrap.dedent(section), '    ')}")
        path = tmp_path / "gates.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write_policy


class CountingContext(EvalContext):
    """A real EvalContext that records every predict call (role, rows)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, int]] = []

    def predict(self, role: Any, frame: pd.DataFrame) -> Predictions:
        self.calls.append((role, len(frame)))
        return super().predict(role, frame)


def run_gate(path: Path) -> tuple[dict[str, CheckResult], CountingContext]:
    policy = load_policy(path)
    ctx = CountingContext(policy)
    results = GATE.run(ctx, policy.plan("robustness"))
    return {r.id: r for r in results}, ctx


# ---------------------------------------------------------------- independent re-derivations


def noisy(X: pd.DataFrame, columns: list[str], scale: float, seed: int = SEED) -> pd.DataFrame:
    """Gaussian noise as documented: per column, N(0,1) per row key (its position) times scale x std."""
    names = ("robustness", "gaussian_noise", str(float(scale)))
    out = X.copy()
    for col in columns:
        out[col] = X[col].astype(float) + normals(seed, names, col, "noise", range(len(X))) * scale * X[col].std()
    return out


def blanked(X: pd.DataFrame, rate: float, impute: str | None, seed: int = SEED) -> pd.DataFrame:
    """Missing values as documented: per column, a row-keyed U(0,1) < rate mask on present cells."""
    names = ("robustness", "missing", str(float(rate)))
    out = X.copy()
    for col in X.columns:
        mask = (uniforms(seed, names, col, "mask", range(len(X))) < rate) & X[col].notna().to_numpy()
        if impute is None:
            out[col] = X[col].where(~mask)
        elif pd.api.types.is_numeric_dtype(X[col]):
            out[col] = X[col].where(~mask, X[col].median())
        else:
            out[col] = X[col].where(~mask, X[col].value_counts(sort=False).idxmax())
    return out


def positive_proba(model: Any, X: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(X)[:, list(model.classes_).index(1)]


# ---------------------------------------------------------------- perturbation measures


GAUSSIAN = """\
perturbations:
  gaussian_noise: {columns: numeric, scale: [0.05, 0.1, 0.2]}
metrics:
  roc_auc: {max_drop: 0.02}
  flip_rate: {max: 0.05}
  score_shift: {max: 0.05}
"""


def test_flip_rate_drop_and_shift_equal_an_independent_computation(write: PolicyWriter, models: dict[str, Path],
                                                                   frame: pd.DataFrame) -> None:
    results, _ = run_gate(write(GAUSSIAN, candidate="hgb", models=models))
    model = load(models["hgb"])
    X, y = frame[FEATURES], frame["label"].to_numpy()
    p0 = positive_proba(model, X)
    auc0 = roc_auc_score(y, p0)
    for scale in (0.05, 0.1, 0.2):
        p1 = positive_proba(model, noisy(X, ["customer_id", "age", "income"], scale))
        flip = np.mean((p1 >= 0.5) != (p0 >= 0.5))
        auc1 = roc_auc_score(y, p1)
        r_flip = results[f"robustness.flip_rate.max[gaussian_noise={scale}]"]
        r_auc = results[f"robustness.roc_auc.max_drop[gaussian_noise={scale}]"]
        r_shift = results[f"robustness.score_shift.max[gaussian_noise={scale}]"]
        assert r_flip.observed == pytest.approx(flip, abs=1e-12)
        assert r_flip.status is (Status.PASS if flip <= 0.05 else Status.FAIL)
        assert r_auc.observed == pytest.approx(auc1, abs=1e-12)
        assert r_auc.delta == pytest.approx(auc1 - auc0, abs=1e-12)
        assert r_auc.status is (Status.PASS if auc0 - auc1 <= 0.02 else Status.FAIL)
        assert r_shift.observed == pytest.approx(np.mean(np.abs(p1 - p0)), abs=1e-12)
        assert r_auc.blocking and r_auc.threshold == {"max_drop": 0.02}
    assert flip > 0  # the largest severity moves some labels, so the comparison is not vacuous


def test_details_hold_the_severity_curve(write: PolicyWriter, models: dict[str, Path]) -> None:
    results, _ = run_gate(write(GAUSSIAN, candidate="hgb", models=models))
    auc = results["robustness.roc_auc.max_drop[gaussian_noise=0.1]"].details
    flip = results["robustness.flip_rate.max[gaussian_noise=0.1]"].details
    assert auc["perturbation"] == "gaussian_noise" and auc["columns"] == ["customer_id", "age", "income"]
    assert [p["severity"] for p in auc["curve"]] == [0.05, 0.1, 0.2]
    by_sev = {p["severity"]: p for p in auc["curve"]}
    for sev in (0.05, 0.1, 0.2):
        assert by_sev[sev]["metric"] == results[f"robustness.roc_auc.max_drop[gaussian_noise={sev}]"].observed
        assert by_sev[sev]["flip_rate"] == results[f"robustness.flip_rate.max[gaussian_noise={sev}]"].observed
        assert by_sev[sev]["drop"] == pytest.approx(auc["clean_metric"] - by_sev[sev]["metric"])
    assert flip["metric"] == "roc_auc" and flip["curve"] == auc["curve"]


def test_one_batched_predict_per_perturbed_copy(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = GAUSSIAN + "invariance: [customer_id]\ndirectional: {income: increasing}\n"
    _, ctx = run_gate(write(section, candidate="hgb", models=models))
    # one clean predict, three severities, one invariance copy, one directional copy
    assert ctx.calls == [("candidate", N)] * 6


def test_missing_values_error_for_a_model_that_cannot_take_nan(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = "perturbations:\n  missing: {rate: 0.1}\nmetrics:\n  flip_rate: {max: 0.05}\n"
    results, _ = run_gate(write(section, candidate="lr", models=models))
    r = results["robustness.flip_rate.max[missing=0.1]"]
    assert r.status is Status.ERROR and r.reason == "model_rejects_nan"
    assert r.message.startswith(MSG_NAN_REJECTED.split("{problem}")[0].format(role="candidate"))
    assert r.details["curve"][0]["error"] == "model_rejects_nan"


@pytest.mark.parametrize(("candidate", "impute"), [("lr", "median"), ("hgb", None)])
def test_missing_values_measured_when_imputed_or_native(write: PolicyWriter, models: dict[str, Path],
                                                        frame: pd.DataFrame, candidate: str,
                                                        impute: str | None) -> None:
    extra = f", impute: {impute}" if impute else ""
    section = (f"perturbations:\n  missing: {{rate: 0.1{extra}}}\n"
               "metrics:\n  flip_rate: {max: 0.05}\n  accuracy: {max_drop: 0.01}\n")
    results, _ = run_gate(write(section, candidate=candidate, models=models))
    model = load(models[candidate])
    X, y = frame[FEATURES], frame["label"].to_numpy()
    l0 = model.predict(X)
    l1 = model.predict(blanked(X, 0.1, impute))
    assert results["robustness.flip_rate.max[missing=0.1]"].observed == pytest.approx(np.mean(l0 != l1), abs=1e-12)
    r = results["robustness.accuracy.max_drop[missing=0.1]"]
    assert r.observed == pytest.approx(accuracy_score(y, l1), abs=1e-12)
    assert r.delta == pytest.approx(accuracy_score(y, l1) - accuracy_score(y, l0), abs=1e-12)
    assert np.mean(l0 != l1) > 0


def test_category_swap_flip_rate_equals_independent(write: PolicyWriter, models: dict[str, Path],
                                                    frame: pd.DataFrame) -> None:
    section = "perturbations:\n  category_swap: {rate: [0.1, 0.3]}\nmetrics:\n  flip_rate: {max: 0.05}\n"
    results, _ = run_gate(write(section, candidate="lr", models=models))
    model = load(models["lr"])
    X = frame[FEATURES]
    codes, levels = pd.factorize(X["region"])
    for rate in (0.1, 0.3):
        names = ("robustness", "category_swap", str(rate))
        mask = uniforms(SEED, names, "region", "mask", range(N)) < rate
        offsets = 1 + np.floor(uniforms(SEED, names, "region", "offset", range(N)) * (len(levels) - 1)).astype(int)
        swapped = X.copy()
        swapped["region"] = np.asarray(levels)[np.where(mask, (codes + offsets) % len(levels), codes)]
        flips = np.mean(model.predict(swapped) != model.predict(X))
        assert results[f"robustness.flip_rate.max[category_swap={rate}]"].observed == pytest.approx(flips, abs=1e-12)
        assert results[f"robustness.flip_rate.max[category_swap={rate}]"].details["columns"] == ["region"]


def test_every_perturbation_runs_and_names_its_severities(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = """\
    perturbations:
      feature_dropout: {columns: [income], rate: 1.0}
      scale_shift: {columns: [income], factor: [10, 100], rate: 0.5}
      outliers: {rate: 0.05, factor: 2}
    metrics:
      flip_rate: {max: 0.5}
    """
    results, _ = run_gate(write(section, candidate="hgb", models=models))
    ids = set(results)
    assert ids == {"robustness.flip_rate.max[feature_dropout=1]", "robustness.flip_rate.max[scale_shift=10]",
                   "robustness.flip_rate.max[scale_shift=100]", "robustness.flip_rate.max[outliers=0.05]"}
    assert all(r.status in (Status.PASS, Status.FAIL) for r in results.values())
    assert results["robustness.flip_rate.max[feature_dropout=1]"].observed > 0.05  # income matters
    assert results["robustness.flip_rate.max[scale_shift=10]"].details["rate"] == 0.5


def test_a_perturbation_overrides_gate_thresholds_and_severity(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = """\
    perturbations:
      gaussian_noise: {scale: 0.1}
      scale_shift:
        columns: [income]
        severity: warn
        metrics: {flip_rate: {max: 0.9}, score_shift: {max: 0.0, severity: block}}
    metrics:
      flip_rate: {max: 0.01}
    """
    results, _ = run_gate(write(section, candidate="hgb", models=models))
    assert set(results) == {"robustness.flip_rate.max[gaussian_noise=0.1]", "robustness.flip_rate.max[scale_shift=100]",
                            "robustness.score_shift.max[scale_shift=100]"}
    shifted = results["robustness.flip_rate.max[scale_shift=100]"]
    assert shifted.threshold == {"max": 0.9, "severity": "warn"} and not shifted.blocking
    assert results["robustness.score_shift.max[scale_shift=100]"].blocking
    assert results["robustness.flip_rate.max[gaussian_noise=0.1]"].threshold == {"max": 0.01}


def test_same_seed_same_results_other_seed_other_perturbations(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = GAUSSIAN + "invariance: [customer_id]\n"
    first, _ = run_gate(write(section, candidate="hgb", models=models))
    second, _ = run_gate(write(section, candidate="hgb", models=models))
    other, _ = run_gate(write(section, candidate="hgb", models=models, seed=SEED + 1))
    assert first == second
    assert first.keys() == other.keys()
    assert any(first[k].observed != other[k].observed for k in first if "gaussian_noise" in k)


# ---------------------------------------------------------------- invariance and directional


def test_model_using_the_id_fails_invariance(write: PolicyWriter, models: dict[str, Path], frame: pd.DataFrame) -> None:
    results, _ = run_gate(write("invariance: [customer_id]\n", candidate="lr_id", models=models))
    r = results["robustness.invariance[customer_id]"]
    model = load(models["lr_id"])
    X = frame[FEATURES]
    shuffled = X.copy()
    order = np.argsort(uniforms(SEED, ("robustness", "invariance", "customer_id"), "customer_id", "shuffle",
                                range(N)), kind="stable")
    shuffled["customer_id"] = X["customer_id"].to_numpy()[order]
    moved = np.abs(positive_proba(model, shuffled) - positive_proba(model, X)) > 1e-6
    assert r.status is Status.FAIL and r.reason == "threshold_breached"
    assert r.observed == pytest.approx(moved.mean(), abs=1e-12) and r.observed > 0.5


def test_model_ignoring_the_id_passes_invariance(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = "invariance: {columns: [customer_id, ticket], method: replace}\n"
    results, _ = run_gate(write(section, candidate="lr", models=models))
    r = results["robustness.invariance[customer_id]"]
    assert r.status is Status.PASS and r.observed == 0.0 and r.details["rows_changed"] == 0
    unused = results["robustness.invariance[ticket]"]
    assert unused.status is Status.PASS and unused.reason == "not_a_feature"


def test_non_monotonic_model_fails_directional(write: PolicyWriter, models: dict[str, Path],
                                               frame: pd.DataFrame) -> None:
    results, _ = run_gate(write("directional: {income: increasing}\n", candidate="hgb_bump", models=models))
    r = results["robustness.directional[income]"]
    model = load(models["hgb_bump"])
    X = frame[FEATURES]
    raised = X.assign(income=X["income"] + X["income"].std())
    against = positive_proba(model, raised) - positive_proba(model, X) < -1e-6
    assert r.status is Status.FAIL
    assert r.observed == pytest.approx(against.mean(), abs=1e-12) and r.observed > 0.2
    assert r.details["step"] == pytest.approx(X["income"].std())


def test_monotonic_model_passes_its_direction_and_fails_the_other(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = """\
    directional:
      income: increasing
      age: {direction: decreasing, step: 5, max_fraction: 0.5, severity: warn}
    """
    results, _ = run_gate(write(section, candidate="lr", models=models))
    assert results["robustness.directional[income]"].status is Status.PASS
    age = results["robustness.directional[age]"]
    assert age.observed == 1.0 and age.status is Status.WARN and not age.blocking
    assert age.details["step"] == 5.0


# ---------------------------------------------------------------- severities, skips, other tasks


def test_gate_severity_warn_unless_a_check_says_block(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = """\
    severity: warn
    perturbations:
      gaussian_noise: {scale: 3.0}
    metrics:
      flip_rate: {max: 0.0}
      score_shift: {max: 0.0, severity: block}
    """
    results, _ = run_gate(write(section, candidate="hgb", models=models))
    flip = results["robustness.flip_rate.max[gaussian_noise=3]"]
    shift = results["robustness.score_shift.max[gaussian_noise=3]"]
    assert (flip.status, flip.blocking) == (Status.WARN, False)
    assert (shift.status, shift.blocking) == (Status.FAIL, True)
    assert flip.threshold == {"max": 0.0, "severity": "warn"}


def test_prediction_column_candidate_skips_every_check(write: PolicyWriter, frame: pd.DataFrame) -> None:
    data = frame.assign(p=frame["label"], s=0.5)
    path = write(GAUSSIAN + "invariance: [customer_id]\ndirectional: {income: increasing}\n",
                 candidate="{predictions: p, scores: s}", data=data, features=FEATURES)
    # robustness alone cannot block a prediction-column candidate, so such a policy is shadow-only
    path.write_text(path.read_text().replace("seed:", "mode: shadow\nseed:"), encoding="utf-8")
    results, ctx = run_gate(path)
    assert len(results) == 11 and ctx.calls == []
    assert all(r.status is Status.SKIPPED and r.reason == "no_model" and r.message == MSG_NO_MODEL
               for r in results.values())


def test_regression_task_measures_prediction_shift(write: PolicyWriter, tmp_path: Path, frame: pd.DataFrame) -> None:
    X, y = frame[["age", "income"]], frame["income"] * 0.5 + frame["age"]
    model = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X, y)
    skops.io.dump(model, tmp_path / "reg.skops")
    section = ("perturbations: {gaussian_noise: {scale: 0.1}}\n"
               "metrics: {mae: {max_drop: 0.5}, score_shift: {max: 1.0}}\n")
    results, _ = run_gate(write(section, candidate=str(tmp_path / "reg.skops"), task="regression", target="y",
                                data=X.assign(y=y)))
    pred0 = model.predict(X)
    pred1 = model.predict(noisy(X, ["age", "income"], 0.1))
    mae = results["robustness.mae.max_drop[gaussian_noise=0.1]"]
    assert mae.observed == pytest.approx(mean_absolute_error(y, pred1), rel=1e-12)
    assert mae.status is (Status.PASS if mean_absolute_error(y, pred1) - mean_absolute_error(y, pred0) <= 0.5
                          else Status.FAIL)
    shift = results["robustness.score_shift.max[gaussian_noise=0.1]"]
    assert shift.observed == pytest.approx(np.mean(np.abs(pred1 - pred0)), rel=1e-12)


def test_multiclass_score_shift_is_half_the_l1_distance(write: PolicyWriter, tmp_path: Path) -> None:
    iris = load_iris(as_frame=True)
    X, y = iris.data, iris.target
    X.columns = ["sl", "sw", "pl", "pw"]
    model = LogisticRegression(max_iter=1000).fit(X, y)
    skops.io.dump(model, tmp_path / "iris.skops")
    section = ("perturbations: {gaussian_noise: {scale: 0.3}}\n"
               "metrics: {score_shift: {max: 0.1}, log_loss: {max_relative_drop: 0.5}}\n")
    results, _ = run_gate(write(section, candidate=str(tmp_path / "iris.skops"), task="multiclass_classification",
                                target="species", data=X.assign(species=y)))
    p0 = model.predict_proba(X)
    p1 = model.predict_proba(noisy(X, list(X.columns), 0.3))
    shift = results["robustness.score_shift.max[gaussian_noise=0.3]"]
    assert shift.observed == pytest.approx(np.mean(0.5 * np.abs(p1 - p0).sum(axis=1)), rel=1e-12)
    ll = results["robustness.log_loss.max_relative_drop[gaussian_noise=0.3]"]
    assert ll.observed == pytest.approx(log_loss(y, p1), rel=1e-9)
    assert ll.delta == pytest.approx(log_loss(y, p1) - log_loss(y, p0), rel=1e-9)


# ---------------------------------------------------------------- versus production


def test_no_worse_than_baseline_is_paired_on_the_same_perturbation(write: PolicyWriter, models: dict[str, Path],
                                                                   frame: pd.DataFrame) -> None:
    section = """\
    multiple_testing: none
    perturbations:
      gaussian_noise: {scale: 0.3}
    metrics:
      roc_auc: {no_worse_than_baseline: true, margin: 0.05}
      flip_rate: {no_worse_than_baseline: true, margin: 0.01}
      accuracy: {no_worse_than_baseline: true, margin: 0.02}
    """
    results, ctx = run_gate(write(section, candidate="hgb", baseline="lr", models=models))
    assert sorted(ctx.calls) == [("baseline", N)] * 2 + [("candidate", N)] * 2
    X, y = frame[FEATURES], frame["label"].to_numpy()
    Xn = noisy(X, ["customer_id", "age", "income"], 0.3)
    cand, base = load(models["hgb"]), load(models["lr"])
    c0, c1, b0, b1 = (positive_proba(m, x) for m, x in ((cand, X), (cand, Xn), (base, X), (base, Xn)))
    drop_c = roc_auc_score(y, c0) - roc_auc_score(y, c1)
    drop_b = roc_auc_score(y, b0) - roc_auc_score(y, b1)
    auc = results["robustness.roc_auc.no_worse_than_baseline[gaussian_noise=0.3]"]
    assert (auc.observed, auc.baseline) == pytest.approx((drop_c, drop_b), abs=1e-12)
    assert auc.delta == pytest.approx(drop_c - drop_b, abs=1e-12)
    assert auc.ci_method == "delong" and auc.ci[0] < auc.delta < auc.ci[1]
    assert auc.half_width == pytest.approx((auc.ci[1] - auc.ci[0]) / 2)
    expected = Status.PASS if auc.ci[1] <= 0.05 else (Status.FAIL if auc.ci[0] > 0.05 else Status.INCONCLUSIVE)
    assert auc.status is expected
    flips = ((c1 >= 0.5) != (c0 >= 0.5)).astype(float) - ((b1 >= 0.5) != (b0 >= 0.5)).astype(float)
    flip = results["robustness.flip_rate.no_worse_than_baseline[gaussian_noise=0.3]"]
    half = 1.959963984540054 * flips.std(ddof=1) / math.sqrt(N)
    assert flip.delta == pytest.approx(flips.mean(), abs=1e-12)
    assert flip.ci == pytest.approx((flips.mean() - half, flips.mean() + half), abs=1e-9)
    acc = results["robustness.accuracy.no_worse_than_baseline[gaussian_noise=0.3]"]
    acc_drop = accuracy_score(y, c0 >= 0.5) - accuracy_score(y, c1 >= 0.5)
    assert acc.observed == pytest.approx(acc_drop, abs=1e-12)
    assert acc.ci_method == "bootstrap-multinomial" and acc.ci[0] <= acc.delta <= acc.ci[1]
    assert auc.details["curve"][0]["baseline"]["metric"] == pytest.approx(roc_auc_score(y, b1), abs=1e-12)


def test_no_worse_than_baseline_on_a_row_mean_resamples_whole_clusters(write: PolicyWriter, models: dict[str, Path],
                                                                       frame: pd.DataFrame) -> None:
    """With data.cluster the log loss comparison's replicates are a cluster bootstrap: one Poisson(1)
    count per household per replicate, given to each of its rows (here, household by household)."""
    section = """\
    multiple_testing: none
    perturbations:
      gaussian_noise: {scale: 0.3}
    metrics:
      log_loss: {no_worse_than_baseline: true, margin: 0.05}
    """
    households = np.random.default_rng(3).permutation(N) // 6  # 500 households of 6 rows
    data = frame.assign(household=[f"h{h}" for h in households])
    path = write(section, candidate="hgb", baseline="lr", models=models, data=data)
    path.write_text(path.read_text().replace("  target: label\n", "  target: label\n  cluster: household\n"))
    results, _ = run_gate(path)
    cid = "robustness.log_loss.no_worse_than_baseline[gaussian_noise=0.3]"
    got = results[cid]
    X, y = frame[FEATURES], frame["label"].to_numpy()
    Xn = noisy(X, ["customer_id", "age", "income"], 0.3)  # draws stay per row (keyed by position)
    cand, base = load(models["hgb"]), load(models["lr"])
    probs = [positive_proba(m, x) for m, x in ((cand, X), (cand, Xn), (base, X), (base, Xn))]
    losses = np.array([-np.log(np.where(y == 1, p, 1 - p)) for p in probs])  # (4, N) per-row log loss
    w = np.array([-1.0, 1.0, 1.0, -1.0])  # the candidate's rise in log loss minus the baseline's
    assert got.delta == pytest.approx(float(w @ [log_loss(y, p) for p in probs]), abs=1e-12)
    n_boot = got.details["replicates"]
    seed = int(make_rng(SEED, cid).integers(0, 2**63))  # the contrast's first draw from its stream
    codes, names = pd.factorize(data["household"])
    counts = poisson_weights(row_keys(len(names), values=np.asarray(names, dtype=object)), 0, n_boot, seed)
    rows = counts.astype(np.float64)[:, codes]  # every row weighs what its household weighs
    reps = ((rows @ losses.T) / rows.sum(axis=1, keepdims=True)) @ w
    assert got.ci_method == "bootstrap-clusters" and n_boot >= 2000
    assert got.ci == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), rel=1e-9)


def test_no_worse_than_baseline_without_baseline_is_skipped(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = ("perturbations: {gaussian_noise: {scale: 0.1}}\n"
               "metrics: {flip_rate: {max: 0.5, no_worse_than_baseline: true}}\n")
    results, ctx = run_gate(write(section, candidate="hgb", models=models))
    r = results["robustness.flip_rate.no_worse_than_baseline[gaussian_noise=0.1]"]
    assert r.status is Status.SKIPPED and r.message == MSG_NO_BASELINE and r.reason == "no_baseline"
    assert results["robustness.flip_rate.max[gaussian_noise=0.1]"].status is Status.PASS
    assert ("baseline", N) not in ctx.calls


def test_holm_adjusts_the_levels_of_the_baseline_comparisons(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = """\
    perturbations:
      gaussian_noise: {scale: [0.1, 0.3]}
    metrics:
      flip_rate: {no_worse_than_baseline: true, margin: 0.01}
      score_shift: {no_worse_than_baseline: true, margin: 0.01}
    """
    results, _ = run_gate(write(section, candidate="hgb", baseline="lr", models=models))
    levels = sorted(r.adjusted_confidence or r.confidence for r in results.values())
    assert levels == pytest.approx([1 - 0.05 / k for k in (1, 2, 3, 4)])


def test_baseline_given_as_columns_cannot_be_perturbed(write: PolicyWriter, models: dict[str, Path],
                                                       frame: pd.DataFrame) -> None:
    section = "perturbations: {gaussian_noise: {scale: 0.1}}\nmetrics: {flip_rate: {no_worse_than_baseline: true}}\n"
    path = write(section, candidate="hgb", baseline="{predictions: label}", models=models, features=FEATURES)
    results, ctx = run_gate(path)
    r = results["robustness.flip_rate.no_worse_than_baseline[gaussian_noise=0.1]"]
    assert r.status is Status.SKIPPED and r.reason == "no_model" and r.message == MSG_BASELINE_NO_MODEL
    assert all(role == "candidate" for role, _ in ctx.calls)


def test_columns_that_do_not_fit_the_model_are_check_errors(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = """\
    perturbations:
      gaussian_noise: {columns: [region]}
      outliers: {columns: [income]}
    metrics:
      flip_rate: {max: 0.1}
    directional: {region: increasing}
    """
    results, _ = run_gate(write(section, candidate="lr", models=models))
    missing = write(section.replace("[income]", "[height]"), candidate="lr", models=models)
    with pytest.raises(UserError, match=r"gates.robustness.perturbations.outliers.columns\[0\]: column 'height' is not"):
        run_gate(missing)
    noise = results["robustness.flip_rate.max[gaussian_noise=0.1]"]
    assert noise.status is Status.ERROR and noise.reason == "unknown_column" and "'region'" in noise.message
    assert "gates.yaml:" in noise.message
    assert results["robustness.directional[region]"].reason == "not_numeric"


def test_results_render_into_a_schema_valid_report(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = GAUSSIAN + "invariance: [customer_id]\ndirectional: {income: increasing}\n"
    policy = load_policy(write(section, candidate="hgb", baseline="lr", models=models))
    report = build_report(run_policy(policy))
    jsonschema.validate(json.loads(dumps(report)), report_schema())
    assert {c["gate"] for c in report["checks"] if not c["id"].startswith("data.target.")} == {"robustness"}


def test_the_section_is_parsed_once_per_run_into_a_frozen_plan(write: PolicyWriter, models: dict[str, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from gates.checks.robustness import _plan

    parsed = count_calls(monkeypatch, _plan, "parse_plan")
    section = GAUSSIAN + "invariance: [customer_id]\ndirectional: {income: increasing}\n"
    policy = load_policy(write(section, candidate="hgb", baseline="lr", models=models))
    result = run_policy(policy)
    assert len(parsed) == 1 and parsed[0][0] == policy.gates["robustness"]
    plan = policy.plan("robustness")
    assert isinstance(plan, _plan.Plan)
    assert [(t.measure, t.bound) for t in plan.perturbations[0].thresholds] == [
        ("roc_auc", 0.02), ("flip_rate", 0.05), ("score_shift", 0.05)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.invariance = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.perturbations[0].thresholds[0].is_blocking = False  # type: ignore[misc]
    ids = [c.id for c in result.verdict.checks if c.gate == "robustness"]
    assert "robustness.roc_auc.max_drop[gaussian_noise=0.1]" in ids and "robustness.invariance[customer_id]" in ids
    # a mapping given to run directly is planned there, into the same checks
    assert [r.id for r in GATE.run(EvalContext(policy), policy.gates["robustness"])] == ids


def test_a_gate_without_a_plan_hook_keeps_its_section_as_plan(write: PolicyWriter, models: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from gates.checks import gate_registry

    validated: list[object] = []

    def validate(spec: Any, setup: Any) -> None:
        validated.append(spec)
        GATE.validate(spec, setup)

    monkeypatch.setitem(gate_registry(), "robustness",  # type: ignore[index]
                        dataclasses.replace(GATE, validate=validate, plan=None))
    policy = load_policy(write(GAUSSIAN, candidate="hgb", models=models))
    assert validated == [policy.gates["robustness"]] and policy.plan("robustness") is policy.gates["robustness"]
    with pytest.raises(UserError, match=MSG_EMPTY):
        load_policy(write("{}\n", candidate="hgb", models=models))
    ids = [c.id for c in run_policy(policy).verdict.checks if c.gate == "robustness"]
    assert "robustness.flip_rate.max[gaussian_noise=0.2]" in ids and len(ids) == 9


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(("section", "message"), [
    ("{}\n", MSG_EMPTY),
    ("metrics: {flip_rate: {max: 0.1}}\ninvariance: [age]\n", MSG_METRICS_UNUSED),
    ("perturbations: {gaussian_noise: {scale: 0.1}}\n", MSG_NO_THRESHOLDS),
    ("perturbations: {missing: {rate: 0.1}}\nmetrics: {flip_rate: {max: 0.1, margin: 0.01}}\n", MSG_MARGIN_ALONE),
    ("perturbations: {missing: {rate: 0.1}}\nmetrics: {churn: {max: 0.1}}\n", MSG_CHURN.format(name="churn")),
    ("perturbations: {gaussian_noise: {columns: [height]}}\nmetrics: {flip_rate: {max: 0.1}}\n",
     MSG_NOT_FEATURE.format(col="height")),
])
def test_config_errors_are_located(write: PolicyWriter, models: dict[str, Path], section: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        load_policy(write(section, candidate="lr", models=models, features=FEATURES))
    assert message in str(err.value) and str(err.value).startswith("gates.yaml:")


def test_unknown_metric_suggests_the_near_name(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = "perturbations: {missing: {rate: 0.1}}\nmetrics: {roc_acu: {max_drop: 0.1}}\n"
    with pytest.raises(UserError, match="did you mean 'roc_auc'"):
        load_policy(write(section, candidate="lr", models=models))


def test_misplaced_threshold_is_named(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = "perturbations: {missing: {rate: 0.1}}\nmetrics: {flip_rate: {max_drop: 0.1}}\n"
    with pytest.raises(UserError, match="'max_drop' does not apply to flip_rate"):
        load_policy(write(section, candidate="lr", models=models))


def test_task_specific_errors(write: PolicyWriter, models: dict[str, Path]) -> None:
    flip = "perturbations: {missing: {rate: 0.1}}\nmetrics: {flip_rate: {max: 0.1}}\n"
    with pytest.raises(UserError, match=MSG_FLIP_REGRESSION):
        load_policy(write(flip, candidate="lr", models=models, task="regression"))
    with pytest.raises(UserError, match=MSG_DIRECTIONAL_TASK):
        load_policy(write("directional: {income: increasing}\n", candidate="lr", models=models,
                          task="multiclass_classification"))


def test_schema_rejects_a_parameter_of_another_perturbation(write: PolicyWriter, models: dict[str, Path]) -> None:
    section = "perturbations: {gaussian_noise: {rate: 0.1}}\nmetrics: {flip_rate: {max: 0.1}}\n"
    with pytest.raises(UserError, match="unknown key 'rate'"):
        load_policy(write(section, candidate="lr", models=models))


def test_design_example_section_loads(write: PolicyWriter, models: dict[str, Path]) -> None:
    """The DESIGN section 4 example, verbatim."""
    section = """\
    severity: warn
    perturbations:
      gaussian_noise: {columns: numeric, scale: [0.05, 0.1, 0.2]}
      missing: {rate: 0.1}
      category_swap: {rate: 0.05}
    invariance: [customer_id]
    directional: {income: increasing}
    metrics:
      roc_auc: {max_drop: 0.02}
      flip_rate: {max: 0.05}
    """
    path = write(section, candidate="hgb", models=models)
    path.write_text(path.read_text().replace("gates:\n", "mode: shadow\ngates:\n"))  # no blocking check
    results, _ = run_gate(path)
    assert len(results) == 2 * 5 + 2
    assert all(not r.blocking for r in results.values())
