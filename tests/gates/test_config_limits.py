"""gates.yaml from an untrusted source: finite numbers, bounded aliases, a registry uri, real files."""
from __future__ import annotations

import time

import pytest

from gates.config import (
    MAX_YAML_VALUES,
    MSG_ALIAS_BOMB,
    MSG_ALIAS_CYCLE,
    MSG_EMPTY_URI,
    MSG_NOT_FINITE,
    load_policy,
    load_yaml,
)
from gates.errors import UserError
from gates.registry.base import MAX_VERSION, MSG_BAD_VERSION, check_version, is_version_ref

BASE = """\
version: 1
model: {name: m, task: binary_classification, candidate: {predictions: p, scores: s}, baseline: none}
data: {eval: eval.csv, target: label}
gates:
  regression:
    confidence: 0.95
    metrics:
      accuracy: {min: 0.5}
      roc_auc: {min: 0.5, max_drop: 0.01}
  fairness:
    groups: [g]
    metrics:
      demographic_parity_difference: {max: 0.2}
waivers:
  - {check: regression.accuracy.min, reason: known, expires: 2999-01-01}
"""


@pytest.fixture
def policy_file(tmp_path):
    (tmp_path / "eval.csv").write_text("label,p,s,g\n1,1,0.9,a\n0,0,0.1,b\n")

    def write(text: str):
        path = tmp_path / "gates.yaml"
        path.write_text(text)
        return path

    return write


def error_of(path) -> UserError:
    with pytest.raises(UserError) as err:
        load_policy(path)
    return err.value


def test_the_base_policy_loads(policy_file):
    assert load_policy(policy_file(BASE)).model.name == "m"


@pytest.mark.parametrize("old, new, line, key", [
    ("accuracy: {min: 0.5}", "accuracy: {min: .nan}", 8, "gates.regression.metrics.accuracy.min"),
    ("max_drop: 0.01", "max_drop: .inf", 9, "gates.regression.metrics.roc_auc.max_drop"),
    ("max_drop: 0.01", "max_drop: -.inf", 9, "gates.regression.metrics.roc_auc.max_drop"),
    ("confidence: 0.95", "confidence: .NaN", 6, "gates.regression.confidence"),
    ("{max: 0.2}", "{max: .Inf}", 13, "gates.fairness.metrics.demographic_parity_difference.max"),
    ("reason: known,", "reason: known, by: .nan,", 15, "waivers[0].by"),
])
def test_non_finite_numbers_are_config_errors_with_their_line(policy_file, old, new, line, key):
    assert old in BASE
    err = error_of(policy_file(BASE.replace(old, new)))
    assert err.location == f"gates.yaml:{line}"
    assert err.message.startswith(f"{key}: " + MSG_NOT_FINITE.split("{")[0])


def bomb(levels: int, width: int = 10) -> str:
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_quickly_and_named_at_its_line(policy_file):
    text = bomb(9) + BASE  # about half a kilobyte standing for 10**9 strings
    assert len(bomb(9)) < 600
    started = time.perf_counter()
    err = error_of(policy_file(text))
    elapsed = time.perf_counter() - started
    assert err.message == MSG_ALIAS_BOMB.format(limit=MAX_YAML_VALUES)
    assert err.location.startswith("gates.yaml:")
    assert elapsed < 30  # the walk stops at MAX_YAML_VALUES; bench/README.md has the measured time


def test_aliases_within_the_limit_still_work():
    _, data = load_yaml("a: &a {min: 0.5}\nb: *a\n", "x.yaml")
    assert data == {"a": {"min": 0.5}, "b": {"min": 0.5}}


@pytest.mark.parametrize("text, line", [
    ("x: &a [1, *a]\n", 1),
    ("x: 1\ny: &a {k: [*a]}\n", 2),
    ("x: &a\n  k: *a\n", 2),
])
def test_alias_cycles_are_config_errors(policy_file, text, line):
    err = error_of(policy_file(text + BASE))
    assert err.message == MSG_ALIAS_CYCLE and err.location == f"gates.yaml:{line}"


@pytest.mark.parametrize("uri", ["''", "'   '"])
def test_an_empty_registry_uri_is_a_config_error(policy_file, uri):
    err = error_of(policy_file(BASE + f"registry: {{uri: {uri}}}\n"))
    assert err.message == f"registry.uri: {MSG_EMPTY_URI}" and err.location == "gates.yaml:16"


@pytest.mark.parametrize("ref", ["٢", "²", "1" + "0" * 30, str(MAX_VERSION + 1), "0"])
def test_baseline_versions_are_ascii_int64(policy_file, ref):
    err = error_of(policy_file(BASE.replace("baseline: none", f"baseline: 'registry:{ref}'")))
    assert err.location == "gates.yaml:2"
    assert err.message == "model.baseline: " + MSG_BAD_VERSION.format(version=ref)


@pytest.mark.parametrize("text", ["٢", "²", "١٠", "1" + "0" * 30, str(MAX_VERSION + 1), "-1", "0", "1.0", "1\n2"])
def test_check_version_refuses_what_sqlite_cannot_hold(text):
    with pytest.raises(UserError):
        check_version(text)


def test_check_version_accepts_the_int64_range():
    assert check_version("1") == 1 and check_version(str(MAX_VERSION)) == MAX_VERSION == 2**63 - 1
    assert is_version_ref("12") and not is_version_ref("٢") and not is_version_ref("production")


def test_a_model_path_that_is_a_folder_is_a_config_error(policy_file, tmp_path):
    (tmp_path / "model.skops").mkdir()
    err = error_of(policy_file(BASE.replace("{predictions: p, scores: s}", "model.skops")))
    assert err.location == "gates.yaml:2" and "a folder" in err.message


def test_a_model_path_in_a_symlink_loop_is_a_config_error(policy_file, tmp_path):
    (tmp_path / "a.skops").symlink_to(tmp_path / "b.skops")
    (tmp_path / "b.skops").symlink_to(tmp_path / "a.skops")
    err = error_of(policy_file(BASE.replace("{predictions: p, scores: s}", "a.skops")))
    assert err.location == "gates.yaml:2" and err.message.startswith("model.candidate: ")

