"""The registrar: registry baselines, register only on pass, lineage, and the audit of every run."""
from __future__ import annotations

import dataclasses
import hashlib
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from gates.config import load_policy
from gates.errors import EnvironmentProblem, UserError
from gates.policy import ModelSource
from gates.registrar import (
    REASON_COLUMNS,
    REASON_DISABLED,
    REASON_FAILED,
    REASON_NO_REGISTER,
    REASON_SHADOW,
    baseline_resolver,
    open_registry,
    record_run,
)
from gates.reporters.json_report import build_report
from gates.runner import run_policy

POLICY = """\
version: 1
model: {{name: churn, task: binary_classification, candidate: {candidate}, baseline: {baseline}}}
data: {{eval: eval.csv, target: label}}
registry: {{uri: reg, on_pass: {{register: {register}, alias: staging}}}}
mode: {mode}
gates:
  data:
    checks:
      row_count: {{min: {min_rows}}}
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(tmp_path: Path):
    """Write eval.csv, two model files and return a function writing gates.yaml and loading it."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200)})
    y = (X.x1 - X.x2 + rng.normal(size=200) > 0).astype(int)
    X.assign(label=y, pred=y).to_csv(tmp_path / "eval.csv", index=False)
    for name, c in (("a.skops", 1.0), ("b.skops", 0.05)):
        sio.dump(LogisticRegression(C=c).fit(X, y), tmp_path / name)

    def write(candidate: str = "a.skops", baseline: str = "registry:production", register: str = "true",
              mode: str = "enforce", min_rows: int = 10):
        (tmp_path / "gates.yaml").write_text(POLICY.format(candidate=candidate, baseline=baseline, register=register,
                                                           mode=mode, min_rows=min_rows))
        return load_policy(tmp_path / "gates.yaml")

    return write


def gate(policy, *, register: bool = True, ci: dict | None = None):
    """Run the policy as ``model-gates run`` does; return (result, report, registration block)."""
    result = run_policy(policy, resolve_baseline=baseline_resolver(policy))
    report = build_report(result, ci=ci)
    block = record_run(policy, result, report, register=register)
    return result, report, block


def test_a_passing_candidate_is_registered_with_its_alias(project, tmp_path):
    _, report, block = gate(project())
    assert report["verdict"] == "pass"
    assert block == {"registered": True, "backend": "local", "version": 1, "aliases": ["staging"],
                     "already_registered": False}
    reg = open_registry(project().registry)
    assert reg.get_version("churn", 1).model_sha256 == sha(tmp_path / "a.skops")


def test_the_same_bytes_again_are_already_registered(project):
    gate(project())
    _, _, block = gate(project())
    assert block["version"] == 1 and block["already_registered"] is True
    assert [v.version for v in open_registry(project().registry).list_versions("churn")] == [1]


