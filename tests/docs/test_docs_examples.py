"""docs/gates.md stays true: its YAML examples load and run, and its tables match the code.

Every ```yaml block of the page is a ``gates:`` section (wrapped here in a minimal policy over a
synthetic credit data set) or a whole policy. Each must load with :func:`gates.config.load_policy`
on prediction columns, and run on real scikit-learn models without an ``error`` check; the
example ids of the page's check-id tables must match their patterns and come out of those runs.
The metric table and the interval defaults are compared with the code that defines them.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from gates.checks import fairness, regression, robustness
from gates.config import load_policy
from gates.estimates import METHOD_DELONG, METHOD_DELTA, METHOD_MULTINOMIAL, METHOD_ROWS
from gates.metrics import TASKS, metric_registry
from gates.stats.partials import METHOD_NORMAL
from gates.stats.settings import ANALYTIC_MIN_ROWS
from gates.results import Status
from gates.runner import run_policy

DOC = Path(__file__).resolve().parents[2] / "docs" / "gates.md"
GATES = ("data", "regression", "fairness", "robustness")
FEATURES = ["age", "income", "region", "channel", "customer_id"]

#: an example id of the check-id tables that the binary-task examples cannot produce: per-class
#: checks need a multiclass task (test_per_class_id produces it)
PER_CLASS_ID = "fairness.tpr_difference.max[sex;class=setosa]"

POLICY_HEAD = """\
version: 1
model:
  name: docs-example
  task: binary_classification
  candidate: {candidate}
  baseline: {baseline}
  positive_label: 1
data:
  eval: eval.csv
  target: defaulted
  reference: reference.csv
{features}  sensitive: [sex, age_band]
seed: 20261122
"""
COLUMNS_HEAD = POLICY_HEAD.format(candidate="{predictions: cand_pred, scores: cand_score}",
                                  baseline="{predictions: base_pred, scores: base_score}", features="")
MODELS_HEAD = POLICY_HEAD.format(candidate="candidate.skops", baseline="baseline.skops",
                                 features=f"  features: [{', '.join(FEATURES)}]\n")


# ---------------------------------------------------------------- reading the page


@dataclass(frozen=True)
class Block:
    """One ```yaml block of the page: the line it starts on and its text."""

    line: int
    text: str

    @property
    def data(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.text)
        assert isinstance(loaded, dict), f"docs/gates.md:{self.line}: a YAML example must be a mapping"
        return loaded

    @property
    def is_whole_policy(self) -> bool:
        return "version" in self.data


def yaml_blocks() -> list[Block]:
    text = DOC.read_text(encoding="utf-8")
    return [Block(text.count("\n", 0, m.start()) + 2, m.group(1))
            for m in re.finditer(r"^```yaml\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)]


def tables() -> Iterator[tuple[list[str], list[list[str]]]]:
    """Yield (header cells, body rows) of every Markdown table of the page."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.match(r"^\|( *-+ *\|)+$", lines[i + 1]):
            header = _cells(lines[i])
            i += 2
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            yield header, rows
        else:
            i += 1


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def _code(cell: str) -> str:
    found = re.findall(r"`([^`]+)`", cell)
    return found[0] if found else ""


def documented_ids() -> list[tuple[str, str]]:
    """Return (pattern, example id) of every row of the check-id tables; ``(same)`` repeats the pattern."""
    out = []
    for header, rows in tables():
        if header[:2] != ["check id pattern", "example"]:
            continue
        pattern = ""
        for row in rows:
            pattern = pattern if row[0] == "(same)" else _code(row[0])
            out.append((pattern, _code(row[1])))
    return out


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Turn ``regression.<metric>.<kind>[<column>=<value>]`` into a regex; ``<...>`` is any text."""
    parts = re.split(r"<[^<>]+>", pattern)
    return re.compile(".+?".join(re.escape(p) for p in parts))


# ---------------------------------------------------------------- the example folder


