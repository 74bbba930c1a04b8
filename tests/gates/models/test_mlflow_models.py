"""MLflow model URIs on a SQLite tracking store: resolved once, recorded, loaded under the policy's trust."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gates.errors import UserError
from gates.models.bundle import archive_sha256, folder_files
from tests.gates.models.helpers import context, dataset, run_cli, write_project

mlflow = pytest.importorskip("mlflow")
xgb = pytest.importorskip("xgboost")

#: given, so MLflow does not infer requirements by running the model in a subprocess (slow)
REQS = ["scikit-learn"]


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)  # set_registry_uri writes it; monkeypatch unsets it after
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("gates", artifact_location=(tmp_path / "artifacts").as_uri())
    yield exp
    mlflow.set_tracking_uri(None)  # None, not "": "" stays the global URI and hides later tests' MLFLOW_TRACKING_URI
    mlflow.set_registry_uri(None)


def _log(exp, log, name: str, alias: str | None = None) -> int:
    client = mlflow.MlflowClient()
    with mlflow.start_run(experiment_id=exp):
        info = log(name)
    version = int(client.search_model_versions(f"name='{name}'")[-1].version) if info is None else \
        int(info.registered_model_version)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return version


def test_models_alias_resolves_once_and_is_recorded(tmp_path, tracking):
    X, y = dataset("binary")
    prod = xgb.XGBClassifier(n_estimators=8, max_depth=2, random_state=0, n_jobs=1).fit(X, y)
    version = _log(tracking, lambda n: mlflow.xgboost.log_model(prod, name="model", registered_model_name=n,
                                                             pip_requirements=REQS),
                   "prod", alias="champion")
    cand = xgb.XGBClassifier(n_estimators=20, max_depth=3, random_state=0, n_jobs=1).fit(X, y)
    cand.save_model(tmp_path / "cand.ubj")
    cfg = write_project(tmp_path, "binary", "cand.ubj", "models:/prod@champion")
    ctx = context(cfg)
    np.testing.assert_allclose(ctx.predictions("baseline").scores, prod.predict_proba(X)[:, 1], atol=1e-9)
    base = ctx.model("baseline")
    assert base.format == "mlflow" and base.version == version
    assert base.sha256 == archive_sha256(folder_files(base.path))
    code, report = run_cli(cfg)
    assert code == 0, report
    block = report["model"]["baseline"]
    assert block["uri"] == "models:/prod@champion" and block["version"] == version
    assert block["format"] == "mlflow" and block["sha256"] == base.sha256 and block["run_id"]


def test_models_version_and_runs_uris_load_a_skops_sklearn_flavour(tmp_path, tracking):
    X, y = dataset("multiclass")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    captured = {}

    def log(name):
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                        serialization_format="skops", pip_requirements=REQS)
        captured["run"] = info.run_id
        return info

    version = _log(tracking, log, "iris")
    for uri in (f"models:/iris/{version}", f"runs:/{captured['run']}/model"):
        ctx = context(write_project(tmp_path, "multiclass", uri))
        np.testing.assert_allclose(ctx.predictions("candidate").scores, model.predict_proba(X), atol=1e-9)
        assert ctx.model("candidate").run_id == captured["run"]


def test_pickled_mlflow_model_needs_trust_pickle(tmp_path, tracking, capsys):
    X, y = dataset("binary")
    model = LogisticRegression(max_iter=5000).fit(X, y)
    _log(tracking, lambda n: mlflow.sklearn.log_model(model, name="model", registered_model_name=n,
                                                    serialization_format="cloudpickle", pip_requirements=REQS),
         "pickled",
         alias="prod")
    cfg = write_project(tmp_path, "binary", "models:/pickled@prod")
    code, report = run_cli(cfg)
    err = capsys.readouterr().err
    assert code == 2 and report is None
    assert "is stored with pickle (sklearn flavour, cloudpickle)" in err and "model.trust_pickle: true" in err
    trusted = write_project(tmp_path, "binary", "models:/pickled@prod", model={"trust_pickle": True})
    np.testing.assert_allclose(context(trusted).predictions("candidate").scores, model.predict_proba(X)[:, 1],
                               atol=1e-9)


def test_unknown_alias_is_a_config_error(tmp_path, tracking):
    cfg = write_project(tmp_path, "binary", "models:/nobody@champion")
    with pytest.raises(UserError, match=r"model.candidate: models:/nobody@champion cannot be resolved"):
        context(cfg).predictions("candidate")


def test_uri_without_tracking_server_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = write_project(tmp_path, "binary", {"uri": "models:/x/1"})
    with pytest.raises(UserError, match="set MLFLOW_TRACKING_URI"):
        context(cfg).predictions("candidate")


def test_malformed_uri_is_refused_at_load(tmp_path):
    from gates.config import load_policy

    with pytest.raises(UserError, match=r"models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/PATH"):
        load_policy(write_project(tmp_path, "binary", "models:/x"))
