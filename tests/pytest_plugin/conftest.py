"""Projects for the pytest plugin's tests: eval data and a gates.yaml written into pytester's folder.

``pytester`` itself is enabled in the top-level ``tests/conftest.py`` (pytest accepts
``pytest_plugins`` only there). The heavy modules are imported here once, so pytester's in-process
runs (which drop modules first imported during a run) do not import them again on every run.
"""
from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis  # noqa: F401 -- its pytest plugin imports it lazily; once here, not in every run
import pandas as pd
import pytest
import pytest_model_gates.session  # noqa: F401 -- imported once for every in-process run
import sklearn.linear_model
import skops.io

from gates.checks import gate_registry
from tests.conftest import BASE_POLICY, scored_frame

gate_registry()

MODEL_POLICY = """\
version: 1
model:
  name: demo
  task: binary_classification
  candidate: model.skops
  baseline: none
  positive_label: 1
data:
  eval: eval.csv
  target: label
  features: [x, z]
registry:
  uri: registry
seed: 7
gates:
  regression:
    bootstrap: 200
    metrics:
      accuracy: {min: 0.6}
"""

#: a policy whose five checks end pass, fail, skipped (no baseline), error (no scores) and waived
MIXED_POLICY = """\
version: 1
model:
  name: demo
  task: binary_classification
  candidate: {predictions: cand_pred}
  baseline: none
  positive_label: 1
data:
  eval: eval.csv
  target: label
seed: 7
waivers:
  - {check: regression.recall.min, reason: known dip in recall, expires: "2999-01-01"}
gates:
  regression:
    bootstrap: 200
    metrics:
      accuracy: {min: 0.5}
      f1: {min: 0.99}
      precision: {max_drop: 0.05}
      roc_auc: {min: 0.5}
      recall: {min: 0.99}
"""


@pytest.fixture
def gate_project(pytester: pytest.Pytester) -> Callable[..., Path]:
    """Write eval.csv and gates.yaml (regression metrics as YAML lines, or a whole text); return its path."""

    def write(metrics: str = "accuracy: {min: 0.5, max_drop: 0.05}", *, text: str | None = None,
              frame: pd.DataFrame | None = None) -> Path:
        (frame if frame is not None else scored_frame(1000)).to_csv(pytester.path / "eval.csv", index=False)
        body = text if text is not None else BASE_POLICY.format(metrics=textwrap.indent(metrics, " " * 6))
        path = pytester.path / "gates.yaml"
        path.write_text(body.replace("bootstrap: 500", "bootstrap: 200"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def model_project(pytester: pytest.Pytester) -> Path:
    """Write a project whose candidate is a real .skops model (so it can be registered); return gates.yaml."""
    frame = scored_frame(600, seed=3).assign(z=lambda d: d["cand_score"] + 0.1 * d["x"])
    model = sklearn.linear_model.LogisticRegression().fit(frame[["x", "z"]], frame["label"])
    skops.io.dump(model, pytester.path / "model.skops")
    frame.to_csv(pytester.path / "eval.csv", index=False)
    path = pytester.path / "gates.yaml"
    path.write_text(MODEL_POLICY, encoding="utf-8")
    return path


def read_report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["checks"]}
