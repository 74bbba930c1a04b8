"""Build the quickstart demo: real data, two models, a commented policy, a registry with production in it.

The data is scikit-learn's bundled diabetes dataset (442 patients, Efron et al. 2004), read from
the installed package, so no network is needed. The label is "disease progression after one year
above the median"; ``sex`` and an ``age_band`` derived from ``age`` are the groups the fairness gate
compares. Production is a logistic regression that uses two measurements (bmi, blood pressure);
the candidate uses all ten. Production enters the registry the same way every model does: its
gates run (with no baseline, since it is the first model) and it is registered because they pass.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gates.checks import gate_registry
from gates.config import load_policy
from gates.errors import EnvironmentProblem, UserError
from gates.policy import ModelSource, Policy
from gates.finish import finish_run
from gates.registrar import baseline_resolver
from gates.reporters.json_report import build_report
from gates.runner import run_policy

MODEL_NAME = "diabetes-progression"
FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
PRODUCTION_FEATURES = ("bmi", "bp")
TARGET = "progressed"
SEED = 20261122
WRITES = ("gates.yaml", "data", "models", ".model-gates", "model-gates-report")

MSG_NOT_EMPTY = (
    "{folder} already has {found}; quickstart writes gates.yaml, data/, models/ and a registry there: "
    "run it in an empty folder (model-gates quickstart DIR)"
)
MSG_PRODUCTION_FAILED = "the demo's production model did not pass its own gates ({failing}); this is a bug"


@dataclass(frozen=True)
class Demo:
    """What :func:`build_demo` wrote, and production's registration."""

    folder: Path
    policy_path: Path
    production_version: int
    production_report_dir: Path
    rows: dict[str, int]
    gates: tuple[str, ...]


def check_empty(folder: Path) -> None:
    """Raise UserError when ``folder`` already holds anything quickstart would write."""
    found = [name for name in WRITES if (folder / name).exists()]
    if found:
        raise UserError(MSG_NOT_EMPTY.format(folder=folder, found=", ".join(found)))


def build_demo(folder: Path) -> Demo:
    """Write data, models and gates.yaml into ``folder`` and register production (v1)."""
    check_empty(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train, evaluation = demo_data()
    (folder / "data").mkdir()
    train.to_csv(folder / "data" / "train.csv", index=False)
    evaluation.to_csv(folder / "data" / "eval.csv", index=False)
    (folder / "models").mkdir()
    models = (folder / "models" / "production.skops", folder / "models" / "candidate.skops")
    save_model(production_model(train), models[0])
    save_model(candidate_model(train), models[1])
    gates = tuple(g for g in ("data", "regression", "fairness", "robustness") if g in gate_registry())
    (folder / "gates.yaml").write_text(policy_text(gates, needed_types(models)), encoding="utf-8")
    policy = load_policy(folder / "gates.yaml")
    version, report_dir = register_production(policy, folder / "models" / "production.skops",
                                              folder / "model-gates-report" / "production")
    return Demo(folder=folder, policy_path=folder / "gates.yaml", production_version=version,
                production_report_dir=report_dir, rows={"train": len(train), "eval": len(evaluation)}, gates=gates)


def demo_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (train, eval) halves of the diabetes data, stratified on the label."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["sex"] = frame["sex"].astype(int)
    frame["age"] = frame["age"].astype(int)
    progression = frame.pop("target")
    frame[TARGET] = (progression > progression.median()).astype(int)
    frame["age_band"] = np.where(frame["age"] < 50, "under_50", "50_plus")
    train, evaluation = train_test_split(frame, test_size=0.5, random_state=SEED % 2**32, stratify=frame[TARGET])
    return train.reset_index(drop=True), evaluation.reset_index(drop=True)


def production_model(train: pd.DataFrame) -> Any:
    """Return last year's model: a logistic regression on bmi and blood pressure only."""
    from sklearn.compose import ColumnTransformer

    select = ColumnTransformer([("used", "passthrough", list(PRODUCTION_FEATURES))], remainder="drop")
    return _fit(_pipeline(select), train)


def candidate_model(train: pd.DataFrame) -> Any:
    """Return the candidate: the same model family on all ten measurements."""
    return _fit(_pipeline(None), train)


def _pipeline(select: Any) -> Any:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000)]
    return make_pipeline(*([select] if select is not None else []), *steps)


def _fit(model: Any, train: pd.DataFrame) -> Any:
    return model.fit(train[list(FEATURES)], train[TARGET])


