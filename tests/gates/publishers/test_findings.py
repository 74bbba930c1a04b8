"""Findings: which checks are flagged, at which level, on which line of gates.yaml."""
from __future__ import annotations

from pathlib import Path

from gates.identity import CheckId, untyped
from gates.publishers.findings import candidate_keypaths, config_path, findings, key_lines, locate
from tests.gates.publishers.reports import (
    LINE_ACCURACY,
    LINE_DP_RATIO,
    LINE_REGRESSION,
    LINE_ROC_AUC_MAX_DROP,
    POLICY_YAML,
    check,
    report,
)


def test_key_lines_match_the_text(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(POLICY_YAML)
    lines = key_lines(path)
    text = POLICY_YAML.splitlines()
    for keypath, line in lines.items():
        assert f"{keypath[-1]}:" in text[line - 1]
    assert lines[("gates", "regression", "metrics", "roc_auc", "max_drop")] == LINE_ROC_AUC_MAX_DROP


def test_checks_are_located_at_their_threshold(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(POLICY_YAML)
    lines = key_lines(path)
    assert locate(untyped("regression", "regression.roc_auc.max_drop"), lines) == LINE_ROC_AUC_MAX_DROP
    assert locate(untyped("regression", "regression.roc_auc.max_drop[region=north]"), lines) == LINE_ROC_AUC_MAX_DROP
    assert locate(untyped("regression", "regression.accuracy.min"), lines) == LINE_ACCURACY  # flow mapping: the metric's line
    assert locate(untyped("fairness", "fairness.demographic_parity_ratio.min[sex]"), lines) == LINE_DP_RATIO
    assert locate(untyped("regression", "regression.unknown.min"), lines) == LINE_REGRESSION
    assert locate(untyped("data", "data.not_null[age]"), lines) == LINE_REGRESSION - 1  # no data gate: the "gates:" line
    assert locate(untyped("data", "data.not_null[age]"), {}) == 1


def test_candidate_keypaths_cover_each_layout():
    assert ("gates", "data", "drift", "columns", "age") in candidate_keypaths(CheckId("data", "drift", "max", "age"))
    assert ("gates", "data", "checks", "columns", "job") in candidate_keypaths(CheckId("data", "not_null", scope="job"))
    assert ("gates", "robustness", "invariance") in candidate_keypaths(CheckId("robustness", "invariance",
                                                                                 scope="record_id"))
    assert ("gates", "regression", "metrics", "f1", "max_drop") in candidate_keypaths(
        CheckId("regression", "f1", "max_drop", "region=a [b]&c=😀"))


def test_findings_levels_paths_and_order(tmp_path):
    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "gates.yaml"
    cfg.write_text(POLICY_YAML)
    rep = report([check("regression.accuracy.min", "pass"), check("fairness.demographic_parity_ratio.min[sex]", "warn"),
                  check("regression.roc_auc.max_drop", "inconclusive"), check("data.x[y]", "error", blocking=False),
                  check("data.z[y]", "waived"), check("data.q[y]", "skipped")])
    got = [(f.check_id, f.level, f.path) for f in findings(rep, cfg, tmp_path)]
    assert got == [("regression.roc_auc.max_drop", "failure", "cfg/gates.yaml"),
                   ("fairness.demographic_parity_ratio.min[sex]", "warning", "cfg/gates.yaml"),
                   ("data.x[y]", "warning", "cfg/gates.yaml"), ("data.z[y]", "notice", "cfg/gates.yaml")]
    assert "observed 0.81, baseline 0.82, threshold min 0.8" in findings(rep, cfg, tmp_path)[0].message


def test_config_path_prefers_the_action_setting(tmp_path):
    (tmp_path / "gates.yaml").write_text(POLICY_YAML)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "policy.yaml").write_text(POLICY_YAML)
    rep = report()
    assert config_path(rep, {}, tmp_path) == (tmp_path / "gates.yaml").resolve()
    assert config_path(rep, {"MODEL_GATES_CONFIG": "sub/policy.yaml"}, tmp_path) == \
        (tmp_path / "sub" / "policy.yaml").resolve()
    assert config_path(rep, {}, tmp_path / "sub") is None
    assert [f.path for f in findings(rep, None, None)][:1] == ["gates.yaml"]
    assert Path("gates.yaml").name == "gates.yaml"
