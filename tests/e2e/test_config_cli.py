"""Config consistency through ``model-gates run``: named columns, model crashes and missing modules name their cause."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

HEAD = """\
version: 1
model: {{name: m, task: binary_classification, candidate: {candidate}, baseline: none, trust_pickle: true}}
data: {{eval: eval.csv, target: label}}
gates:
"""


def frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "region": rng.choice(["north", "south"], n), "label": (x > 0).astype(int),
                         "pred": (x > 0.1).astype(int), "score": 1 / (1 + np.exp(-x))})


@pytest.mark.parametrize("section, key, needle", [
    ("  regression:\n    metrics: {accuracy: {min: 0.5}}\n    slices: [region, [region, chanel]]\n",
     "    slices:", "gates.regression.slices[1][1]: column 'chanel' is not in the eval data (eval.csv)"),
    ("  fairness:\n    groups: [regoin]\n    metrics: {demographic_parity_difference: {max: 0.5}}\n",
     "    groups:", "gates.fairness.groups[0]: column 'regoin' is not in the eval data (eval.csv) (did you mean 'region'?)"),
    ("  data:\n    checks:\n      required_columns: [x]\n      columns:\n        ages: {min: 0}\n",
     "        ages:", "gates.data.checks.columns.ages: column 'ages' is not in the eval data (eval.csv)"),
    ("  data:\n    drift:\n      columns:\n        regoin: {method: psi}\n",
     "        regoin:", "gates.data.drift.columns.regoin: column 'regoin' is not in the eval data (eval.csv) "
                      "(did you mean 'region'?)"),
    ("  data:\n    drift:\n      columns:\n        score: {method: psi}\n",
     "        score:", "gates.data.drift.columns.score: column 'score' is not in the reference data (reference.csv)"),
    ("  data:\n    leakage:\n      columns: [x, X]\n",
     "      columns:", "gates.data.leakage.columns[1]: column 'X' is not in the eval data (eval.csv)"),
    ("  robustness:\n    metrics: {flip_rate: {max: 0.1}}\n    perturbations:\n      gaussian_noise: {columns: [x, y]}\n",
     "      gaussian_noise:", "gates.robustness.perturbations.gaussian_noise.columns[1]: column 'y' is not in"),
    ("  robustness:\n    invariance: [customer_id]\n",
     "    invariance:", "gates.robustness.invariance[0]: column 'customer_id' is not in the eval data"),
    ("  robustness:\n    directional:\n      income: increasing\n",
     "      income:", "gates.robustness.directional.income: column 'income' is not in the eval data"),
])
def test_a_column_a_gate_names_is_checked_before_any_gate_runs(tmp_path: Path, section: str, key: str,
                                                              needle: str) -> None:
    frame().to_csv(tmp_path / "eval.csv", index=False)
    frame().drop(columns=["score"]).to_csv(tmp_path / "reference.csv", index=False)
    text = HEAD.format(candidate="model.pkl").replace("target: label}", "target: label, reference: reference.csv}")
    text += section
    _write_model(tmp_path / "model.pkl")
    (tmp_path / "gates.yaml").write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(key))
    res = cli("run", "--no-register", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"model-gates: error: gates.yaml:{line}: ") and needle in lines[0]
    assert not (tmp_path / "model-gates-report").exists()


def test_a_model_that_raises_on_predict_is_named_with_its_file(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "eval.csv", index=False)
    _write_model(tmp_path / "model.pkl", crash=True)
    (tmp_path / "gates.yaml").write_text(HEAD.format(candidate="model.pkl")
                                         + "  regression:\n    metrics: {accuracy: {min: 0.5}}\n")
    res = cli("run", "--no-register", cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "the candidate model (model.pkl) raised on predict: scorer offline" in res.stdout


def test_a_pickled_class_whose_module_is_missing_says_to_install_it(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "eval.csv", index=False)
    module = tmp_path / "lib" / "crashy.py"
    module.parent.mkdir()
    module.write_text("class Model:\n    def predict(self, X):\n        return [0] * len(X)\n")
    sys.path.insert(0, str(module.parent))
    try:
        import crashy

        (tmp_path / "model.pkl").write_bytes(pickle.dumps(crashy.Model()))
    finally:
        sys.path.remove(str(module.parent))
        sys.modules.pop("crashy", None)
    (tmp_path / "gates.yaml").write_text(HEAD.format(candidate="model.pkl")
                                         + "  regression:\n    metrics: {accuracy: {min: 0.5}}\n")
    res = cli("run", "--no-register", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == (
        "model-gates: error: gates.yaml:2: cannot load the candidate model (model.pkl): it needs the module 'crashy', which is missing "
        "from the environment that loads the model (install the package that defines it)")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI where the pickled test models' module (``tests.e2e._models``) is importable."""
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "gates", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def _write_model(path: Path, *, crash: bool = False) -> None:
    """Pickle a small model (a class from this test module's importable package)."""
    from tests.e2e import _models

    path.write_bytes(pickle.dumps(_models.Crashing() if crash else _models.Threshold()))
