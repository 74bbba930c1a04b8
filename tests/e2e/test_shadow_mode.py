"""Shadow mode end to end: every gate runs and reports, nothing blocks, nothing registers, the audit log remembers.

Real model files (.skops), the embedded registry with a production version, and the CLI.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from gates.cli import main
from gates.registrar import REASON_SHADOW
from gates.registry.local import LocalRegistry

NAME = "credit"
POLICY = """\
version: 1
model: {name: credit, task: binary_classification, candidate: models/candidate.skops, positive_label: 1}
data: {eval: eval.csv, target: label}
registry: {backend: local, uri: registry, on_pass: {register: true, alias: staging}}
seed: 3
mode: MODE
gates:
  regression:
    bootstrap: 300
    metrics:
      roc_auc: {min: 0.7, max_drop: 0.02}
      accuracy: {max_drop: 0.05}
"""
FAILING = {"regression.roc_auc.min", "regression.roc_auc.max_drop", "regression.accuracy.max_drop"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Return eval.csv and three models: production, a good candidate and one that learnt from noise only."""
    folder = tmp_path_factory.mktemp("shadow-models")
    rng = np.random.default_rng(11)
    n = 4000
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = (X.x1 + 0.8 * X.x2 + rng.normal(size=n) > 0).astype(int)
    train, evaluation = slice(0, n // 2), slice(n // 2, n)
    X[evaluation].assign(label=y[evaluation]).to_csv(folder / "eval.csv", index=False)
    fits = {"production": (1.0, y), "good": (0.5, y), "bad": (1.0, pd.Series(rng.permutation(y.to_numpy())))}
    out = {"eval": folder / "eval.csv"}
    for role, (c, target) in fits.items():
        out[role] = folder / f"{role}.skops"
        sio.dump(LogisticRegression(C=c).fit(X[train], target[train]), out[role])
    return out


@pytest.fixture
def project(tmp_path: Path, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the cwd) whose registry holds production as version 1."""
    shutil.copy(models["eval"], tmp_path / "eval.csv")
    (tmp_path / "models").mkdir()
    with LocalRegistry(tmp_path / "registry") as registry:
        registry.register(NAME, models["production"], format="skops", lineage={}, by="test", verdict="pass",
                          alias="production")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def gate(project: Path, models: dict[str, Path], candidate: str, mode: str, report_dir: str,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    shutil.copy(models[candidate], project / "models" / "candidate.skops")
    (project / "gates.yaml").write_text(POLICY.replace("MODE", mode))
    code = main(["run", "--ci", "none", "--report-dir", report_dir])
    out = capsys.readouterr().out
    return code, json.loads((project / report_dir / "report.json").read_text()), out


def runs(project: Path) -> list:
    with LocalRegistry(project / "registry") as registry:
        return [e for e in registry.audit_log(NAME) if e.kind == "run"]


def versions(project: Path) -> list[int]:
    with LocalRegistry(project / "registry") as registry:
        return [v.version for v in registry.list_versions(NAME)]


def test_failing_candidate_in_shadow_exits_0_unregistered_with_its_verdict_audited(project, models, capsys):
    code, report, out = gate(project, models, "bad", "shadow", "shadow-report", capsys)
    assert code == 0
    assert "verdict: FAIL (shadow mode: not enforced)" in out
    assert report["verdict"] == "fail" and report["policy"]["mode"] == "shadow"
    assert {c["id"] for c in report["checks"] if c["status"] in ("fail", "inconclusive")} == FAILING
    assert report["registration"] == {"registered": False, "reason": REASON_SHADOW}
    assert versions(project) == [1]
    [entry] = runs(project)
    assert entry.verdict == "fail"
    assert entry.record["mode"] == "shadow" and entry.record["not_registered"] == REASON_SHADOW
    assert set(entry.record["failing"]) == FAILING
    md = (project / "shadow-report" / "report.md").read_text()
    assert "shadow mode" in md.splitlines()[0]


def test_enforce_blocks_the_same_candidate(project, models, capsys):
    code, report, _ = gate(project, models, "bad", "enforce", "enforce-report", capsys)
    assert code == 1 and report["verdict"] == "fail" and versions(project) == [1]


def test_passing_candidate_in_shadow_is_not_registered_either(project, models, capsys):
    code, report, _ = gate(project, models, "good", "shadow", "good-report", capsys)
    assert code == 0 and report["verdict"] == "pass"
    assert report["registration"]["registered"] is False and versions(project) == [1]
    assert runs(project)[-1].verdict == "pass"


def test_history_replays_the_would_be_verdicts(project, models, capsys):
    for candidate, report_dir in (("bad", "r1"), ("good", "r2"), ("bad", "r3")):
        assert gate(project, models, candidate, "shadow", report_dir, capsys)[0] == 0
    assert main(["calibrate", "--history", NAME, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert (history["runs"], history["blocked"]) == (3, 2)
    assert history["by_mode"] == {"shadow": {"runs": 3, "blocked": 2, "rate": 2 / 3}}
    assert history["current_policy"] == {"runs": 3, "blocked": 2, "rate": 2 / 3}
    by_id = {c["id"]: c for c in history["checks"]}
    assert all(by_id[cid]["blocked"] == 2 and by_id[cid]["runs"] == 3 for cid in FAILING)
    assert main(["calibrate", "--history", NAME]) == 0
    text = capsys.readouterr().out
    assert "would have blocked: 2 of 3 runs (67%) (shadow: 2 of 3 runs (67%))" in text
    assert "regression.roc_auc.min" in text and "other check(s) never blocked" in text
