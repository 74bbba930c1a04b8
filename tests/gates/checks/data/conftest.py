"""Helpers for data-gate tests: write frames and a gates.yaml to a tmp folder, load, run the gate."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gates.checks.data import GATE
from gates.config import load_policy
from gates.context import EvalContext
from gates.results import CheckResult

POLICY = """\
version: 1
model:
  name: demo
  task: {task}
  candidate: {{predictions: {prediction}}}
  baseline: none
data:
  eval: eval.parquet
  target: {target}
{reference}gates:
  data:
{section}
"""

RunData = Callable[..., dict[str, CheckResult]]


def write_policy(folder: Path, frame: pd.DataFrame, section: str, *, reference: pd.DataFrame | None = None,
                 target: str = "target", task: str = "regression") -> Path:
    """Write eval (and reference) Parquet files and a gates.yaml whose data section is ``section``.

    The candidate is a prediction column ``pred`` (added as zeros when the frame has none): the data
    gate never looks at models, and must leave model-output columns out of drift and leakage.
    """
    if "pred" not in frame.columns and target in frame.columns:
        frame = frame.assign(pred=0.0)
    frame.to_parquet(folder / "eval.parquet")
    ref_line = ""
    if reference is not None:
        reference.to_parquet(folder / "reference.parquet")
        ref_line = "  reference: reference.parquet\n"
    path = folder / "gates.yaml"
    path.write_text(POLICY.format(task=task, target=target, prediction="pred", reference=ref_line,
                                  section=textwrap.indent(textwrap.dedent(section).strip("\n"), " " * 4)),
                    encoding="utf-8")
    return path


@pytest.fixture
def run_data(tmp_path: Path) -> RunData:
    """Run the data gate on ``frame`` with the YAML ``section``; return results by check id."""

    def run(frame: pd.DataFrame, section: str, **kwargs: object) -> dict[str, CheckResult]:
        policy = load_policy(write_policy(tmp_path, frame, section, **kwargs))  # type: ignore[arg-type]
        results = GATE.run(EvalContext(policy), policy.gates["data"])
        ids = [r.id for r in results]
        assert len(ids) == len(set(ids)), "check ids must be unique"
        return {r.id: r for r in results}

    return run


def mixed_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Return numbers, categories, an id and a target, with a few nulls."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n).astype(float)
    age[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({
        "id": np.arange(n),
        "age": age,
        "income": rng.lognormal(10, 0.5, n),
        "sex": rng.choice(["F", "M", "X"], n),
        "code": [f"C{v:03d}" for v in rng.integers(0, 999, n)],
        "target": rng.normal(size=n),
    })
