"""XGBoost and LightGBM model files: scores equal the library's own predict/predict_proba; bad files exit 2."""
from __future__ import annotations

import numpy as np
import pytest

from gates.config import load_policy
from gates.errors import UserError
from tests.gates.models.helpers import context, dataset, run_cli, write_project

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")


def _xgb_model(kind: str, X, y):
    cls = xgb.XGBRegressor if kind == "regression" else xgb.XGBClassifier
    return cls(n_estimators=12, max_depth=3, random_state=0, n_jobs=1).fit(X, y)


def _lgb_model(kind: str, X, y):
    cls = lgb.LGBMRegressor if kind == "regression" else lgb.LGBMClassifier
    return cls(n_estimators=12, num_leaves=7, random_state=0, n_jobs=1, verbose=-1).fit(X, y)


def _assert_same(kind: str, ctx, model, X) -> None:
    pred = ctx.predictions("candidate")
    if kind == "regression":
        np.testing.assert_allclose(pred.labels, model.predict(X), rtol=0, atol=1e-9)
        return
    proba = model.predict_proba(X)
    if kind == "binary":
        np.testing.assert_allclose(pred.scores, proba[:, 1], rtol=0, atol=1e-9)
    else:
        np.testing.assert_allclose(pred.scores, proba, rtol=0, atol=1e-9)
    assert pred.classes == tuple(range(proba.shape[1]))
    np.testing.assert_array_equal(pred.labels, model.predict(X))


@pytest.mark.parametrize("kind,suffix", [("binary", ".ubj"), ("multiclass", ".json"), ("regression", ".ubj")])
def test_xgboost_scores_equal_its_own_predict(tmp_path, kind, suffix):
    X, y = dataset(kind)
    model = _xgb_model(kind, X, y)
    model.save_model(tmp_path / f"m{suffix}")
    source = {"path": f"m{suffix}", "format": "xgboost"} if suffix == ".json" else f"m{suffix}"
    ctx = context(write_project(tmp_path, kind, source))
    assert ctx.model("candidate").format == "xgboost"
    assert ctx.features_of("candidate") == list(X.columns)  # the booster's own feature names
    _assert_same(kind, ctx, model, X)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_lightgbm_scores_equal_its_own_predict(tmp_path, kind):
    X, y = dataset(kind)
    model = _lgb_model(kind, X, y)
    model.booster_.save_model(str(tmp_path / "m.txt"))
    ctx = context(write_project(tmp_path, kind, {"path": "m.txt", "format": "lightgbm"}))
    # LightGBM saves 'mean radius' as 'mean_radius'; the data's own spelling is fed back
    assert ctx.features_of("candidate") == list(X.columns)
    _assert_same(kind, ctx, model, X)


def test_lightgbm_trained_on_an_array_takes_data_features(tmp_path):
    X, y = dataset("multiclass")
    model = _lgb_model("multiclass", X.to_numpy(), y)
    model.booster_.save_model(str(tmp_path / "m.txt"))
    path = write_project(tmp_path, "multiclass", {"path": "m.txt", "format": "lightgbm"},
                         data={"features": list(X.columns)})
    ctx = context(path)
    np.testing.assert_allclose(ctx.predictions("candidate").scores, model.predict_proba(X.to_numpy()), atol=1e-9)
    path = write_project(tmp_path, "multiclass", {"path": "m.txt", "format": "lightgbm"})
    with pytest.raises(UserError, match=r"the candidate model \(m.txt\) takes: it names none; .*features"):
        context(path).predictions("candidate")


@pytest.mark.parametrize("suffix,fmt", [(".json", "xgboost"), (".txt", "lightgbm")])
def test_ambiguous_extension_needs_a_format(tmp_path, suffix, fmt):
    (tmp_path / f"m{suffix}").write_text("{}")
    with pytest.raises(UserError) as err:
        load_policy(write_project(tmp_path, "binary", f"m{suffix}"))
    assert f"format: {fmt}" in err.value.message and "model.candidate" in err.value.message
    assert err.value.location.startswith("gates.yaml:")


def test_json_that_is_not_an_xgboost_model_is_a_clear_exit_2(tmp_path, capsys):
    (tmp_path / "m.json").write_text('{"learner": "not really", "weights": [1, 2, 3]}')
    path = write_project(tmp_path, "binary", {"path": "m.json", "format": "xgboost"})
    code, report = run_cli(path)
    err = capsys.readouterr().err
    assert code == 2 and report is None
    assert "the candidate model (m.json)" in err and "is not an xgboost model file" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_text_that_is_not_a_lightgbm_model_is_exit_2(tmp_path, capsys):
    (tmp_path / "m.txt").write_text("tree\nversion=v4\nnot a model\n")
    path = write_project(tmp_path, "regression", {"path": "m.txt", "format": "lightgbm"})
    code, _ = run_cli(path)
    err = capsys.readouterr().err
    assert code == 2 and "the candidate model (m.txt)" in err and "not a LightGBM model file" in err


