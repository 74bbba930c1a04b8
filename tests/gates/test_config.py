"""Config loading: every mistake is one line naming file, line and key; valid files build a Policy."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gates import config
from gates.config import load_policy
from gates.errors import UserError


def error_of(path: Path, **kw: object) -> str:
    with pytest.raises(UserError) as info:
        load_policy(path, **kw)  # type: ignore[arg-type]
    return str(info.value)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_valid_policy_builds_with_defaults(write_policy):
    policy = load_policy(write_policy())
    assert policy.model.name == "demo"
    assert policy.model.candidate.kind == "columns"
    assert policy.data.eval == (write_policy().parent / "eval.csv").resolve()
    assert policy.registry.backend == "local"
    assert policy.registry.uri == str((write_policy().parent / ".model-gates/registry").resolve())
    assert policy.seed == 7 and policy.mode == "enforce"
    assert len(policy.sha256) == 64


def test_bad_type_names_line_and_key(write_policy):
    path = write_policy("roc_auc: {min: 0.7, max_drop: abc}")
    msg = error_of(path)
    line = line_of(path.read_text(), "max_drop: abc")
    assert msg == (f"gates.yaml:{line}: gates.regression.metrics.roc_auc.max_drop: "
                   "expected a number, got 'abc'")


def test_unknown_threshold_suggests_the_right_one(write_policy):
    path = write_policy("roc_auc: {max_dorp: 0.01}")
    msg = error_of(path)
    line = line_of(path.read_text(), "max_dorp")
    assert msg == (f"gates.yaml:{line}: gates.regression.metrics.roc_auc.max_dorp: unknown threshold "
                   "'max_dorp' (did you mean 'max_drop'?)")


def test_unknown_top_level_key(write_policy):
    path = write_policy()
    path.write_text(path.read_text() + "registy: {}\n")
    msg = error_of(path)
    assert msg.startswith(f"gates.yaml:{line_of(path.read_text(), 'registy')}: registy: unknown key 'registy'")
    assert "did you mean 'registry'" in msg


def test_yaml_syntax_error_has_line(write_policy):
    path = write_policy()
    path.write_text("version: 1\nmodel: [unclosed\n  name: x\n")
    msg = error_of(path)
    assert msg.startswith("gates.yaml:") and "invalid YAML" in msg
    assert "\n" not in msg


def test_missing_config_file(tmp_path):
    msg = error_of(tmp_path / "nope.yaml")
    assert msg == f"{tmp_path / 'nope.yaml'}: {config.MSG_NOT_FOUND}"


def test_missing_referenced_file(write_policy):
    path = write_policy()
    (path.parent / "eval.csv").unlink()
    msg = error_of(path)
    assert msg == f"gates.yaml:{line_of(path.read_text(), 'eval:')}: data.eval: " + \
        config.MSG_MISSING_FILE.format(path="eval.csv")


def test_unknown_metric_lists_known_ones(write_policy):
    path = write_policy("rocauc: {min: 0.7}")
    msg = error_of(path)
    assert msg.startswith(f"gates.yaml:{line_of(path.read_text(), 'rocauc')}: gates.regression.metrics.rocauc:")
    assert "roc_auc" in msg and "accuracy" in msg


def test_vacuous_policy_is_an_error_unless_shadow(write_policy):
    path = write_policy("accuracy: {min: 0.5, severity: warn}")
    assert error_of(path).endswith(config.MSG_VACUOUS)
    path.write_text(path.read_text() + "mode: shadow\n")
    assert load_policy(path).is_shadow


def test_env_interpolation_and_default(write_policy, monkeypatch):
    path = write_policy()
    text = path.read_text().replace("name: demo", "name: ${MODEL_NAME}").replace("seed: 7", "seed: 7\n")
    path.write_text(text)
    assert load_policy(path, env={"MODEL_NAME": "from-env"}).model.name == "from-env"
    msg = error_of(path, env={})
    assert msg == f"gates.yaml:{line_of(text, '${MODEL_NAME}')}: model.name: " + \
        config.MSG_UNSET_VAR.format(var="MODEL_NAME")
    path.write_text(text.replace("${MODEL_NAME}", "${MODEL_NAME:-fallback}"))
    assert load_policy(path, env={}).model.name == "fallback"


def test_pickle_needs_trust(write_policy):
    path = write_policy()
    (path.parent / "model.joblib").write_bytes(b"not really a pickle")
    text = path.read_text().replace("candidate: {predictions: cand_pred, scores: cand_score}",
                                    "candidate: model.joblib")
    path.write_text(text)
    msg = error_of(path)
    assert msg == f"gates.yaml:{line_of(text, 'model.joblib')}: model.candidate: " + \
        config.MSG_PICKLE.format(path="model.joblib")
    path.write_text(text.replace("positive_label: 1", "positive_label: 1\n  trust_pickle: true"))
    assert load_policy(path).model.trust_pickle


def test_duplicate_key_is_an_error(write_policy):
    path = write_policy()
    text = path.read_text().replace("seed: 7", "seed: 7\nseed: 8")
    path.write_text(text)
    assert error_of(path) == f"gates.yaml:{line_of(text, 'seed: 8')}: seed: " + \
        config.MSG_DUPLICATE_KEY.format(key="seed")


def test_expired_waiver_is_an_error(write_policy):
    path = write_policy()
    text = path.read_text() + ("waivers:\n  - check: regression.accuracy.max_drop\n"
                               "    reason: known label noise\n    expires: 2026-01-31\n")
    path.write_text(text)
    msg = error_of(path, today=dt.date(2026, 2, 1))
    assert msg == f"gates.yaml:{line_of(text, 'expires')}: waivers[0].expires: " + \
        config.MSG_WAIVER_EXPIRED.format(check="regression.accuracy.max_drop", date="2026-01-31")
    policy = load_policy(path, today=dt.date(2026, 1, 31))
    assert policy.waivers[0].reason == "known label noise"


def test_enum_error_lists_options(write_policy):
    path = write_policy()
    text = path.read_text().replace("task: binary_classification", "task: binary")
    path.write_text(text)
    msg = error_of(path)
    assert msg.startswith(f"gates.yaml:{line_of(text, 'task: binary')}: model.task: expected one of "
                          "binary_classification, multiclass_classification, regression, per_example, got 'binary'")


def test_missing_required_key(write_policy):
    path = write_policy()
    text = path.read_text().replace("  target: label\n", "")
    path.write_text(text)
    assert error_of(path) == f"gates.yaml:{line_of(text, 'data:')}: data: " + \
        config.MSG_MISSING_KEY.format(key="target")


def test_schema_lists_every_gate():
    schema = config.policy_schema()
    gates = schema["properties"]["gates"]["properties"]
    assert "regression" in gates
    assert gates["regression"]["additionalProperties"] is False


def test_gate_section_without_metrics_is_a_config_error(write_policy):
    path = write_policy()
    text = path.read_text()
    text = text[: text.index("    metrics:")]
    path.write_text(text)
    assert error_of(path) == f"gates.yaml:{line_of(text, 'regression:')}: gates.regression: " + \
        config.MSG_MISSING_KEY.format(key="metrics")


def test_robustness_alone_cannot_block_a_prediction_column_candidate(write_policy):
    path = write_policy("accuracy: {min: 0.5, severity: warn}")
    path.write_text(path.read_text() + "  robustness:\n    perturbations:\n      missing: {rate: 0.1}\n"
                    "    metrics:\n      flip_rate: {max: 0.05}\n")
    assert error_of(path).endswith(config.MSG_VACUOUS)
