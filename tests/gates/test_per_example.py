"""task: per_example: the policy form, and the regression gate on per-row score columns."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from gates.checks import regression as rg
from gates.clusters import METHOD_BOOTSTRAP, METHOD_NORMAL, NORMAL_MIN_CLUSTERS
from gates.config import load_policy
from gates.context import EvalContext
from gates.errors import UserError
from gates.results import CheckResult, Status

CANDIDATE = {"scores": {"correct": "cand_correct", "latency": "cand_ms"}}
BASELINE = {"scores": {"correct": "prod_correct", "latency": "prod_ms"}}


def evals(n_prompts: int = 300, samples: int = 4, *, gain: float = 0.0, slower: float = 1.0,
          seed: int = 0) -> pd.DataFrame:
    """Prompts x samples of two versions: a prompt's difficulty is shared by its samples and versions."""
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n_prompts), samples)
    hard = rng.normal(size=n_prompts)[pid]
    u = rng.random(pid.size)
    base_ms = rng.gamma(4.0, 50.0, n_prompts)[pid] * rng.lognormal(0, 0.2, pid.size)
    return pd.DataFrame({
        "prompt_id": [f"p{i:04d}" for i in pid],
        "language": np.where(pid % 3 == 0, "de", "en"),
        "cand_correct": (u < 1 / (1 + np.exp(-(0.6 + gain + hard)))).astype(int),
        "prod_correct": (u < 1 / (1 + np.exp(-(0.6 + hard)))).astype(int),
        "cand_ms": base_ms * slower * rng.lognormal(0, 0.1, pid.size),
        "prod_ms": base_ms,
    })


def write(tmp_path: Path, df: pd.DataFrame, gates: dict[str, Any], *, model: dict[str, Any] | None = None,
          data: dict[str, Any] | None = None) -> Path:
    df.to_csv(tmp_path / "evals.csv", index=False)
    doc = {"version": 1,
           "model": {"name": "bot", "task": "per_example", "candidate": CANDIDATE, "baseline": BASELINE,
                     **(model or {})},
           "data": {"eval": "evals.csv", "cluster": "prompt_id", **(data or {})}, "seed": 3, "gates": gates}
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def regression(path: Path) -> dict[str, CheckResult]:
    policy = load_policy(path)
    return {r.id: r for r in rg.GATE.run(EvalContext(policy), policy.gates["regression"])}


def error_of(path: Path) -> str:
    with pytest.raises(UserError) as exc:
        load_policy(path)
    return str(exc.value)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# ------------------------------------------------------------------ the policy form


def test_per_example_needs_no_target_and_keeps_names(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, evals(), {"regression": {"metrics": {"correct": {"min": 0.5}}}}))
    assert policy.data.target is None
    assert policy.data.cluster == "prompt_id"
    assert policy.model.candidate.score_columns == {"correct": "cand_correct", "latency": "cand_ms"}


def test_unknown_metric_is_located_with_a_hint_over_the_score_names(tmp_path: Path) -> None:
    path = write(tmp_path, evals(), {"regression": {"metrics": {"corect": {"min": 0.5}}}})
    msg = error_of(path)
    assert msg == (f"gates.yaml:{line_of(path, 'corect')}: gates.regression.metrics.corect: "
                   + rg.MSG_UNKNOWN_SCORE.format(name="corect", hint=" (did you mean 'correct'?)",
                                                 known="correct, latency"))


def test_registry_metric_names_are_not_per_example_scores(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, evals(), {"regression": {"metrics": {"accuracy": {"min": 0.5}}}}))
    assert "unknown metric 'accuracy'" in msg and "correct, latency" in msg


def test_baseline_names_must_match(tmp_path: Path) -> None:
    path = write(tmp_path, evals(), {"regression": {"metrics": {"correct": {"min": 0.5}}}},
                 model={"baseline": {"scores": {"correct": "prod_correct", "latncy": "prod_ms"}}})
    msg = error_of(path)
    assert msg.startswith(f"gates.yaml:{line_of(path, 'latncy')}: model.baseline.scores: ")
    assert "missing latency" in msg and "unknown 'latncy' (did you mean 'latency'?)" in msg


