"""Projects for the model-format tests: scikit-learn's bundled data, a gates.yaml, models of each format."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from gates.cli import main
from gates.config import load_policy
from gates.context import EvalContext

TASKS = {"binary": "binary_classification", "multiclass": "multiclass_classification", "regression": "regression"}
METRICS = {"binary": {"roc_auc": {"min": 0.5}}, "multiclass": {"accuracy": {"min": 0.5}},
           "regression": {"r2": {"min": 0.0}}}


def dataset(kind: str) -> tuple[pd.DataFrame, pd.Series]:
    """Return (features, target) of breast_cancer (binary), iris (multiclass) or diabetes (regression)."""
    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind]
    X, y = loader(return_X_y=True, as_frame=True)
    return X, y.rename("target")


def write_project(folder: Path, kind: str, candidate: Any, baseline: Any = "none", *,
                  frame: pd.DataFrame | None = None, data: dict[str, Any] | None = None,
                  model: dict[str, Any] | None = None, gates: dict[str, Any] | None = None) -> Path:
    """Write eval.csv (the data set) and gates.yaml; return the config's path."""
    if frame is None:
        X, y = dataset(kind)
        frame = X.assign(target=y)
    frame.to_csv(folder / "eval.csv", index=False)
    policy = {
        "version": 1,
        "model": {"name": "fmt", "task": TASKS[kind], "candidate": candidate, "baseline": baseline,
                  **({"positive_label": 1} if kind == "binary" else {}), **(model or {})},
        "data": {"eval": "eval.csv", "target": "target", **(data or {})},
        "seed": 3,
        "gates": gates or {"regression": {"bootstrap": 200, "metrics": METRICS[kind]}},
    }
    path = folder / "gates.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def context(path: Path) -> EvalContext:
    return EvalContext(load_policy(path))


def run_cli(path: Path, *args: str) -> tuple[int, dict[str, Any] | None]:
    """Run ``model-gates run`` on ``path`` in this process; return the exit code and report.json."""
    out = path.parent / "out"
    code = main(["run", "-c", str(path), "--no-register", "--report-dir", str(out), *args])
    report = out / "report.json"
    return code, json.loads(report.read_text()) if report.exists() else None
