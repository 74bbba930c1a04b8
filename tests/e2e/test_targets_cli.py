"""Targets and labels through ``model-gates run`` in a subprocess, on data the tests build."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from tests.e2e.test_cli import cli

POLICY = """\
version: 1
model:
  name: titanic-like
  task: binary_classification
  candidate: cand.skops
  baseline: base.skops
{positive}data:
  eval: eval.csv
  target: survived
  sensitive: [sex]
gates:
  regression:
    bootstrap: 200
    metrics: {{roc_auc: {{min: 0.5}}, accuracy: {{min: 0.5}}}}
  fairness:
    bootstrap: 200
    groups: [sex]
    metrics: {{demographic_parity_difference: {{max: 0.9}}}}
"""


def titanic_like(folder: Path, n: int = 900, seed: int = 0) -> pd.DataFrame:
    """Write two models trained on 'no'/'yes' labels and return an eval frame with the same features."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.uniform(1, 80, n), "fare": rng.lognormal(3, 1, n),
                          "sex": rng.choice(["female", "male"], n)})
    logit = 1.5 * (frame["sex"] == "female") - 0.03 * frame["age"] + 0.2 * np.log(frame["fare"])
    frame["survived"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    X = frame[["age", "fare"]]
    sio.dump(LogisticRegression().fit(X, frame["survived"]), folder / "cand.skops")
    sio.dump(LogisticRegression(C=0.01).fit(X, frame["survived"]), folder / "base.skops")
    return frame


def test_string_labels_with_missing_targets_fail_not_null_and_score_the_rest(tmp_path: Path) -> None:
    frame = titanic_like(tmp_path)
    frame.loc[frame.index[::9], "survived"] = None
    frame.to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "gates.yaml").write_text(POLICY.format(positive="  positive_label: 'yes'\n"))
    res = cli("run", "--no-register", cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "gate_error" not in res.stdout
    missing = int(frame["survived"].isna().sum())
    assert f"FAIL          data.target.not_null" in res.stdout and f"{missing} of 900 eval rows" in res.stdout
    report = json.loads((tmp_path / "model-gates-report" / "report.json").read_text())
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["data.target.not_null"]["observed"] == missing == 100
    assert report["data"]["eval"]["rows"] == 900
    kept = frame[frame["survived"].notna()]
    model = sio.load(tmp_path / "cand.skops", trusted=sio.get_untrusted_types(file=tmp_path / "cand.skops"))
    auc = roc_auc_score(kept["survived"] == "yes", model.predict_proba(kept[["age", "fare"]])[:, 1])
    assert checks["regression.roc_auc.min"]["observed"] == pytest.approx(auc, abs=1e-12)
    assert checks["regression.roc_auc.min"]["details"]["rows"] == 800
    assert checks["fairness.demographic_parity_difference.max[sex]"]["status"] == "pass"
    assert checks["fairness.demographic_parity_difference.max[sex]"]["details"]["rows"] == 800


def test_integer_target_against_string_model_exits_2_showing_both(tmp_path: Path) -> None:
    frame = titanic_like(tmp_path)
    frame.assign(survived=(frame["survived"] == "yes").astype(int)).to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "gates.yaml").write_text(POLICY.format(positive=""))
    res = cli("run", "--no-register", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("model-gates: error: gates.yaml:9: data.target:")
    assert "numeric labels 0 (" in lines[0] and "string labels ['no', 'yes']" in lines[0]
    assert not (tmp_path / "model-gates-report").exists()


def test_default_positive_label_is_named_when_it_is_the_problem(tmp_path: Path) -> None:
    titanic_like(tmp_path).to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "gates.yaml").write_text(POLICY.format(positive=""))
    res = cli("run", "--no-register", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == (
        "model-gates: error: gates.yaml:2: model.positive_label: 1 (the default, as model.positive_label is not set) "
        "is a number, but the candidate model (cand.skops) has string labels ['no', 'yes']")