def test_classifier_file_under_a_regression_task_names_the_objective(tmp_path):
    X, y = dataset("binary")
    _xgb_model("binary", X, y).save_model(tmp_path / "m.ubj")
    frame = X.assign(target=y.astype(float))
    ctx = context(write_project(tmp_path, "regression", "m.ubj", frame=frame))
    with pytest.raises(Exception, match=r"the candidate model \(m.ubj\) raised on predict: the model is a "
                                         r"classifier \(objective binary:logistic\) but model.task is regression"):
        ctx.predictions("candidate")


def test_candidate_that_drops_two_features_is_gated_against_production(tmp_path):
    """Each model takes its own columns (issue 17): a slimmer xgboost candidate against a lightgbm baseline."""
    X, y = dataset("binary")
    dropped = ["mean radius", "worst area"]
    cand = _xgb_model("binary", X.drop(columns=dropped), y)
    cand.save_model(tmp_path / "cand.ubj")
    base = _lgb_model("binary", X, y)
    base.booster_.save_model(str(tmp_path / "prod.txt"))
    path = write_project(tmp_path, "binary", "cand.ubj", {"path": "prod.txt", "format": "lightgbm"},
                         gates={"regression": {"bootstrap": 200, "metrics": {"roc_auc": {"max_drop": 0.05}}},
                                "robustness": {"perturbations": {"gaussian_noise": {"scale": [0.1]}},
                                               "metrics": {"roc_auc": {"max_drop": 0.5}}}})
    ctx = context(path)
    assert ctx.features_of("candidate") == [c for c in X.columns if c not in dropped]
    assert ctx.features_of("baseline") == list(X.columns)
    np.testing.assert_allclose(ctx.predictions("baseline").scores, base.predict_proba(X)[:, 1], atol=1e-9)
    code, report = run_cli(path)
    assert code == 0, report
    assert report["model"]["candidate"]["format"] == "xgboost"
    assert report["model"]["baseline"]["format"] == "lightgbm"
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses["regression.roc_auc.max_drop"] == "pass"
    assert any(k.startswith("robustness.") and v == "pass" for k, v in statuses.items())


def test_missing_columns_name_the_model_its_file_and_the_columns(tmp_path, capsys):
    X, y = dataset("binary")
    _xgb_model("binary", X, y).save_model(tmp_path / "cand.ubj")
    frame = X.drop(columns=["mean radius", "worst area"]).assign(target=y)
    path = write_project(tmp_path, "binary", "cand.ubj", frame=frame)
    code, _ = run_cli(path)
    err = capsys.readouterr().err
    assert code == 2
    assert ("the candidate model (cand.ubj) takes 2 column(s) the eval data (eval.csv) does not have: "
            "mean radius, worst area") in err


def test_features_in_the_policy_win_and_are_checked(tmp_path):
    X, y = dataset("regression")
    cols = ["bmi", "bp", "s5"]
    model = _xgb_model("regression", X[cols].to_numpy(), y)  # no names saved: the policy gives them
    model.save_model(tmp_path / "m.ubj")
    ctx = context(write_project(tmp_path, "regression", {"path": "m.ubj", "features": cols}))
    np.testing.assert_allclose(ctx.predictions("candidate").labels, model.predict(X[cols].to_numpy()), atol=1e-9)
    path = write_project(tmp_path, "regression", {"path": "m.ubj", "features": ["bmi", "nope"]})
    with pytest.raises(UserError, match=r"does not have: nope \(from its features\)") as err:
        context(path).predictions("candidate")
    assert err.value.location.startswith("gates.yaml:")


def test_multiclass_and_regression_run_end_to_end(tmp_path):
    for kind in ("multiclass", "regression"):
        folder = tmp_path / kind
        folder.mkdir()
        X, y = dataset(kind)
        _lgb_model(kind, X, y).booster_.save_model(str(folder / "m.txt"))
        _xgb_model(kind, X, y).save_model(folder / "prod.ubj")
        path = write_project(folder, kind, {"path": "m.txt", "format": "lightgbm"}, "prod.ubj")
        code, report = run_cli(path)
        assert code == 0 and report["verdict"] == "pass", report