def test_a_registry_string_baseline_asks_for_score_columns(tmp_path: Path) -> None:
    path = write(tmp_path, evals(), {"regression": {"metrics": {"correct": {"min": 0.5}}}},
                 model={"baseline": "registry:production"})
    assert "{registry: production, scores: {...}}" in error_of(path)


def test_target_is_still_required_elsewhere_and_better_is_per_example_only(tmp_path: Path) -> None:
    df = evals()
    df["label"] = df["prod_correct"]
    df["p"] = 0.5
    doc = {"version": 1, "model": {"name": "m", "task": "binary_classification", "candidate": {"scores": "p"},
                                   "baseline": "none"},
           "data": {"eval": "evals.csv"}, "gates": {"regression": {"metrics": {"roc_auc": {"min": 0.5}}}}}
    df.to_csv(tmp_path / "evals.csv", index=False)
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert error_of(path).endswith("data: missing required key 'target'")
    doc["data"]["target"] = "label"
    doc["gates"]["regression"]["metrics"]["roc_auc"]["better"] = "lower"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert "better applies to per_example scores; roc_auc's direction is known (higher is better)" in error_of(path)


def test_a_non_numeric_score_column_is_a_located_error(tmp_path: Path) -> None:
    df = evals()
    df["cand_correct"] = np.where(df["cand_correct"] == 1, "yes", "no")
    policy = load_policy(write(tmp_path, df, {"regression": {"metrics": {"correct": {"min": 0.5}}}}))
    with pytest.raises(UserError, match="score column 'cand_correct' is not numeric"):
        EvalContext(policy).predictions("candidate")


# ------------------------------------------------------------------ regression numbers


def test_means_deltas_and_cluster_bootstrap(tmp_path: Path) -> None:
    df = evals(gain=0.3)
    path = write(tmp_path, df, {"regression": {"bootstrap": 1000, "metrics": {
        "correct": {"min": 0.5, "max_drop": 0.02}, "latency": {"better": "lower", "max_relative_drop": 0.1}},
        "slices": ["language"], "min_slice_size": 50}})
    out = regression(path)
    floor = out["regression.correct.min"]
    assert floor.observed == pytest.approx(df["cand_correct"].mean())
    assert floor.ci_method == METHOD_BOOTSTRAP and floor.details["clusters"] == 300
    drop = out["regression.correct.max_drop"]
    assert drop.delta == pytest.approx((df["cand_correct"] - df["prod_correct"]).mean())
    assert drop.status is Status.PASS
    de = out["regression.correct.max_drop[language=de]"]
    rows = df[df["language"] == "de"]
    assert de.delta == pytest.approx((rows["cand_correct"] - rows["prod_correct"]).mean())
    assert de.details["clusters"] == rows["prompt_id"].nunique() == 100
    lat = out["regression.latency.max_relative_drop"]
    assert lat.observed == pytest.approx(df["cand_ms"].mean())
    assert lat.baseline == pytest.approx(df["prod_ms"].mean())
    assert lat.status is Status.PASS


def test_lower_is_better_fails_when_slower(tmp_path: Path) -> None:
    path = write(tmp_path, evals(slower=1.3), {"regression": {"metrics": {
        "latency": {"better": "lower", "max_relative_drop": 0.1}}}})
    lat = regression(path)["regression.latency.max_relative_drop"]
    assert lat.status is Status.FAIL and lat.delta > 0
    assert lat.ci[0] > 0.1 * lat.baseline  # the interval of the change lies above the allowed rise


def test_min_slice_size_counts_clusters(tmp_path: Path) -> None:
    path = write(tmp_path, evals(), {"regression": {"metrics": {"correct": {"min": 0.1}}, "slices": ["language"],
                                                    "min_slice_size": 150}})
    out = regression(path)
    assert out["regression.correct.min[language=de]"].status is Status.SKIPPED
    assert "100 clusters" in out["regression.correct.min[language=de]"].message  # 400 rows, 100 prompts
    assert out["regression.correct.min[language=en]"].status is Status.PASS


