"""Values in gates.yaml: whole-scalar ``${VAR}`` keeps its YAML type, oneOf errors name the offending key."""
from __future__ import annotations

from pathlib import Path

import pytest

from gates.config import load_policy
from gates.errors import UserError
from tests.conftest import scored_frame

POLICY = """\
version: 1
model:
  name: demo
  task: binary_classification
  candidate: {candidate}
  baseline: none
  trust_pickle: {trust}
data:
  eval: eval.csv
  target: label
seed: {seed}
gates:
  regression:
    bootstrap: {boot}
    metrics:
      accuracy:
        min: {floor}
"""


def write(tmp_path: Path, **values: str) -> Path:
    scored_frame(50).to_csv(tmp_path / "eval.csv", index=False)
    fields = {"candidate": "{predictions: cand_pred}", "trust": "false", "seed": "1", "boot": "200", "floor": "0.5",
              **values}
    path = tmp_path / "gates.yaml"
    path.write_text(POLICY.format(**fields), encoding="utf-8")
    return path


def test_a_whole_unquoted_variable_is_read_as_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, trust="${TRUST}", seed="${SEED}", floor="${FLOOR}", boot="${BOOT:-300}")
    policy = load_policy(path, env={"TRUST": "true", "SEED": "42", "FLOOR": "0.75"})
    assert policy.model.trust_pickle is True
    assert policy.seed == 42 and isinstance(policy.seed, int)
    assert policy.gates["regression"]["metrics"]["accuracy"]["min"] == 0.75
    assert policy.gates["regression"]["bootstrap"] == 300


def test_quoted_or_partial_variables_stay_strings(tmp_path: Path) -> None:
    scored_frame(50).to_csv(tmp_path / "eval.csv", index=False)
    path = tmp_path / "gates.yaml"
    path.write_text(POLICY.format(candidate="{predictions: cand_pred}", trust="false", seed="1", boot="200", floor="0.5")
                    .replace("name: demo", 'name: "${NAME}"').replace("target: label", "target: la${PART}"))
    policy = load_policy(path, env={"NAME": "123", "PART": "bel"})
    assert policy.model.name == "123" and policy.data.target == "label"


@pytest.mark.parametrize("value", ["yes-please", "[1, 2]", "a: b", "{x: 1}"])
def test_a_variable_that_is_not_a_scalar_stays_text(tmp_path: Path, value: str) -> None:
    path = write(tmp_path)
    path.write_text(path.read_text() + "registry:\n  uri: ${URI}\n")
    assert load_policy(path, env={"URI": value}).registry.uri.endswith(value)


def test_a_variable_of_the_wrong_type_is_a_located_schema_error(tmp_path: Path) -> None:
    path = write(tmp_path, trust="${TRUST}")
    with pytest.raises(UserError) as err:
        load_policy(path, env={"TRUST": "maybe"})
    assert str(err.value) == "gates.yaml:7: model.trust_pickle: expected true or false, got 'maybe'"


@pytest.mark.parametrize("candidate, message", [
    ("{predictions: cand_pred, scroes: cand_score}",
     "model.candidate.scroes: unknown key 'scroes' (did you mean 'scores'?)"),
    ("{scores: 3}", "model.candidate.scores: expected a string or a list or a mapping, got 3"),
    ("7", "model.candidate: expected a string or a mapping, got 7"),
])
def test_one_of_errors_name_the_offending_key(tmp_path: Path, candidate: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        load_policy(write(tmp_path, candidate=candidate))
    assert str(err.value) == f"gates.yaml:5: {message}"


def test_one_of_a_robustness_enum_or_list_says_which(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.write_text(path.read_text() + "  robustness:\n    metrics: {flip_rate: {max: 0.1}}\n"
                                     "    perturbations:\n      gaussian_noise: {columns: numerc}\n")
    with pytest.raises(UserError) as err:
        load_policy(path)
    assert "expected one of numeric, categorical, all, got 'numerc' (did you mean 'numeric'?)" in str(err.value)
