"""The robustness gate on partitions: row-keyed copies scored per partition merge into the embedded checks.

The embedded run and LocalEngine runs on 1 and on many partitions corrupt the same cells (row-keyed
draws), so checks, statuses and point values agree to 1e-9 and intervals agree up to float rounding;
numbers are also re-derived by hand (the copy built from the documented draws, the model called directly,
scikit-learn's metrics).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from gates.checks.robustness import GATE
from gates.config import load_policy
from gates.context import EvalContext
from gates.engine.context import PartitionedContext
from gates.engine.local import LocalEngine
from gates.engine.runner import run_gate
from gates.reporters.json_report import check_to_dict
from tests.conftest import trusted_types_for, write_parquet_parts
from tests.row_draws import normals

BINARY = """\
  robustness:
    bootstrap: 300
    perturbations:
      gaussian_noise: {{scale: [0.2, 0.6]}}
      missing: {{rate: 0.2, impute: median}}
      category_swap: {{rate: 0.4}}
      feature_dropout: {{rate: 0.3}}
      scale_shift: {{factor: 10, rate: 0.2}}
      outliers: {{rate: 0.05}}
    metrics:
      accuracy: {{max_drop: 0.02, no_worse_than_baseline: true, margin: 0.01}}
      log_loss: {{max_relative_drop: 0.5, no_worse_than_baseline: true}}
      roc_auc: {{max_drop: 0.02, no_worse_than_baseline: true}}
      average_precision: {{min: 0.9}}
      flip_rate: {{max: 0.05, no_worse_than_baseline: true}}
      score_shift: {{max: 0.05, no_worse_than_baseline: true}}
    invariance: {{columns: [site, band], method: replace}}
    directional: {{{first}: increasing}}
"""
REGRESSION = """\
  robustness:
    bootstrap: 300
    perturbations:
      gaussian_noise: {scale: 0.3}
      missing: {rate: 0.2, impute: mode}
      outliers: {rate: 0.05, factor: 0.5}
    metrics:
      mae: {max_relative_drop: 0.1, no_worse_than_baseline: true}
      r2: {min: 0.3}
      score_shift: {max: 5.0, no_worse_than_baseline: true}
    invariance: {columns: [sex], method: replace}
    directional: {bmi: {direction: increasing, step: 0.01}}