def test_many_clusters_use_the_cluster_robust_normal_interval(tmp_path: Path) -> None:
    df = evals(n_prompts=NORMAL_MIN_CLUSTERS + 100, samples=3, gain=-0.05, seed=2)
    path = write(tmp_path, df, {"regression": {"metrics": {"correct": {"max_drop": 0.05}},
                                               "multiple_testing": "none"}})
    r = regression(path)["regression.correct.max_drop"]
    assert r.ci_method == METHOD_NORMAL
    d = (df["cand_correct"] - df["prod_correct"]).to_numpy()
    totals = pd.Series(d - d.mean()).groupby(df["prompt_id"]).sum()
    g = len(totals)
    se = np.sqrt(g / (g - 1) * (totals ** 2).sum()) / len(d)
    from scipy.stats import norm
    z = norm.ppf(0.975)
    assert r.ci == pytest.approx((d.mean() - z * se, d.mean() + z * se), rel=1e-6)


def test_missing_scores_are_an_error_naming_the_column(tmp_path: Path) -> None:
    df = evals()
    df.loc[[3, 10, 11], "cand_ms"] = np.nan
    path = write(tmp_path, df, {"regression": {"metrics": {"latency": {"better": "lower", "max": 1e9}}}})
    r = regression(path)["regression.latency.max"]
    assert r.status is Status.ERROR
    assert r.message == "score column 'cand_ms' of the candidate has 3 missing value(s) of 1200"


def test_without_baseline_relative_checks_skip(tmp_path: Path) -> None:
    path = write(tmp_path, evals(), {"regression": {"metrics": {"correct": {"min": 0.5, "max_drop": 0.01}}}},
                 model={"baseline": "none"})
    out = regression(path)
    assert out["regression.correct.max_drop"].status is Status.SKIPPED
    assert out["regression.correct.min"].status is Status.PASS


def test_rows_are_independent_without_cluster(tmp_path: Path) -> None:
    df = evals()
    path = write(tmp_path, df, {"regression": {"metrics": {"correct": {"min": 0.5}}}}, data={"cluster": None})
    doc = yaml.safe_load(path.read_text())
    del doc["data"]["cluster"]
    path.write_text(yaml.safe_dump(doc))
    r = regression(path)["regression.correct.min"]
    assert r.ci_method == "bootstrap-rows" and "clusters" not in r.details


# ------------------------------------------------------------------ fairness on scores


def fairness(path: Path) -> dict[str, CheckResult]:
    from gates.checks import fairness as fg

    policy = load_policy(path)
    return {r.id: r for r in fg.GATE.run(EvalContext(policy), policy.gates["fairness"])}


def test_group_means_differences_and_ratios_match_pandas(tmp_path: Path) -> None:
    df = evals(gain=0.2, seed=5)
    df["tier"] = np.where(df["prompt_id"].str[-1].isin(list("01")), "free", "paid")
    path = write(tmp_path, df, {"fairness": {"groups": ["language", ["language", "tier"]], "min_group_size": 20,
                                             "metrics": {"correct_difference": {"max": 0.2, "no_worse_than_baseline": True},
                                                         "latency_ratio": {"min": 0.5}}}},
                 data={"sensitive": ["language"]})
    out = fairness(path)
    by = df.groupby("language")
    diff = out["fairness.correct_difference.max[language]"]
    means = by["cand_correct"].mean()
    assert diff.observed == pytest.approx(means.max() - means.min())
    base = by["prod_correct"].mean()
    assert diff.baseline == pytest.approx(base.max() - base.min())
    assert diff.ci_method == f"{METHOD_BOOTSTRAP}-hull"  # the fairness gate reads hull intervals
    groups = {g["group"]["language"]: g for g in diff.details["groups"]}
    assert groups["de"]["metrics"]["correct"] == pytest.approx(means["de"])
    assert groups["de"]["clusters"] == df[df["language"] == "de"]["prompt_id"].nunique()
    assert groups["de"]["size"] == int((df["language"] == "de").sum())
    ratio = out["fairness.latency_ratio.min[language]"]
    lat = by["cand_ms"].mean()
    assert ratio.observed == pytest.approx(lat.min() / lat.max())
    inter = out["fairness.correct_difference.max[language&tier]"]
    cells = df.groupby(["language", "tier"])["cand_correct"].mean()
    assert inter.observed == pytest.approx(cells.max() - cells.min())
    nwtb = out["fairness.correct_difference.no_worse_than_baseline[language]"]
    assert nwtb.delta == pytest.approx((means.max() - means.min()) - (base.max() - base.min()))


