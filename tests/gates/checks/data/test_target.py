"""The target's own checks: rows without a target are never scored, labels must be the models' classes.

Every number is compared with scikit-learn or fairlearn on the rows that have a target, computed
here from the data the test builds.
"""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from gates.checks.data import target as target_checks
from gates.config import load_policy
from gates.context import EvalContext
from gates.errors import UserError
from gates.runner import run_policy

FEATURES = ["a", "b", "c"]
N = 1200


def features(n: int = N, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    y = (X["a"] + 0.7 * rng.normal(size=n) > 0).astype(int).to_numpy()
    return X.assign(sex=np.where(rng.random(n) < 0.5, "F", "M")), y


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Logistic regressions on 0/1, on 'no'/'yes' and on three classes 0/1/2, saved as .skops."""
    folder = tmp_path_factory.mktemp("models")
    X, y = features(seed=1)
    fits = {"int": y, "int_base": y, "str": np.where(y == 1, "yes", "no"), "str_base": np.where(y == 1, "yes", "no")}
    out = {}
    for name, labels in fits.items():
        c = 0.05 if name.endswith("base") else 1.0
        out[name] = folder / f"{name}.skops"
        sio.dump(LogisticRegression(C=c).fit(X[FEATURES], labels), out[name])
    return out


Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path, models: dict[str, Path]) -> Write:
    """Write eval.csv and gates.yaml; ``model`` picks the candidate/baseline pair ('int' or 'str')."""

    def write_policy(frame: pd.DataFrame, *, model: str = "int", gates: str | None = None,
                     positive: str | None = "1", task: str = "binary_classification",
                     candidate: str | None = None, baseline: str | None = None) -> Path:
        frame.to_csv(tmp_path / "eval.csv", index=False)
        cand = candidate or str(models[model])
        base = baseline or str(models[f"{model}_base"])
        pos = f"  positive_label: {positive}\n" if positive is not None else ""
        body = (f"version: 1\nmodel:\n  name: m\n  task: {task}\n  candidate: {cand}\n  baseline: {base}\n{pos}"
                "data:\n  eval: eval.csv\n  target: y\n  sensitive: [sex]\nseed: 3\ngates:\n"
                + textwrap.indent(textwrap.dedent(gates or REGRESSION).strip("\n"), "  ") + "\n")
        path = tmp_path / "gates.yaml"
        path.write_text(body, encoding="utf-8")
        return path

    return write_policy


REGRESSION = """
regression:
  bootstrap: 200
  metrics: {roc_auc: {min: 0.5, max_drop: 0.05}, accuracy: {min: 0.5}}
"""
FAIRNESS = """
fairness:
  bootstrap: 200
  groups: [sex]
  metrics: {demographic_parity_difference: {max: 0.9}}
"""
ROBUSTNESS = """
robustness:
  perturbations: {gaussian_noise: {columns: [a, b], scale: [0.5]}}
  metrics: {accuracy: {max_drop: 0.5}}
"""


def with_gaps(labels: np.ndarray, every: int = 7) -> pd.Series:
    """Return ``labels`` as a column with a missing value every ``every`` rows (as a CSV reads it back)."""
    out = pd.Series(labels, dtype=object)
    out[::every] = None
    return out


def by_id(results: Any) -> dict[str, Any]:
    return {c.id: c for c in results.verdict.checks}


def line_of(path: Path, key: str) -> str:
    """Return ``gates.yaml:N`` of the first line of ``path`` that starts with ``key``."""
    lines = path.read_text().splitlines()
    return f"{path.name}:{next(i for i, line in enumerate(lines, 1) if line.strip().startswith(key))}"


def proba(path: Path, X: pd.DataFrame, positive: Any) -> np.ndarray:
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    return model.predict_proba(X[FEATURES])[:, list(model.classes_).index(positive)]


# ---------------------------------------------------------------- not_null


@pytest.mark.parametrize("kind", ["int", "str"])
def test_rows_without_a_target_fail_not_null_and_are_never_scored(write: Write, models: dict[str, Path],
                                                                  kind: str) -> None:
    X, y = features()
    labels = y if kind == "int" else np.where(y == 1, "yes", "no")
    frame = X.assign(y=with_gaps(labels))
    positive = "1" if kind == "int" else "'yes'"
    result = run_policy(load_policy(write(frame, model=kind, positive=positive)))
    checks = by_id(result)
    kept = frame["y"].notna().to_numpy()
    not_null = checks["data.target.not_null"]
    assert not_null.status.value == "fail" and not_null.blocking
    assert not_null.observed == int((~kept).sum()) == 172
    assert not_null.details["scored_rows"] == int(kept.sum())
    assert [e["index"] for e in not_null.details["examples"]] == list(np.flatnonzero(~kept)[:20])
    assert str(int((~kept).sum())) in not_null.message and str(int(kept.sum())) in not_null.message
    assert not result.verdict.passed
    pos = 1 if kind == "int" else "yes"
    y_kept = np.asarray(labels)[kept]
    auc = roc_auc_score(y_kept == pos, proba(models[kind], X[kept], pos))
    assert checks["regression.roc_auc.min"].observed == pytest.approx(auc, abs=1e-12)
    assert checks["regression.roc_auc.min"].details["rows"] == int(kept.sum())
    said_positive = proba(models[kind], X[kept], pos) >= 0.5
    assert checks["regression.accuracy.min"].observed == pytest.approx(accuracy_score(y_kept == pos, said_positive))
    assert checks["data.target.labels"].status.value == "pass"


def test_fairness_and_robustness_score_only_rows_with_a_target(write: Write, models: dict[str, Path]) -> None:
    from fairlearn.metrics import demographic_parity_difference

    X, y = features()
    frame = X.assign(y=with_gaps(y, every=5))
    result = run_policy(load_policy(write(frame, gates=FAIRNESS + ROBUSTNESS)))
    checks = by_id(result)
    kept = frame["y"].notna().to_numpy()
    dp = checks["fairness.demographic_parity_difference.max[sex]"]
    assert dp.status.value == "pass", dp.message
    pred = (proba(models["int"], X[kept], 1) >= 0.5).astype(int)
    expected = demographic_parity_difference(y[kept], pred, sensitive_features=X["sex"][kept])
    assert dp.observed == pytest.approx(expected, abs=1e-12)
    assert dp.details["rows"] == int(kept.sum()) == sum(g["size"] for g in dp.details["groups"])
    robust = [c for c in result.verdict.checks if c.gate == "robustness"]
    assert robust and all(c.status.value in ("pass", "fail") for c in robust), [c.message for c in robust]
    assert {c.details["rows"] for c in robust} == {int(kept.sum())}


def test_whole_number_floats_are_integer_labels(write: Write) -> None:
    X, y = features()
    frame = X.assign(y=with_gaps(y).astype(float))
    ctx = EvalContext(load_policy(write(frame)))
    assert ctx.y_true.dtype.kind == "i" and set(ctx.y_true.tolist()) == {0, 1}
    assert ctx.n_rows == int(frame["y"].notna().sum()) and len(ctx.eval_frame) == N
    assert ctx.data_info["eval"]["rows"] == N


def test_infinite_regression_targets_are_not_scored(write: Write, tmp_path: Path) -> None:
    X, _ = features()
    yy = X["a"].to_numpy() * 2.0
    yy[[3, 10]] = [np.inf, -np.inf]
    yy[20] = np.nan
    frame = X.assign(y=yy, pred=X["a"] * 2.0)
    gates = "regression:\n  bootstrap: 200\n  metrics: {rmse: {max: 1.0}}"
    path = write(frame, task="regression", candidate="{predictions: pred}", baseline="none", gates=gates,
                 positive=None)
    checks = by_id(run_policy(load_policy(path)))
    assert checks["data.target.not_null"].observed == 3
    assert checks["regression.rmse.max"].observed == pytest.approx(0.0, abs=1e-12)
    assert checks["regression.rmse.max"].details["rows"] == N - 3
    assert "data.target.labels" not in checks


def test_every_target_missing_is_a_config_error(write: Write) -> None:
    X, _ = features(50)
    path = write(X.assign(y=np.nan))
    with pytest.raises(UserError) as err:
        run_policy(load_policy(path))
    assert err.value.location == line_of(path, "target:") and "all 50 rows" in err.value.message


def test_string_target_in_a_regression_task_is_a_config_error(write: Write) -> None:
    X, y = features(50)
    path = write(X.assign(y=np.where(y == 1, "hi", "lo"), pred=0.0), task="regression",
                 candidate="{predictions: pred}", baseline="none", positive=None,
                 gates="regression:\n  metrics: {rmse: {max: 1.0}}")
    with pytest.raises(UserError, match="task regression needs a numeric target") as err:
        run_policy(load_policy(path))
    assert err.value.location == line_of(path, "target:")


# ---------------------------------------------------------------- labels


def test_a_third_label_in_a_binary_task_fails_naming_it(write: Write) -> None:
    X, y = features()
    y = y.copy()
    y[::40] = 2
    checks = by_id(run_policy(load_policy(write(X.assign(y=y)))))
    labels = checks["data.target.labels"]
    assert labels.status.value == "fail" and labels.blocking and labels.reason == "unknown_label"
    third = int((y == 2).sum())
    assert labels.observed == third == 30
    assert f"2 ({third} rows)" in labels.message
    assert "candidate model (int.skops) and the baseline model (int_base.skops) do not know" in labels.message
    assert "binary task's target has 3 labels" in labels.message
    assert labels.details["unknown"]["candidate"] == [{"label": 2, "count": third}]
    assert labels.details["classes"] == {"candidate": [0, 1], "baseline": [0, 1]}


def test_a_label_of_the_right_type_the_model_does_not_know_fails(write: Write) -> None:
    X, y = features()
    labels = np.where(y == 1, "yes", "no").astype(object)
    labels[:25] = "maybe"
    labels[25:28] = "Yes"
    checks = by_id(run_policy(load_policy(write(X.assign(y=labels), model="str", positive="'yes'"))))
    check = checks["data.target.labels"]
    assert check.status.value == "fail" and check.observed == 28
    assert "'Yes' (3 rows), 'maybe' (25 rows)" in check.message


def test_prediction_columns_three_labels_fail_without_model_classes(write: Write) -> None:
    X, y = features()
    y = y.copy()
    y[:12] = 7
    frame = X.assign(y=y, p=y.clip(0, 1), s=0.5)
    path = write(frame, candidate="{predictions: p, scores: s}", baseline="none",
                 gates="regression:\n  metrics: {accuracy: {min: 0.1}}")
    check = by_id(run_policy(load_policy(path)))["data.target.labels"]
    assert check.status.value == "fail" and check.observed == 12
    assert check.message == f"a binary task's target has 3 labels: 0 ({(y == 0).sum()} rows), 1 ({(y == 1).sum()} rows), 7 (12 rows)"


def test_multiclass_label_unknown_to_the_model(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits(as_frame=True)
    X, y = digits.data, digits.target.to_numpy()
    seen = y < 9
    model = LogisticRegression(max_iter=300).fit(X[seen][:800], y[seen][:800])
    sio.dump(model, tmp_path / "m.skops")
    X.assign(digit=y).to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "gates.yaml").write_text(
        "version: 1\nmodel: {name: d, task: multiclass_classification, candidate: m.skops, baseline: none}\n"
        "data: {eval: eval.csv, target: digit}\ngates:\n  regression:\n    metrics: {accuracy: {min: 0.5}}\n")
    check = by_id(run_policy(load_policy(tmp_path / "gates.yaml")))["data.target.labels"]
    assert check.status.value == "fail"
    assert check.observed == int((y == 9).sum()) == 180
    assert check.message == "the candidate model (m.skops) does not know 9 (180 rows)"


def test_ints_against_a_string_model_is_a_config_error_showing_both(write: Write) -> None:
    X, y = features()
    path = write(X.assign(y=y), model="str", positive=None)
    with pytest.raises(UserError) as err:
        run_policy(load_policy(path))
    message = err.value.message
    assert err.value.location == line_of(path, "target:")
    assert f"numeric labels 0 ({(y == 0).sum()} rows), 1 ({(y == 1).sum()} rows)" in message
    assert "candidate model (str.skops) has string labels ['no', 'yes']" in message


def test_string_predictions_against_an_int_target_is_a_config_error(write: Write) -> None:
    X, y = features(100)
    frame = X.assign(y=y, p=np.where(y == 1, "yes", "no"))
    path = write(frame, candidate="{predictions: p}", baseline="none",
                 gates="regression:\n  metrics: {accuracy: {min: 0.1}}")
    with pytest.raises(UserError, match="candidate's predictions column 'p' has string labels"):
        run_policy(load_policy(path))


@pytest.mark.parametrize("positive, key, needle", [
    (None, "model:", "model.positive_label: 1" + target_checks.MSG_DEFAULT + " is a number, but the candidate"
     " model (str.skops) has string labels ['no', 'yes']"),
    ("yes", "positive_label:", "True is a boolean"),
    ("'Yes'", "positive_label:", "model.positive_label: 'Yes' is not one of the labels of the candidate model (str.skops):"
     " ['no', 'yes']"),
])
def test_positive_label_that_cannot_be_a_label_is_a_config_error(write: Write, positive: str | None,
                                                                 key: str, needle: str) -> None:
    X, y = features(200)
    path = write(X.assign(y=np.where(y == 1, "yes", "no")), model="str", positive=positive)
    with pytest.raises(UserError) as err:
        run_policy(load_policy(path))
    assert err.value.location == line_of(path, key) and needle in err.value.message
    if positive == "yes":
        assert target_checks.MSG_YAML_BOOL in err.value.message


def test_positive_label_against_a_two_label_target_without_models(write: Write) -> None:
    X, y = features(200)
    frame = X.assign(y=np.where(y == 1, 5, 3), p=3)
    path = write(frame, candidate="{predictions: p}", baseline="none", positive=None,
                 gates="regression:\n  metrics: {accuracy: {min: 0.1}}")
    with pytest.raises(UserError, match=r"1 \(the default.*not one of the labels of the target: \[3, 5\]"):
        run_policy(load_policy(path))


def test_target_checks_run_without_a_data_section_and_first(write: Write) -> None:
    X, y = features()
    result = run_policy(load_policy(write(X.assign(y=y))))
    ids = [c.id for c in result.verdict.checks]
    assert ids[:2] == ["data.target.not_null", "data.target.labels"]
    assert "data" not in result.policy.gates
    assert all(c.status.value == "pass" for c in result.verdict.checks[:2])
    assert result.verdict.checks[1].message == (
        f"the target's labels 0 ({(y == 0).sum()} rows), 1 ({(y == 1).sum()} rows) are known to the candidate and baseline")