"""


def by_id(results: list[Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in (check_to_dict(c) for c in results)}


def assert_close(embedded: dict[str, dict[str, Any]], partitioned: dict[str, dict[str, Any]]) -> None:
    """Same checks, statuses, reasons and messages; values to 1e-9; intervals up to float rounding."""
    assert list(partitioned) == list(embedded)
    for cid, want in embedded.items():
        got = partitioned[cid]
        for key in ("status", "reason", "blocking", "ci_method", "threshold"):
            assert got.get(key) == want.get(key), (cid, key)
        for key in ("observed", "baseline", "delta", "half_width", "ci"):
            if want.get(key) is None:
                assert got.get(key) is None, (cid, key)
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (cid, key)
        assert_same_tree(got.get("details"), want.get("details"), cid)
        assert got["message"] == want["message"] or _same_numbers(got["message"], want["message"]), cid


def assert_same_tree(got: Any, want: Any, where: str) -> None:
    """Equal structure and strings; numbers to 1e-9 relative."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (where, sorted(set(got) ^ set(want)))
        for k in want:
            assert_same_tree(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same_tree(a, b, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12, nan_ok=True), where
    else:
        assert got == want, where


def _same_numbers(a: str, b: str) -> bool:
    """Messages that differ only in the last printed digit of a rounded number (values agree to 1e-9)."""
    import re

    split = re.compile(r"(-?\d+\.?\d*(?:e[-+]?\d+)?%?)")
    pa, pb = split.split(a), split.split(b)
    return len(pa) == len(pb) and all(x == y or (i % 2 == 1) for i, (x, y) in enumerate(zip(pa, pb)))


def binary_project(folder: Path) -> tuple[Path, pd.DataFrame, list[str]]:
    """Breast cancer in 3 Parquet files with a categorical site: a one-hot logistic candidate, a tree baseline."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    numeric = [c for c in frame.columns if c != "target"][:6]
    rng = np.random.default_rng(4)
    frame["site"] = rng.choice(["north", "south", "east"], len(frame))
    frame["band"] = np.where(frame[numeric[0]] > frame[numeric[0]].median(), "high", "low")
    frame = frame[[*numeric, "site", "band", "target"]]
    features = [*numeric, "site"]
    X, y = frame[features], frame["target"]
    # the site shifts the label a little, so swapping it moves some predictions
    y_fit = (y.to_numpy() ^ ((frame["site"] == "east").to_numpy() & (rng.random(len(y)) < 0.3))).astype(int)
    cand = make_pipeline(ColumnTransformer([("num", StandardScaler(), numeric),
                                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["site"])]),
                         LogisticRegression(max_iter=2000))
    base = make_pipeline(ColumnTransformer([("num", "passthrough", numeric)]),
                         DecisionTreeClassifier(max_depth=3, random_state=0))
    sio.dump(cand.fit(X.iloc[::2], y_fit[::2]), folder / "candidate.skops")
    sio.dump(base.fit(X.iloc[::2], y.iloc[::2]), folder / "baseline.skops")
    write_parquet_parts(folder / "eval", frame, 3, 64)
    trust = trusted_types_for(folder / "candidate.skops", folder / "baseline.skops")
    text = (f"version: 1\nmodel:\n  name: cancer\n  task: binary_classification\n  candidate: candidate.skops\n"
            f"  baseline: baseline.skops\n  positive_label: 1\n  {trust}\n"
            f"data: {{eval: eval, target: target}}\nseed: 11\ngates:\n" + BINARY.format(first=numeric[0]))
    (folder / "gates.yaml").write_text(text)
    return folder / "gates.yaml", frame, features


def regression_project(folder: Path) -> tuple[Path, pd.DataFrame, list[str]]:
    data = load_diabetes(as_frame=True)
    frame = data.frame.copy()
    frame["sex"] = np.where(frame["sex"] > 0, "m", "f")
    numeric = ["age", "bmi", "bp", "s1", "s5"]
    features = [*numeric, "sex"]
    X, y = frame[features], frame["target"]
    cand = make_pipeline(ColumnTransformer([("num", StandardScaler(), numeric),
                                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex"])]), Ridge())
    base = make_pipeline(ColumnTransformer([("num", "passthrough", numeric)]),
                         DecisionTreeRegressor(max_depth=4, random_state=0))
    sio.dump(cand.fit(X, y), folder / "candidate.skops")
    sio.dump(base.fit(X, y), folder / "baseline.skops")
    write_parquet_parts(folder / "eval", frame[[*features, "target"]], 4, 50)
    trust = trusted_types_for(folder / "candidate.skops", folder / "baseline.skops")
    text = (f"version: 1\nmodel:\n  name: diabetes\n  task: regression\n  candidate: candidate.skops\n"
            f"  baseline: baseline.skops\n  {trust}\n"
            f"data: {{eval: eval, target: target}}\nseed: 3\ngates:\n" + REGRESSION)
    (folder / "gates.yaml").write_text(text)
    return folder / "gates.yaml", frame, features


def runs(path: Path, sizes: tuple[int, ...]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    policy = load_policy(path)
    spec = policy.plan("robustness")
    embedded = by_id(GATE.run(EvalContext(policy), spec))
    parted = [by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=rows), "robustness",
                             spec)) for rows in sizes]
    return embedded, parted


def load(path: Path) -> Any:
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def test_binary_partitions_give_the_embedded_robustness_checks(tmp_path: Path) -> None:
    path, frame, features = binary_project(tmp_path)
    embedded, (one, many) = runs(path, (10_000, 64))
    assert_close(embedded, one)
    assert_close(embedded, many)
    statuses = {c["status"] for c in many.values()}
    assert {"pass", "fail"} <= statuses
    assert {c.get("ci_method") for c in many.values()} >= {"bootstrap-multinomial", "bootstrap-rows", "paired-normal",
                                                           "delong"}
    assert many["robustness.invariance[band]"]["reason"] == "not_a_feature"
    assert many["robustness.invariance[site]"]["observed"] > 0
    # an independent computation: the noisy copy built from the documented draws, the model called directly
    model, X, y = load(tmp_path / "candidate.skops"), frame[features], frame["target"].to_numpy()
    noisy = X.copy()
    names = ("robustness", "gaussian_noise", "0.6")
    for col in features[:6]:
        noisy[col] = X[col] + normals(11, names, col, "noise", range(len(X))) * 0.6 * X[col].std()
    clean_labels, noisy_labels = model.predict(X), model.predict(noisy)
    flip = many["robustness.flip_rate.max[gaussian_noise=0.6]"]
    assert flip["observed"] == pytest.approx(np.mean(clean_labels != noisy_labels), abs=1e-12)
    drop = many["robustness.accuracy.max_drop[gaussian_noise=0.6]"]
    assert drop["observed"] == pytest.approx(accuracy_score(y, noisy_labels), rel=1e-12)
    assert drop["delta"] == pytest.approx(accuracy_score(y, noisy_labels) - accuracy_score(y, clean_labels), abs=1e-12)


def test_regression_partitions_give_the_embedded_robustness_checks(tmp_path: Path) -> None:
    path, frame, features = regression_project(tmp_path)
    embedded, (one, many) = runs(path, (10_000, 50))
    assert_close(embedded, one)
    assert_close(embedded, many)
    assert {c.get("ci_method") for c in many.values()} >= {"bootstrap-rows", "paired-normal"}
    model, X, y = load(tmp_path / "candidate.skops"), frame[features], frame["target"].to_numpy()
    noisy = X.copy()
    for col in features[:5]:
        noisy[col] = X[col] + normals(3, ("robustness", "gaussian_noise", "0.3"), col, "noise",
                                      range(len(X))) * 0.3 * X[col].std()
    mae = many["robustness.mae.max_relative_drop[gaussian_noise=0.3]"]
    assert mae["observed"] == pytest.approx(mean_absolute_error(y, model.predict(noisy)), rel=1e-9)
    step = many["robustness.directional[bmi]"]
    assert step["details"]["rows"] == len(frame) and step["observed"] == 0.0  # Ridge on bmi: positive slope


def test_shuffle_and_average_precision_baseline_comparisons_are_not_distributable(tmp_path: Path) -> None:
    path, _, _ = binary_project(tmp_path)
    text = path.read_text().replace("method: replace", "method: shuffle")
    path.write_text(text.replace("average_precision: {min: 0.9}", "average_precision: {min: 0.9, no_worse_than_baseline: true}"))
    policy = load_policy(path)
    got = by_id(run_gate(PartitionedContext(policy, engine=LocalEngine(), partition_rows=64), "robustness",
                         policy.plan("robustness")))
    embedded = by_id(GATE.run(EvalContext(policy), policy.plan("robustness")))
    refused = {cid for cid, c in got.items() if c["reason"] == "not_distributable"}
    assert refused == {"robustness.invariance[site]",
                       *(f"robustness.average_precision.no_worse_than_baseline[{s}]" for s in
                         ("gaussian_noise=0.2", "gaussian_noise=0.6", "missing=0.2", "category_swap=0.4",
                          "feature_dropout=0.3", "scale_shift=10", "outliers=0.05"))}
    assert all(got[cid]["status"] == "error" and got[cid]["blocking"] for cid in refused)
    assert "method: replace" in got["robustness.invariance[site]"]["message"]
    # an error is never in the multiple-testing family (as an undefined estimate embedded): the other
    # baseline comparisons are decided in a family 7 smaller; every check outside the family is the embedded one
    versus = {k for k in got if "no_worse_than_baseline" in k and k not in refused}
    assert {got[k]["details"]["family_size"] for k in versus} == {embedded[k]["details"]["family_size"] - 7
                                                                  for k in versus}
    kept = set(got) - refused - versus
    assert_close({k: v for k, v in embedded.items() if k in kept}, {k: v for k, v in got.items() if k in kept})
    for k in versus:
        assert got[k]["delta"] == pytest.approx(embedded[k]["delta"], rel=1e-9, abs=1e-12)


def test_without_a_baseline_and_when_the_model_rejects_missing_values(tmp_path: Path) -> None:
    """No baseline: comparisons are skipped as embedded; a model raising on NaN is the same error check."""
    path, _, _ = binary_project(tmp_path)
    text = path.read_text().replace("  baseline: baseline.skops\n", "")
    path.write_text(text.replace("missing: {rate: 0.2, impute: median}", "missing: {rate: 0.2}"))
    embedded, (many,) = runs(path, (64,))
    assert_close(embedded, many)
    nan = many["robustness.flip_rate.max[missing=0.2]"]
    assert nan["status"] == "error" and nan["reason"] == "model_rejects_nan" and "impute: median" in nan["message"]
    assert {c["reason"] for k, c in many.items() if "no_worse_than_baseline" in k} == {"no_baseline"}


def test_multiclass_partitions_and_one_vs_rest_auc_is_not_distributable(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"]
    sio.dump(LogisticRegression(max_iter=2000).fit(frame[features], frame["target"]), tmp_path / "candidate.skops")
    sio.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(frame[features], frame["target"]),
             tmp_path / "baseline.skops")
    write_parquet_parts(tmp_path / "eval", frame, 3, 20)
    trust = trusted_types_for(tmp_path / "candidate.skops", tmp_path / "baseline.skops")
    (tmp_path / "gates.yaml").write_text(
        f"version: 1\nmodel:\n  name: iris\n  task: multiclass_classification\n  candidate: candidate.skops\n"
        f"  baseline: baseline.skops\n  {trust}\ndata: {{eval: eval, target: target}}\nseed: 5\ngates:\n"
        "  robustness:\n    bootstrap: 200\n    perturbations:\n      gaussian_noise: {scale: [0.3, 1.0]}\n"
        "      outliers: {rate: 0.1}\n    metrics:\n"
        "      accuracy: {max_drop: 0.05, no_worse_than_baseline: true}\n"
        "      log_loss: {max_relative_drop: 0.5}\n      roc_auc_ovr: {max_drop: 0.05}\n"
        "      flip_rate: {max: 0.1, no_worse_than_baseline: true}\n"
        "      score_shift: {max: 0.1}\n")
    embedded, (one, many) = runs(tmp_path / "gates.yaml", (10_000, 40))
    refused = {k for k, c in many.items() if c["reason"] == "not_distributable"}
    assert refused == {"robustness.roc_auc_ovr.max_drop[gaussian_noise=0.3]",
                       "robustness.roc_auc_ovr.max_drop[gaussian_noise=1]",
                       "robustness.roc_auc_ovr.max_drop[outliers=0.1]"}
    for got in (one, many):
        assert_close({k: v for k, v in embedded.items() if k not in refused},
                     {k: v for k, v in got.items() if k not in refused})
    model = load(tmp_path / "candidate.skops")
    assert many["robustness.accuracy.max_drop[gaussian_noise=1]"]["details"]["clean_metric"] == pytest.approx(
        accuracy_score(frame["target"], model.predict(frame[features])), rel=1e-12)


def test_rows_without_a_target_are_left_out_and_keys_count_scored_rows(tmp_path: Path) -> None:
    """Row keys are positions among the scored rows: dropping unscored rows per partition shifts no draw."""
    import shutil

    path, frame, _ = regression_project(tmp_path)
    holed = frame.copy()
    holed.loc[holed.index[::7], "target"] = np.nan
    shutil.rmtree(tmp_path / "eval")
    write_parquet_parts(tmp_path / "eval", holed, 4, 50)
    embedded, (many,) = runs(path, (50,))
    assert_close(embedded, many)
    assert many["robustness.directional[bmi]"]["details"]["rows"] == int(holed["target"].notna().sum())


def test_clustered_rows_share_their_weights_in_every_partition(tmp_path: Path) -> None:
    """data.cluster: the row-mean comparisons resample whole clusters on partitions as embedded (clusters
    spanning partitions; a row without a cluster value is a cluster of its own, keyed by its position)."""
    import shutil

    path, frame, features = regression_project(tmp_path)
    policy = load_policy(path)
    rowwise = by_id(GATE.run(EvalContext(policy), policy.plan("robustness")))
    family = pd.Series([f"f{v}" for v in np.random.default_rng(8).integers(0, 60, len(frame))], dtype=object)
    family[::23] = None
    shutil.rmtree(tmp_path / "eval")
    write_parquet_parts(tmp_path / "eval", frame[features + ["target"]].assign(family=family.to_numpy()), 4, 50)
    path.write_text(path.read_text().replace("target: target}", "target: target, cluster: family}"))
    embedded, (one, many) = runs(path, (10_000, 50))
    assert_close(embedded, one)
    assert_close(embedded, many)
    versus = [k for k in many if k.startswith("robustness.mae.no_worse_than_baseline")]
    assert versus and {many[k]["ci_method"] for k in versus} == {"bootstrap-clusters"}
    for k in versus:  # the same point values, other replicates than the rows' own
        assert many[k]["delta"] == pytest.approx(rowwise[k]["delta"], rel=1e-12)
        assert many[k]["ci"] != pytest.approx(rowwise[k]["ci"], rel=1e-6)


def test_column_summaries_merged_size_tiered_equal_the_summary_of_all_rows() -> None:
    """The first pass's summaries of 13 partitions (value counts in first-appearance order) merge into the
    summary of the concatenated column, whichever partitions the size-tiered merge groups together."""
    from gates.checks.robustness.partitioned import merge_summaries
    from gates.perturbations import ColumnSummary

    rng = np.random.default_rng(2)
    column = pd.Series(np.round(rng.normal(0, 1, 3000), 2)).where(rng.random(3000) > 0.05)
    sizes = rng.integers(1, 500, 13)
    bounds = np.r_[0, np.cumsum(sizes)[:-1], 3000]
    found = [ColumnSummary.of(column.iloc[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    merged, whole = merge_summaries(found), ColumnSummary.of(column)
    assert merged.counts is not None and whole.counts is not None
    pd.testing.assert_series_equal(merged.counts, whole.counts, check_names=False)
    values = column.dropna()
    assert merged.median == values.median() and merged.mode == whole.mode
    assert merged.std == pytest.approx(values.std(ddof=1), rel=1e-12)
    assert (merged.lo, merged.hi) == (values.min(), values.max())


def test_a_partition_without_scored_rows_adds_nothing(tmp_path: Path) -> None:
    """A partition whose rows all lack a target summarises no values (empty moments), as if it were absent."""
    import shutil

    path, frame, _ = regression_project(tmp_path)
    holed = frame.copy()
    holed.loc[holed.index[50:100], "target"] = np.nan  # the whole second partition
    shutil.rmtree(tmp_path / "eval")
    write_parquet_parts(tmp_path / "eval", holed, 4, 50)
    embedded, (many,) = runs(path, (50,))
    assert_close(embedded, many)
    assert many["robustness.directional[bmi]"]["details"]["rows"] == len(frame) - 50