def test_fairness_interval_resamples_clusters(tmp_path: Path) -> None:
    """The disparity's interval matches the one read from a slow cluster bootstrap of the same disparity."""
    df = evals(n_prompts=240, samples=5, seed=8)
    path = write(tmp_path, df, {"fairness": {"groups": ["language"], "bootstrap": 2000,
                                             "metrics": {"correct_difference": {"max": 0.5}}}})
    r = fairness(path)["fairness.correct_difference.max[language]"]
    rng = np.random.default_rng(1)
    members = [g.index.to_numpy() for _, g in df.groupby("prompt_id")]
    correct, lang = df["cand_correct"].to_numpy(), df["language"].to_numpy()
    reps = []
    for _ in range(1500):  # draw prompts with replacement, keep all their rows
        rows = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        m = [correct[rows][lang[rows] == g].mean() for g in ("de", "en")]
        reps.append(max(m) - min(m))
    q_lo, q_hi = np.quantile(reps, [0.025, 0.975])
    t = r.observed  # the hull of the slow replicates' percentile and basic intervals, clipped to [0, 1]
    lo, hi = max(min(q_lo, 2 * t - q_hi), 0.0), max(q_hi, 2 * t - q_lo)
    assert r.ci[0] == pytest.approx(lo, abs=0.1 * (q_hi - q_lo))
    assert r.ci[1] == pytest.approx(hi, abs=0.1 * (q_hi - q_lo))


def test_min_group_size_counts_clusters(tmp_path: Path) -> None:
    df = evals(n_prompts=300, samples=4)
    path = write(tmp_path, df, {"fairness": {"groups": ["language"], "min_group_size": 150,
                                             "metrics": {"correct_difference": {"max": 0.5}}}})
    r = fairness(path)["fairness.correct_difference.max[language]"]
    groups = {g["group"]["language"]: g for g in r.details["groups"]}
    assert groups["de"]["excluded"] == "100 clusters < min_group_size 150"  # 400 rows in 100 prompts
    assert r.status is Status.ERROR  # one group left: no disparity


def test_fairness_unknown_score_name_hint(tmp_path: Path) -> None:
    path = write(tmp_path, evals(), {"fairness": {"groups": ["language"],
                                                  "metrics": {"corect_difference": {"max": 0.1}}}})
    msg = error_of(path)
    assert msg.startswith(f"gates.yaml:{line_of(path, 'corect_difference')}: gates.fairness.metrics.corect_difference")
    assert "(did you mean 'correct_difference'?)" in msg


# ------------------------------------------------------------------ data gate, robustness, whole runs


def run_all(path: Path) -> dict[str, CheckResult]:
    from gates.runner import run_policy

    return {c.id: c for c in run_policy(load_policy(path)).verdict.checks}


def test_missing_scores_fail_a_blocking_data_check_naming_column_and_count(tmp_path: Path) -> None:
    df = evals()
    df.loc[[1, 2], "prod_correct"] = np.nan
    path = write(tmp_path, df, {"regression": {"metrics": {"correct": {"min": 0.1}}}})
    out = run_all(path)
    bad = out["data.scores.not_null[prod_correct]"]
    assert bad.status is Status.FAIL and bad.blocking and bad.observed == 2
    assert "2 of 1200 eval rows have no baseline score in 'prod_correct'" in bad.message
    assert out["data.scores.not_null[cand_correct]"].status is Status.PASS
    assert not [cid for cid in out if cid.startswith("data.target")]  # no target: its checks do not apply


def test_score_drift_against_a_reference_run(tmp_path: Path) -> None:
    from scipy.stats import ks_2samp

    df = evals(seed=1)
    ref = evals(seed=2)
    ref["cand_ms"] = ref["cand_ms"] * 0.6  # last week's run was faster
    ref.to_csv(tmp_path / "reference.csv", index=False)
    path = write(tmp_path, df, {"data": {"drift": {"default": {"method": "ks", "max": 0.1}, "min_rows": 100}},
                                "regression": {"metrics": {"correct": {"min": 0.1}}}},
                 data={"reference": "reference.csv"})
    out = run_all(path)
    drift = out["data.drift.max[cand_ms]"]
    assert drift.observed == pytest.approx(ks_2samp(df["cand_ms"], ref["cand_ms"]).statistic)
    assert drift.status is Status.FAIL
    assert "data.drift.max[prompt_id]" not in out  # the cluster key is an id, not a distribution