def test_lineage_records_what_design_section_5_lists(project, tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_GATES_GIT_SHA", "0123abcd")
    monkeypatch.setenv("MODEL_GATES_ACTOR", "ci-bot")
    ci = {"platform": "gitlab", "url": "https://gitlab.example/acme/churn/-/jobs/7",
          "pipeline_url": "https://gitlab.example/acme/churn/-/pipelines/3"}
    _, report, _ = gate(project(), ci=ci)
    mv = open_registry(project().registry).get_version("churn", 1)
    lin = mv.lineage
    assert lin["model"]["sha256"] == sha(tmp_path / "a.skops") and lin["model"]["format"] == "skops"
    assert lin["data"]["eval"]["sha256"] == sha(tmp_path / "eval.csv")
    assert lin["data"]["eval"]["rows"] == len(pd.read_csv(tmp_path / "eval.csv"))
    assert lin["policy"]["sha256"] == sha(tmp_path / "gates.yaml")
    assert lin["git_sha"] == "0123abcd"
    assert lin["ci_url"] == mv.ci_url == ci["url"]
    assert lin["environment"]["python"] == platform.python_version()
    assert lin["environment"]["scikit-learn"] == metadata.version("scikit-learn")
    assert lin["metrics"] == {c["id"]: c["observed"] for c in report["checks"]}
    assert lin["metrics"]["data.row_count.min"] == 200
    assert lin["verdict"] == "pass" and lin["report"]["checks"] == report["checks"]
    assert mv.created_by == lin["registered_by"] == "ci-bot"


@pytest.mark.parametrize("kwargs, register, reason", [
    ({}, False, REASON_NO_REGISTER),
    ({"mode": "shadow"}, True, REASON_SHADOW),
    ({"register": "false"}, True, REASON_DISABLED),
    ({"min_rows": 10**6}, True, REASON_FAILED),
    ({"candidate": "{predictions: pred}"}, True, REASON_COLUMNS),
])
def test_runs_that_must_not_register_are_still_audited(project, kwargs, register, reason):
    policy = project(**kwargs)
    _, report, block = gate(policy, register=register)
    assert block == {"registered": False, "reason": reason}
    reg = open_registry(policy.registry)
    assert reg.resolve("churn", "1") is None
    [event] = reg.audit_log("churn")
    assert (event.kind, event.verdict, event.record["not_registered"]) == ("run", report["verdict"], reason)
    assert event.record["run_id"] == report["run"]["id"]


def test_a_failed_run_is_audited_with_its_failing_checks(project):
    _, report, _ = gate(project(min_rows=10**6))
    [event] = open_registry(project().registry).audit_log("churn")
    assert event.verdict == "fail" == report["verdict"]
    assert event.record["failing"] == ["data.row_count.min"]
    assert event.record["checks"] == [{"id": "data.target.not_null", "status": "pass", "blocking": True},
                                      {"id": "data.target.labels", "status": "pass", "blocking": True},
                                      {"id": "data.row_count.min", "status": "fail", "blocking": True}]


def test_the_registered_production_model_is_the_next_baseline(project, tmp_path):
    gate(project())
    open_registry(project().registry).set_alias("churn", "production", 1, by="bob")
    policy = project(candidate="b.skops")
    resolved = baseline_resolver(policy)("production")
    assert resolved.version == 1 and resolved.uri == "registry:production (v1)"
    assert resolved.path.read_bytes() == (tmp_path / "a.skops").read_bytes()
    assert resolved.sha256 == sha(tmp_path / "a.skops") and resolved.format == "skops"
    _, report, block = gate(policy)
    assert report["model"]["baseline"]["version"] == 1
    assert report["model"]["baseline"]["sha256"] == sha(tmp_path / "a.skops")
    assert block["version"] == 2


def test_baselines_outside_the_registry_never_touch_it(project, tmp_path):
    policy = project(baseline="b.skops")
    assert baseline_resolver(policy) is None
    run_policy(policy, resolve_baseline=baseline_resolver(policy))
    assert not (tmp_path / "reg").exists()


def test_an_unset_alias_means_no_baseline_and_creates_nothing(project, tmp_path):
    policy = project()
    assert baseline_resolver(policy)("production") is None
    result = run_policy(policy, resolve_baseline=baseline_resolver(policy))
    assert not result.context.has_baseline
    assert not (tmp_path / "reg").exists()


def test_a_corrupted_baseline_blob_stops_the_run(project):
    gate(project())
    reg = open_registry(project().registry)
    reg.set_alias("churn", "production", 1, by="bob")
    blob = reg.fetch("churn", 1)
    blob.chmod(0o644)
    blob.write_bytes(b"tampered")
    with pytest.raises(EnvironmentProblem, match="corrupted"):
        baseline_resolver(project())("production")


def test_a_candidate_changed_after_gating_is_not_registered(project, tmp_path):
    policy = project()
    result = run_policy(policy, resolve_baseline=baseline_resolver(policy))
    report = build_report(result)
    (tmp_path / "a.skops").write_bytes((tmp_path / "b.skops").read_bytes())
    with pytest.raises(EnvironmentProblem, match="changed since it was gated"):
        record_run(policy, result, report, register=True)
    assert open_registry(policy.registry).resolve("churn", "1") is None


def test_the_registry_section_picks_the_backend(project):
    policy = project()
    by_version = dataclasses.replace(policy.model, baseline=ModelSource("registry", ref="2"))
    other = dataclasses.replace(policy, model=by_version)
    with pytest.raises(UserError, match="has no version 2 \\(no versions yet\\)"):
        baseline_resolver(other)("2")  # a pinned version that does not exist is never "no baseline"
    assert open_registry(policy.registry).kind == "local"


@pytest.mark.parametrize("ref, needle", [
    ("prod", "model.baseline: registry:prod: model 'churn' has no alias 'prod' (did you mean 'production'?"),
    ("7", "model.baseline: registry:7: model 'churn' has no version 7 (versions 1-1)"),
])
def test_a_baseline_that_cannot_exist_is_a_config_error(project, ref, needle):
    """Comparing against nothing would let a worse candidate through: a typo'd baseline is an error."""
    gate(project())
    open_registry(project().registry).set_alias("churn", "production", 1, by="bob")
    policy = project(candidate="b.skops", baseline=f"registry:{ref}")
    with pytest.raises(UserError) as info:
        baseline_resolver(policy)(ref)
    assert needle in str(info.value) and str(info.value).startswith("gates.yaml:2:")


def test_an_unset_alias_on_a_model_with_versions_is_no_baseline(project):
    gate(project())
    policy = project(candidate="b.skops", baseline="registry:production")
    assert baseline_resolver(policy)("production") is None
