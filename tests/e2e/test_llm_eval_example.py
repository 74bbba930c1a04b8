"""examples/llm-eval/ end to end: ``model-gates run`` on the shipped example, then on a degraded candidate."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llm-eval"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gates", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "CI": "true"})


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llm_eval_generate", EXAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "llm-eval"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".model-gates", "model-gates-report"))
    return target


def test_the_shipped_data_is_what_the_seeded_script_writes(tmp_path: Path) -> None:
    out = tmp_path / "evals.csv"
    generator().generate().to_csv(out, index=False)
    assert out.read_bytes() == (EXAMPLE / "evals.csv").read_bytes()


def test_the_example_passes_registers_the_prompt_bundle_and_reports_clustered_numbers(folder: Path) -> None:
    from gates.artifacts import describe

    res = cli("run", cwd=folder)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verdict: PASS" in res.stdout and "registered: support-bot version 1" in res.stdout
    report = json.loads((folder / "model-gates-report" / "report.json").read_text())
    df = pd.read_csv(folder / "evals.csv")
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["regression.correct.min"]["observed"] == pytest.approx(df["cand_correct"].mean())
    assert checks["regression.correct.max_drop"]["delta"] == pytest.approx(
        (df["cand_correct"] - df["prod_correct"]).mean())
    es = df[df["language"] == "es"]
    assert checks["regression.judge.max_drop[language=es]"]["delta"] == pytest.approx(
        (es["cand_judge"] - es["prod_judge"]).mean())
    assert checks["regression.correct.min"]["ci_method"] == "bootstrap-clusters"
    assert checks["regression.correct.min"]["details"]["clusters"] == df["prompt_id"].nunique() == 300
    means = df.groupby("language")["cand_correct"].mean()
    assert checks["fairness.correct_difference.max[language]"]["observed"] == pytest.approx(means.max() - means.min())
    assert report["data"]["eval"]["clusters"] == 300
    assert report["model"]["candidate"]["sha256"] == describe(str(folder / "prompts" / "v2")).sha256
    shown = cli("show", "support-bot", "1", cwd=folder)
    assert shown.returncode == 0 and "artifact     prompts/v2" in shown.stdout


def test_a_degraded_candidate_fails_and_is_not_registered(folder: Path) -> None:
    generator().generate(degrade=True).to_csv(folder / "evals.csv", index=False)
    res = cli("run", cwd=folder)
    assert res.returncode == 1, res.stdout + res.stderr
    report = json.loads((folder / "model-gates-report" / "report.json").read_text())
    assert report["verdict"] == "fail" and report["registration"]["registered"] is False
    failed = {c["id"] for c in report["checks"] if c["status"] in ("fail", "inconclusive")}
    assert {"regression.correct.max_drop", "regression.latency.max_relative_drop"} <= failed
    drop = next(c for c in report["checks"] if c["id"] == "regression.correct.max_drop")
    assert drop["ci"][1] < -0.03  # confidently worse than the 0.03 margin
    assert np.isclose(drop["delta"], (pd.read_csv(folder / "evals.csv").eval("cand_correct - prod_correct")).mean())