def test_robustness_is_skipped_with_a_reason(tmp_path: Path) -> None:
    from gates.checks.robustness import MSG_PER_EXAMPLE

    path = write(tmp_path, evals(), {"regression": {"metrics": {"correct": {"min": 0.1}}},
                                     "robustness": {"perturbations": {"missing": {"rate": 0.1}},
                                                    "metrics": {"correct": {"max_drop": 0.01}}}})
    skipped = [c for c in run_all(path).values() if c.gate == "robustness"]
    assert skipped and all(c.status is Status.SKIPPED and c.message == MSG_PER_EXAMPLE for c in skipped)


def test_leakage_needs_a_target(tmp_path: Path) -> None:
    path = write(tmp_path, evals(), {"data": {"leakage": {}}, "regression": {"metrics": {"correct": {"min": 0.1}}}})
    assert "leakage needs a target" in error_of(path)


# ------------------------------------------------------------------ registry


def gate_and_record(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from gates.registrar import baseline_resolver, record_run
    from gates.reporters.json_report import build_report
    from gates.runner import run_policy

    policy = load_policy(path)
    result = run_policy(policy, resolve_baseline=baseline_resolver(policy))
    report = build_report(result)
    return report, record_run(policy, result, report, register=True)


def test_the_artifact_folder_is_registered_and_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gates.artifacts import describe
    from gates.cli import main
    from gates.registry import open_backend

    (tmp_path / "prompt").mkdir()
    (tmp_path / "prompt" / "system.txt").write_text("Answer briefly.\n")
    path = write(tmp_path, evals(gain=0.3), {"regression": {"metrics": {"correct": {"min": 0.5}}}},
                 model={"artifact": "prompt"})
    report, block = gate_and_record(path)
    assert block["registered"] and block["version"] == 1
    expected = describe(str(tmp_path / "prompt")).sha256
    assert report["model"]["candidate"] == {"uri": "prompt", "sha256": expected, "format": "tar",
                                            "scores": {"correct": "cand_correct", "latency": "cand_ms"}}
    reg = open_backend("local", str(tmp_path / ".model-gates" / "registry"))
    mv = reg.get_version("bot", 1)
    assert mv.model_sha256 == expected and mv.format == "tar"
    assert mv.lineage["model"]["artifact"]["uri"] == "prompt"
    assert mv.lineage["data"]["eval"]["clusters"] == 300
    reg.close()
    capsys.readouterr()
    assert main(["show", "bot", "1", "-c", str(path)]) == 0
    shown = capsys.readouterr().out
    assert f"artifact     prompt (tar, sha256 {expected})" in shown
    assert "1200 rows in 300 clusters of prompt_id" in shown


def test_without_artifact_a_manifest_of_data_and_policy_is_registered(tmp_path: Path) -> None:
    from gates.registry import open_backend

    path = write(tmp_path, evals(gain=0.3), {"regression": {"metrics": {"correct": {"min": 0.5}}}})
    report, block = gate_and_record(path)
    assert block["registered"]
    reg = open_backend("local", str(tmp_path / ".model-gates" / "registry"))
    body = __import__("json").loads(reg.fetch("bot", 1).read_text())
    assert body["artifact"] is None and body["policy_sha256"] == report["policy"]["sha256"]
    assert body["data"]["eval"] == report["data"]["eval"]["sha256"]
    reg.close()


def test_a_registry_baseline_names_whose_scores_the_columns_are(tmp_path: Path) -> None:
    from gates.registry import open_backend

    (tmp_path / "v1.txt").write_text("prompt v1")
    spec = {"regression": {"metrics": {"correct": {"min": 0.5, "max_drop": 0.05}}}}
    path = write(tmp_path, evals(gain=0.3), spec, model={"artifact": "v1.txt"})
    _, block = gate_and_record(path)
    reg = open_backend("local", str(tmp_path / ".model-gates" / "registry"))
    reg.set_alias("bot", "production", block["version"], by="test")
    reg.close()
    (tmp_path / "v2.txt").write_text("prompt v2")
    path = write(tmp_path, evals(gain=0.3), spec, model={
        "artifact": "v2.txt", "baseline": {"registry": "production", **BASELINE}})
    report, _ = gate_and_record(path)
    assert report["model"]["baseline"]["version"] == 1
    assert report["model"]["baseline"]["uri"].startswith("registry:production (v1) columns:prod_correct")
    drop = next(c for c in report["checks"] if c["id"] == "regression.correct.max_drop")
    assert drop["status"] == "pass"
    path = write(tmp_path, evals(gain=0.3), spec, model={
        "artifact": "v2.txt", "baseline": {"registry": "champion", **BASELINE}})
    report, _ = gate_and_record(path)
    drop = next(c for c in report["checks"] if c["id"] == "regression.correct.max_drop")
    assert drop["status"] == "skipped" and report["model"]["baseline"] is None


# ------------------------------------------------------------------ calibrate


def test_calibrate_null_is_cluster_robust(tmp_path: Path) -> None:
    from gates.calibration import regression_family

    df = evals(n_prompts=400, samples=5, gain=0.4, seed=4)
    spec = {"metrics": {"correct": {"max_drop": 0.03}}, "multiple_testing": "none"}
    path = write(tmp_path, df, {"regression": spec})
    policy = load_policy(path)
    family, _ = regression_family(EvalContext(policy), policy.gates["regression"], 2000)
    assert family is not None
    (member,) = family.members
    d = (df["cand_correct"] - df["prod_correct"]).to_numpy()
    totals = pd.Series(d).groupby(df["prompt_id"]).sum()
    expected = np.sqrt((totals ** 2).sum()) / len(d)  # swapping whole prompts under the null
    assert member.se == pytest.approx(expected, rel=1e-6)
    assert np.std(family.noise[:, 0]) == pytest.approx(expected, rel=0.08)
    rows_only = np.sqrt((d ** 2).sum()) / len(d)
    assert member.se > 1.1 * rows_only  # the row formula is too narrow here


# ------------------------------------------------------------------ waivers, shadow mode, bad input


def test_a_waiver_and_shadow_mode_apply_to_per_example_checks(tmp_path: Path) -> None:
    from gates.policy import Waiver
    from gates.runner import RunOptions, run_policy

    spec = {"regression": {"metrics": {"latency": {"better": "lower", "max_relative_drop": 0.05}}}}
    path = write(tmp_path, evals(slower=1.4), spec)
    cid = "regression.latency.max_relative_drop"
    waiver = Waiver(check=cid, reason="new model, slower by design", by="test")
    result = run_policy(load_policy(path), options=RunOptions(waivers=(waiver,)))
    assert {c.id: c for c in result.verdict.checks}[cid].status is Status.WAIVED and result.verdict.passed
    doc = yaml.safe_load(path.read_text())
    doc["mode"] = "shadow"
    doc["gates"]["regression"]["severity"] = "warn"  # no blocking check: allowed in shadow mode only
    path.write_text(yaml.safe_dump(doc))
    checks = {c.id: c for c in run_policy(load_policy(path)).verdict.checks}
    assert checks[cid].status is Status.WARN


def test_a_missing_cluster_column_is_a_located_error(tmp_path: Path) -> None:
    path = write(tmp_path, evals(), {"regression": {"metrics": {"correct": {"min": 0.5}}}},
                 data={"cluster": "prompt"})
    with pytest.raises(UserError) as exc:
        EvalContext(load_policy(path)).frame
    assert str(exc.value).startswith(f"gates.yaml:{line_of(path, 'cluster: prompt')}: data.cluster: column 'prompt'")


def test_infinite_scores_count_as_missing(tmp_path: Path) -> None:
    df = evals()
    df["cand_correct"] = df["cand_correct"].astype(float)
    df.loc[5, "cand_correct"] = np.inf
    path = write(tmp_path, df, {"regression": {"metrics": {"correct": {"min": 0.1}}}})
    out = run_all(path)
    assert out["data.scores.not_null[cand_correct]"].observed == 1
    assert out["regression.correct.min"].status is Status.ERROR
