"""Gate runs on an MLflow registry through the CLI: register on pass, and registry:production as the baseline.

The registry is a SQLite tracking database in the test's folder; everything is read back with
MLflow's own client, and the metrics with scikit-learn.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

pytest.importorskip("mlflow")

from mlflow import MlflowClient

from gates.cli import main
from tests.gates.registry.backends import migrated_mlflow_db

POLICY = """\
version: 1
model: {name: churn, task: binary_classification, candidate: models/candidate.skops, baseline: "registry:production"}
data: {eval: eval.csv, target: label}
registry: {backend: mlflow, uri: "URI", on_pass: {alias: staging}}
gates:
  regression:
    metrics:
      roc_auc: {min: 0.55, max_drop: 0.3}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch):
    """A project folder (the cwd): eval.csv, two models, gates.yaml on an MLflow SQLite registry."""
    rng = np.random.default_rng(8)
    X = pd.DataFrame({"x1": rng.normal(size=400), "x2": rng.normal(size=400), "x3": rng.normal(size=400)})
    y = (X.x1 + 0.5 * X.x2 + rng.normal(size=400) > 0).astype(int)
    X.assign(label=y).to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "models").mkdir()
    mostly_x2 = (X.x2 + 0.3 * rng.normal(size=400) > 0).astype(int)
    models = {"strong": LogisticRegression().fit(X, y), "weak": LogisticRegression().fit(X, mostly_x2)}
    for name, model in models.items():
        sio.dump(model, tmp_path / f"{name}.skops")
    shutil.copyfile(migrated_mlflow_db(), tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "gates.yaml").write_text(POLICY.replace("URI", uri))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "true")

    class Project:
        root, registry, features, labels = tmp_path, uri, X, y
        fitted = models

        @staticmethod
        def use(name: str) -> str:
            shutil.copy(tmp_path / f"{name}.skops", tmp_path / "models" / "candidate.skops")
            return hashlib.sha256((tmp_path / f"{name}.skops").read_bytes()).hexdigest()

        @staticmethod
        def auc(name: str) -> float:
            return float(roc_auc_score(y, models[name].predict_proba(X)[:, 1]))

        @staticmethod
        def report() -> dict:
            return json.loads((tmp_path / "model-gates-report" / "report.json").read_text())

    return Project


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def check(report: dict, check_id: str) -> dict:
    [found] = [c for c in report["checks"] if c["id"] == check_id]
    return found


def test_the_production_alias_in_mlflow_is_the_baseline_of_the_next_run(project, capsys):
    strong_sha = project.use("strong")
    code, out, err = cli(capsys, "run")
    assert code == 0, out + err
    first = project.report()
    assert first["model"]["baseline"] is None
    assert check(first, "regression.roc_auc.max_drop")["status"] == "skipped"
    assert first["registration"] == {"registered": True, "backend": "mlflow", "version": 1, "aliases": ["staging"],
                                     "already_registered": False}
    assert cli(capsys, "promote", "churn", "1", "--alias", "production")[1] == "churn: production unset -> v1\n"

    weak_sha = project.use("weak")
    code, out, err = cli(capsys, "run")
    assert code == 0, out + err
    second = project.report()
    assert second["model"]["baseline"]["version"] == 1 and second["model"]["baseline"]["sha256"] == strong_sha
    auc = check(second, "regression.roc_auc.max_drop")
    assert auc["observed"] == pytest.approx(project.auc("weak"), abs=1e-12)
    assert auc["baseline"] == pytest.approx(project.auc("strong"), abs=1e-12)
    assert auc["delta"] == pytest.approx(project.auc("weak") - project.auc("strong"), abs=1e-12)
    assert second["registration"]["version"] == 2

    client = MlflowClient(tracking_uri=project.registry, registry_uri=project.registry)
    assert client.get_model_version_by_alias("churn", "production").tags["model_gates.model_sha256"] == strong_sha
    v2 = client.get_model_version_by_alias("churn", "staging")
    assert (v2.version, v2.tags["model_gates.model_sha256"]) in (("2", weak_sha), (2, weak_sha))
    assert json.loads(v2.tags["model_gates.lineage"])["baseline"]["version"] == 1
    assert v2.tags["model_gates.flavor"] == "sklearn"
    import mlflow.models

    signature = mlflow.models.get_model_info(v2.source.removeprefix("file://")).signature
    assert signature.inputs.input_names() == ["x1", "x2", "x3"]

    code, out, _ = cli(capsys, "show", "churn", "2", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["aliases"] == ["staging"] and shown["report"]["checks"] == second["checks"]
    code, out, _ = cli(capsys, "history", "churn", "--json")
    assert [(v["version"], v["aliases"]) for v in json.loads(out)] == [(1, ["production"]), (2, ["staging"])]
    code, out, _ = cli(capsys, "history", "churn", "--json", "--audit")
    assert [e["kind"] for e in json.loads(out)] == ["run", "register", "alias", "alias", "run", "register", "alias"]


def test_a_failing_run_on_mlflow_registers_nothing_and_is_audited(project, capsys):
    project.use("weak")
    (project.root / "gates.yaml").write_text((project.root / "gates.yaml").read_text().replace("0.55", "0.99"))
    code, out, _ = cli(capsys, "run")
    assert code == 1 and project.report()["registration"] == {"registered": False, "reason": "the verdict is fail"}
    code, out, _ = cli(capsys, "history", "churn", "--json", "--audit")
    [event] = json.loads(out)
    assert (event["kind"], event["verdict"], event["record"]["failing"]) == ("run", "fail", ["regression.roc_auc.min"])
    assert cli(capsys, "history", "churn", "--json")[1].strip() == "[]"