def save_model(model: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(model, path)


def needed_types(paths: tuple[Path, ...]) -> tuple[str, ...]:
    """Return the types skops' audit lists in these files (what the demo's trusted_types must name)."""
    import skops.io as sio

    return tuple(sorted({str(t) for p in paths for t in sio.get_untrusted_types(file=p)}))


def register_production(policy: Policy, model_path: Path, report_dir: Path) -> tuple[int, Path]:
    """Gate the production model as the first model (no baseline) and register it as ``production``."""
    first = dataclasses.replace(
        policy,
        model=dataclasses.replace(policy.model, candidate=ModelSource("file", path=model_path.resolve()),
                                  baseline=ModelSource("none")),
        registry=dataclasses.replace(policy.registry, alias_on_pass="production"),
    )
    result = run_policy(first, resolve_baseline=baseline_resolver(first))
    if not result.verdict.passed:
        failing = ", ".join(c.id for c in result.verdict.checks if c.is_failing)
        raise EnvironmentProblem(MSG_PRODUCTION_FAILED.format(failing=failing))
    done = finish_run(first, result, build_report(result), report_dir, register=True)
    if done.error is not None:
        raise done.error
    return int(done.report["registration"]["version"]), report_dir


# ---------------------------------------------------------------- the policy file

HEADER = """\
# model-gates policy for the quickstart demo (written by `model-gates quickstart`).
# Every key is documented in the README; `model-gates schema` prints the JSON Schema.
version: 1
model:
  name: {name}
  task: binary_classification
  candidate: models/candidate.skops      # the model being gated (.skops loads safely)
  trusted_types: [{trusted}]   # types beyond skops' defaults that these models need (docs/security.md)
  baseline: registry:production          # compared with whatever the registry calls production
  positive_label: 1
data:
  eval: data/eval.csv                    # held-out patients the models never saw
  target: {target}                       # 1 = disease progression above the median after a year
  reference: data/train.csv              # the training snapshot: drift and overlap compare with it
  features: [{features}]
  sensitive: [sex, age_band]             # groups for fairness; never fed to the models
registry:
  backend: local                         # embedded: SQLite index + content-addressed model files
  uri: .model-gates/registry
  on_pass: {{register: true, alias: staging}}   # a passing candidate becomes the new staging version
seed: {seed}
mode: enforce                            # shadow: run and report, never block, never register
gates:
"""

SECTIONS = {
    "data": """\
  data:                                  # is the eval data what we expect?
    checks:
      row_count: {min: 200}
      columns:
        age: {min: 18, max: 100, max_null_fraction: 0.0}
        sex: {allowed: [1, 2]}
        bmi: {min: 10, max: 60}
        progressed: {allowed: [0, 1]}
    drift:                               # eval vs data.reference, per column
      default: {method: psi, max: 0.25}
      columns:
        bmi: {method: ks, max: 0.2}
      min_rows: 100                      # fewer rows than this: drift is skipped, with a reason
    overlap: {max_fraction: 0.0}         # an eval row copied from the training data is leakage
""",
    "regression": """\
  regression:                            # at least as good as production, on the same rows
    decision: non_inferiority            # pass only when the interval shows "no worse than the margin"
    on_inconclusive: fail
    confidence: 0.95
    bootstrap: 1000
    multiple_testing: holm
    metrics:
      roc_auc: {min: 0.75, max_drop: 0.02}           # DeLong interval on candidate - production
      accuracy: {max_drop: 0.05}
      f1: {max_relative_drop: 0.05, severity: warn}  # warn: reported, never blocks
      churn: {max: 0.3, severity: warn}              # share of patients whose label changes
""",
    "fairness": """\
  fairness:                              # are groups treated comparably?
    groups: [sex, age_band, [sex, age_band]]   # a list inside the list is an intersection
    min_group_size: 30                   # smaller groups are reported, and left out of disparities
    min_positives: 10
    bootstrap: 1000
    on_inconclusive: warn                # 221 patients cannot prove small differences: warn, don't block
    metrics:
      demographic_parity_ratio: {min: 0.5}
      equalized_odds_difference: {max: 0.5}
      demographic_parity_difference: {no_worse_than_baseline: true, margin: 0.1}   # vs production
""",
    "robustness": """\
  robustness:                            # does it hold up under realistic corruption?
    perturbations:
      gaussian_noise: {columns: numeric, scale: [0.05, 0.2]}   # noise of 5% and 20% of each column's std
      missing: {rate: 0.1}               # 10% of cells blanked (the pipeline imputes them)
    directional: {bmi: increasing}       # a higher BMI must never lower the predicted risk
    metrics:
      roc_auc: {max_drop: 0.05}
      flip_rate: {max: 0.15}             # share of patients whose label flips under the perturbation
""",
}


def policy_text(gates: tuple[str, ...], trusted: tuple[str, ...] = ()) -> str:
    """Return the commented gates.yaml using each of ``gates`` (every gate this install has).

    ``trusted`` are the types the demo's own model files need beyond skops' defaults (we made
    those files, so we can vouch for them; a user's model gets no such pass).
    """
    head = HEADER.format(name=MODEL_NAME, target=TARGET, features=", ".join(FEATURES), seed=SEED,
                         trusted=", ".join(trusted))
    return head + "".join(SECTIONS[g] for g in gates)