def credit_frame(n: int, seed: int) -> pd.DataFrame:
    """Synthetic credit applications: default leans on age, income and region; two scorers."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 91, n)
    income = np.round(rng.lognormal(10.5, 0.5, n), 2)
    region = rng.choice(["EU", "US", "APAC"], n, p=[0.4, 0.4, 0.2])
    z = -0.03 * (age - 50) - 1.2 * (np.log(income) - 10.5) + np.where(region == "US", 0.4, 0.0)
    y = (z + rng.logistic(size=n) > 0.8).astype(int)
    base = 1 / (1 + np.exp(-(1.5 * z - 1 + 0.9 * rng.normal(size=n))))
    cand = 1 / (1 + np.exp(-(1.6 * z - 1 + 0.8 * rng.normal(size=n))))
    return pd.DataFrame({
        "customer_id": np.arange(n) + seed * 100_000, "age": age,
        "age_band": np.select([age < 35, age < 55], ["18-34", "35-54"], "55+"),
        "income": income, "sex": rng.choice(["F", "M", "X"], n, p=[0.48, 0.48, 0.04]), "region": region,
        "channel": rng.choice(["web", "branch"], n, p=[0.7, 0.3]), "defaulted": y,
        "cand_score": np.round(cand, 4), "cand_pred": (cand >= 0.5).astype(int),
        "base_score": np.round(base, 4), "base_pred": (base >= 0.5).astype(int),
    })


def fit_model(reference: pd.DataFrame, c: float) -> object:
    """A logistic regression on FEATURES that ignores customer_id (so invariance holds)."""
    columns = ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), ["region", "channel"])],
                                remainder="drop")
    return make_pipeline(columns, LogisticRegression(C=c)).fit(reference[FEATURES], reference["defaulted"])


def write_schema_files(folder: Path) -> None:
    """The files the page's file-referencing example names: a pandera schema and a GX suite."""
    import pandera.pandas as pa

    (folder / "schemas").mkdir()
    schema = pa.DataFrameSchema({
        "customer_id": pa.Column(int, unique=True),
        "age": pa.Column(int, pa.Check.in_range(18, 120)),
        "sex": pa.Column(str, pa.Check.isin(["F", "M", "X"])),
    })
    (folder / "schemas" / "eval.yaml").write_text(str(schema.to_yaml()), encoding="utf-8")
    (folder / "gx").mkdir()
    suite = {"name": "eval_suite", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "income"}, "severity": "critical"},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 18,
                                                                   "max_value": 120}},
    ]}
    (folder / "gx" / "eval_suite.json").write_text(json.dumps(suite), encoding="utf-8")


def per_example_frame(prompts: int, samples: int, seed: int) -> pd.DataFrame:
    """An LLM eval set: prompts x samples, both versions' pass/fail and latency per answer."""
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(prompts), samples)
    hard = rng.normal(size=prompts)[pid]
    u = rng.random(pid.size)
    ms = rng.gamma(4.0, 60.0, prompts)[pid]
    return pd.DataFrame({
        "prompt_id": [f"q{i}" for i in pid], "language": np.where(pid % 3 == 0, "de", "en"),
        "cand_correct": (u < 1 / (1 + np.exp(hard - 1.2))).astype(int),
        "prod_correct": (u < 1 / (1 + np.exp(hard - 1.0))).astype(int),
        "cand_ms": np.round(ms * rng.lognormal(0, 0.1, pid.size), 1), "prod_ms": np.round(ms, 1),
    })


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """eval.csv, reference.csv, two skops models and the schema files, in one folder."""
    out = tmp_path_factory.mktemp("docs_examples")
    credit_frame(3000, 1).to_csv(out / "eval.csv", index=False)
    reference = credit_frame(3000, 2).drop(columns=["cand_score", "cand_pred", "base_score", "base_pred"])
    reference.to_csv(out / "reference.csv", index=False)
    for name, c in (("candidate", 1.0), ("baseline", 0.01)):
        skops.io.dump(fit_model(reference, c), out / f"{name}.skops")
    write_schema_files(out)
    per_example_frame(240, 4, 3).to_csv(out / "evals.csv", index=False)
    return out


def policy_file(folder: Path, block: Block, head: str) -> Path:
    path = folder / f"example_{block.line}.yaml"
    path.write_text(block.text if block.is_whole_policy else head + block.text, encoding="utf-8")
    return path


BLOCKS = yaml_blocks()


# ---------------------------------------------------------------- tests


def test_the_page_has_an_example_per_gate() -> None:
    shown = {gate for b in BLOCKS for gate in b.data.get("gates", {})}
    assert shown == set(GATES)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"line{b.line}")
def test_every_yaml_block_is_a_gates_section_or_a_policy(block: Block) -> None:
    assert block.is_whole_policy or set(block.data) == {"gates"}, (
        f"docs/gates.md:{block.line}: start the example with 'gates:' (or write a whole policy) so it is validated")


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"line{b.line}")
def test_example_loads(block: Block, folder: Path) -> None:
    head = MODELS_HEAD if "robustness" in block.data["gates"] else COLUMNS_HEAD  # robustness re-scores a model
    policy = load_policy(policy_file(folder, block, head))
    assert dict(policy.gates) == block.data["gates"]


def test_examples_run_and_give_the_documented_ids(folder: Path) -> None:
    produced: set[str] = set()
    for block in BLOCKS:
        result = run_policy(load_policy(policy_file(folder, block, MODELS_HEAD)))
        errors = [f"{c.id}: {c.message}" for c in result.verdict.checks if c.status is Status.ERROR]
        assert not errors, f"docs/gates.md:{block.line}: the example gives error checks: {errors}"
        produced |= {c.id for c in result.verdict.checks}
    documented = documented_ids()
    assert len(documented) >= 20
    for pattern, example in documented:
        assert pattern_regex(pattern).fullmatch(example), f"{example} does not match {pattern}"
        assert example in produced or example == PER_CLASS_ID, f"no example produces {example}"


def test_per_class_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    y = rng.choice(["setosa", "versicolor", "virginica"], 600)
    pred = np.where(rng.random(600) < 0.8, y, rng.choice(["setosa", "versicolor", "virginica"], 600))
    pd.DataFrame({"species": y, "pred": pred, "sex": rng.choice(["F", "M"], 600)}).to_csv(
        tmp_path / "eval.csv", index=False)
    (tmp_path / "gates.yaml").write_text(
        "version: 1\nmodel: {name: iris, task: multiclass_classification, candidate: {predictions: pred}, "
        "baseline: none}\ndata: {eval: eval.csv, target: species, sensitive: [sex]}\n"
        "gates:\n  fairness:\n    metrics: {tpr_difference: {max: 0.5, average: per_class}}\n", encoding="utf-8")
    ids = {c.id for c in run_policy(load_policy(tmp_path / "gates.yaml")).verdict.checks}
    assert PER_CLASS_ID in ids


def test_metric_table_matches_the_registry() -> None:
    method = {"confusion": METHOD_MULTINOMIAL, "churn": METHOD_MULTINOMIAL, "auc": METHOD_DELONG,
              "ranking": METHOD_DELTA, "row_mean": f"{METHOD_NORMAL}` (≥ {ANALYTIC_MIN_ROWS:,} rows), `{METHOD_ROWS}"}
    short = {"binary_classification": "binary", "multiclass_classification": "multiclass", "regression": "regression"}
    expected = [[f"`{m.name}`", "higher" if m.direction > 0 else "lower",
                 "labels of both models" if m.needs_baseline else m.needs,
                 ", ".join(short[t] for t in TASKS if t in m.tasks), f"`{method[m.family]}`", m.description]
                for m in metric_registry().values()]
    found = [rows for header, rows in tables() if header[:2] == ["metric", "better"]]
    assert found == [expected]


def test_interval_defaults_match_every_gate() -> None:
    [rows] = [rows for header, rows in tables() if header == ["key", "type", "default", "meaning"]
              and rows[0][0] == "`decision`"]
    documented = {_code(r[0]): _code(r[2]) for r in rows}
    from gates.stats.settings import IntervalSettings

    defaults = IntervalSettings()  # the one declaration every gate's settings come from
    actual = {k: getattr(getattr(defaults, k), "value", getattr(defaults, k)) for k in documented}
    assert documented == {k: str(v) for k, v in actual.items()}
