"""The dask engine against real clusters: scheduler and worker processes, and a LocalCluster."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from gates.config import load_policy
from gates.engine import MSG_NO_DASK
from gates.errors import UserError
from gates.runner import RunOptions, run_policy
from gates.policy import EngineSpec
from tests.gates.checks.data.test_partitioned import compare, project  # noqa: F401 -- project is a fixture
from tests.gates.engine.conftest import free_port
from tests.conftest import whole_frame, write_parquet_parts

pytest.importorskip("distributed")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gates", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "CI": "true"})


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


def test_a_running_cluster_gives_the_embedded_report(project: Path, scheduler: str) -> None:  # noqa: F811
    local = cli("run", "-c", str(project), "--no-register", "--ci", "none", "--report-dir", "local", cwd=project.parent)
    remote = cli("run", "-c", str(project), "--no-register", "--ci", "none", "--report-dir", "dask",
                 "--engine-address", scheduler, cwd=project.parent)
    assert local.returncode == remote.returncode == 1, remote.stdout + remote.stderr
    want = json.loads((project.parent / "local" / "report.json").read_text())
    got = json.loads((project.parent / "dask" / "report.json").read_text())
    schema = json.loads((Path(__file__).parents[3] / "gates" / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(got, schema)
    assert got["run"]["engine"] == {"kind": "dask", "address": scheduler, "workers": 2,
                                    "partitions": got["run"]["engine"]["partitions"]}
    assert got["run"]["engine"]["partitions"] >= 3  # one per file at least
    # every check has partials (the pandera unique check from merged value counts): the embedded run reads batches
    assert want["run"]["engine"]["kind"] == "local" and want["run"]["engine"]["partitions"] >= 3
    assert got["data"] == want["data"]
    compare(checks(want), checks(got))


def test_a_local_cluster_is_started_for_the_run_and_closed_after(project: Path) -> None:  # noqa: F811
    policy = load_policy(project)
    result = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", workers=2)))
    assert result.engine["kind"] == "dask" and result.engine["address"] is None
    assert result.engine["workers"] == 2
    assert result.context.engine.client.status == "closed"  # type: ignore[attr-defined]
    assert result.context.engine._cluster is None  # type: ignore[attr-defined]
    assert any(c.id == "data.min[age]" and c.status.value == "fail" for c in result.verdict.checks)


def test_fairness_on_the_workers_gives_the_embedded_checks(tmp_path: Path, scheduler: str) -> None:
    from tests.gates.checks.test_fairness_partitioned import assert_close, by_id, fair_project

    policy = load_policy(fair_project(tmp_path))
    embedded = whole_frame(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    got = by_id([c for c in remote.verdict.checks if c.gate == "fairness"])
    assert_close(by_id([c for c in embedded.verdict.checks if c.gate == "fairness"]), got)
    assert len(got) > 10 and remote.verdict.passed == embedded.verdict.passed


def test_a_gate_without_partials_is_a_blocking_not_distributable_error(tmp_path: Path, scheduler: str) -> None:
    from tests.gates.checks.test_fairness_partitioned import fair_project

    path = fair_project(tmp_path)
    path.write_text(path.read_text() + "      roc_auc_difference: {max: 0.2}\n")
    result = run_policy(load_policy(path), options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    [check] = [c for c in result.verdict.checks if c.gate == "fairness"]
    assert check.id == "fairness.not_distributable" and check.reason == "not_distributable"
    assert check.status.value == "error" and check.blocking
    assert not result.verdict.passed


def test_an_unreachable_scheduler_is_a_user_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr("gates.engine.dask.CONNECT_TIMEOUT", "1s")
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(UserError, match="cannot reach the dask scheduler"):
        run_policy(load_policy(project), options=RunOptions(engine=EngineSpec("dask", address=address)))


def test_without_the_dask_extra_kind_dask_is_a_config_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name, *a))
    project.write_text(project.read_text() + "engine: {kind: dask, workers: 2}\n")
    with pytest.raises(UserError) as info:
        load_policy(project)
    assert info.value.message.endswith(MSG_NO_DASK) and "pip install 'model-gates[dask]'" in info.value.message
    assert info.value.location is not None and info.value.location.startswith("gates.yaml:")


def test_shipped_models_predict_on_the_workers_and_give_the_embedded_regression_checks(
        tmp_path: Path, scheduler: str) -> None:
    from tests.gates.checks.test_regression_partitioned import assert_same, by_id, make_project

    policy = load_policy(make_project(tmp_path))
    embedded = whole_frame(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    assert remote.engine["workers"] == 2 and remote.engine["partitions"] == 3
    assert_same(by_id([c for c in embedded.verdict.checks if c.gate == "regression"]),
                by_id([c for c in remote.verdict.checks if c.gate == "regression"]))
    assert remote.verdict.passed == embedded.verdict.passed


def test_a_model_whose_bytes_change_on_the_way_is_refused_by_the_worker(tmp_path: Path, scheduler: str) -> None:
    from gates.checks.regression_partitioned import N, CellPlan, count_partition
    from gates.engine import open_engine
    from gates.engine.context import PartitionedContext
    from gates.engine.shipping import MSG_SHA_MISMATCH
    from gates.engine.worker import ship_models
    from tests.gates.checks.test_regression_partitioned import make_project

    policy = load_policy(make_project(tmp_path))
    engine = open_engine(EngineSpec("dask", address=scheduler))
    try:
        ctx = PartitionedContext(policy, engine=engine)
        plan, handles = ship_models(ctx)
        good = (tmp_path / "candidate.skops").read_bytes()
        tampered = bytearray(good)
        tampered[len(tampered) // 2] ^= 0xFF
        handles["candidate_bytes"] = engine.share(bytes(tampered))
        with pytest.raises(UserError) as info:
            engine.map(count_partition, ctx.eval_partitions, plan=CellPlan(plan, ()), **handles)
        assert info.value.message.startswith(MSG_SHA_MISMATCH.split("{")[0] + "candidate")
        assert info.value.location == "candidate.skops"
        # the untampered bytes load and predict on the same workers
        handles["candidate_bytes"] = engine.share(good)
        parts = engine.map(count_partition, ctx.eval_partitions, plan=CellPlan(plan, ()), **handles)
        assert sum(int(p.counts[0][N].sum()) for p in parts) == ctx.n_rows
    finally:
        engine.close()


def test_row_means_and_rank_metrics_on_the_workers_give_the_embedded_checks(tmp_path: Path, scheduler: str) -> None:
    from tests.gates.checks.test_regression_partitioned import assert_close, by_id, make_project, score_policy

    policy = score_policy(make_project(tmp_path))
    embedded = whole_frame(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    assert remote.engine["workers"] == 2 and remote.engine["partitions"] == 3
    got = by_id([c for c in remote.verdict.checks if c.gate == "regression"])
    assert_close(by_id([c for c in embedded.verdict.checks if c.gate == "regression"]), got)
    assert {c["ci_method"] for c in got.values() if c.get("ci_method")} == {"bootstrap-rows", "delong",
                                                                             "delta-method"}


def test_models_of_several_files_are_shipped_as_their_archive_and_give_the_embedded_checks(
        tmp_path: Path, scheduler: str) -> None:
    pytest.importorskip("onnxruntime")

    from tests.gates.checks.test_regression_partitioned import assert_close, by_id
    from tests.gates.models.helpers import dataset
    from tests.gates.registry.test_formats import _onnx_external

    X, y = dataset("regression")
    frame = X.assign(target=y, zone=np.where(np.arange(len(X)) % 3 == 0, "a", "b"))
    write_parquet_parts(tmp_path / "eval", frame, 3)
    candidate, scores = _onnx_external(tmp_path, "cand", 1.0)
    baseline, _ = _onnx_external(tmp_path, "base", 0.5)
    (tmp_path / "gates.yaml").write_text(f"""\
version: 1
model: {{name: reg, task: regression, candidate: {candidate.relative_to(tmp_path)},
        baseline: {baseline.relative_to(tmp_path)}}}
data: {{eval: eval, target: target, features: [{", ".join(X.columns)}]}}
seed: 2
gates:
  regression:
    bootstrap: 200
    min_slice_size: 50
    slices: [zone]
    metrics:
      mae: {{max: 50.0, max_drop: 1.0}}
      r2: {{min: 0.6}}     # about 0.52: fails
""")
    policy = load_policy(tmp_path / "gates.yaml")
    embedded = whole_frame(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    assert remote.engine["workers"] == 2 and remote.engine["partitions"] == 3
    want = by_id([c for c in embedded.verdict.checks if c.gate == "regression"])
    got = by_id([c for c in remote.verdict.checks if c.gate == "regression"])
    assert "regression.not_distributable" not in got and len(got) == 9  # 3 checks on all rows, zone=a, zone=b
    assert_close(want, got)
    # the graph's own scores, computed here from the files beside it
    mae = float(np.mean(np.abs(scores(X) - y.to_numpy())))
    assert got["regression.mae.max"]["observed"] == pytest.approx(mae, rel=1e-6)
    assert {c["status"] for c in got.values()} >= {"pass", "fail"}


def test_an_archive_with_a_member_outside_its_folder_is_refused_before_anything_loads(tmp_path: Path) -> None:
    import hashlib
    import io
    import tarfile

    from gates.engine.shipping import ShippedModel, load_shipped
    from gates.models.bundle import MSG_BAD_ARCHIVE
    from gates.models import Trust

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name in ("m.onnx", "../escaped.bin"):
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"data"))
    data = out.getvalue()
    model = ShippedModel("candidate", "m.onnx", "onnx", hashlib.sha256(data).hexdigest(), Trust(), entry="m.onnx")
    with pytest.raises(UserError) as info:
        load_shipped(model, data)
    assert info.value.message.startswith(MSG_BAD_ARCHIVE.split("{problem}")[0].format(role="candidate",
                                                                                       source="on this worker"))
    assert "../escaped.bin" in info.value.message and info.value.location == "m.onnx"


def test_great_expectations_suites_run_on_the_workers_and_give_the_embedded_checks(
        tmp_path: Path, scheduler: str) -> None:
    pytest.importorskip("great_expectations")
    from tests.gates.checks.data.test_partitioned import by_id, gx_project

    policy = load_policy(gx_project(tmp_path))
    embedded = by_id([c for c in whole_frame(policy).verdict.checks if c.gate == "data"])
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    got = by_id([c for c in remote.verdict.checks if c.gate == "data"])
    assert remote.engine["partitions"] >= 3 and list(got) == list(embedded)
    nd = {i for i, c in got.items() if c.get("reason") == "not_distributable"}
    assert nd == {"data.gx.expect_column_mean_to_be_between[age]", "data.gx.expect_column_values_to_be_unique[code]"}
    compare(embedded, got)
    for cid in set(got) - nd:
        assert (got[cid]["status"], got[cid]["message"], got[cid]["details"]) == (
            embedded[cid]["status"], embedded[cid]["message"], embedded[cid]["details"]), cid


def test_an_mlflow_model_folder_is_shipped_and_gives_the_embedded_checks(tmp_path: Path, scheduler: str) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("xgboost")

    from tests.gates.checks.test_regression_partitioned import assert_close, by_id
    from tests.gates.models.helpers import dataset
    from tests.gates.registry.test_formats import _mlflow_folder

    X, y = dataset("binary")
    frame = X.assign(target=y)
    write_parquet_parts(tmp_path / "eval", frame, 3)
    _, scores = _mlflow_folder(tmp_path, "cand", 3)
    features = ", ".join(json.dumps(c) for c in X.columns)
    (tmp_path / "gates.yaml").write_text(f"""\
version: 1
model: {{name: m, task: binary_classification, candidate: {{path: cand, format: mlflow}}, baseline: none,
        positive_label: 1}}
data: {{eval: eval, target: target, features: [{features}]}}
seed: 1
gates:
  regression:
    bootstrap: 100
    metrics: {{accuracy: {{min: 0.97}}, log_loss: {{max: 0.5}}}}
""")
    policy = load_policy(tmp_path / "gates.yaml")
    embedded = whole_frame(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    got = by_id([c for c in remote.verdict.checks if c.gate == "regression"])
    assert list(got) == ["regression.accuracy.min", "regression.log_loss.max"]
    assert_close(by_id([c for c in embedded.verdict.checks if c.gate == "regression"]), got)
    p = np.clip(scores(X), 1e-15, 1 - 1e-15)
    want = -float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert got["regression.log_loss.max"]["observed"] == pytest.approx(want, rel=1e-6)
    assert got["regression.accuracy.min"]["status"] == "fail"  # about 0.967


def test_a_worker_never_reuses_a_model_loaded_under_another_policys_trust(tmp_path: Path) -> None:
    # a pickle loaded once under trust_pickle: true stays refused for a later run that does not trust it
    import dataclasses
    import hashlib
    import pickle

    from sklearn.linear_model import LogisticRegression

    from gates.engine.shipping import ShippedModel, load_shipped
    from gates.models.trust import Trust

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    data = pickle.dumps(model)
    sha = hashlib.sha256(data).hexdigest()
    trusted = ShippedModel("candidate", "m.pkl", "pickle", sha, Trust(trust_pickle=True), None, None)
    assert load_shipped(trusted, data).estimator.predict([[1.0]])[0] == 1
    with pytest.raises(UserError, match="trust_pickle"):
        load_shipped(dataclasses.replace(trusted, trust=Trust(trust_pickle=False)), data)


def test_robustness_on_the_workers_gives_the_embedded_checks(tmp_path: Path, scheduler: str) -> None:
    """Perturbed copies scored on 2 dask workers: the embedded robustness checks, intervals and curves."""
    from tests.gates.checks.test_robustness_partitioned import assert_close, binary_project, by_id

    path, frame, _ = binary_project(tmp_path)
    policy = load_policy(path)
    embedded = run_policy(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    got = by_id([c for c in remote.verdict.checks if c.gate == "robustness"])
    assert_close(by_id([c for c in embedded.verdict.checks if c.gate == "robustness"]), got)
    assert len(got) > 40 and {c["status"] for c in got.values()} >= {"pass", "fail"}
    assert got["robustness.directional[mean_radius]"]["details"]["rows"] == len(frame)


def test_per_example_scores_on_the_workers_give_the_embedded_checks(tmp_path: Path, scheduler: str) -> None:
    from tests.gates.checks.test_per_example_partitioned import FAIRNESS, REGRESSION, frame
    from tests.gates.checks.test_per_example_partitioned import project as per_example_project
    from tests.gates.checks.test_regression_partitioned import assert_close, by_id

    df = frame()
    path = per_example_project(tmp_path, df, {"regression": REGRESSION, "fairness": FAIRNESS})
    policy = load_policy(path)
    embedded = whole_frame(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    got = by_id(remote.verdict.checks)
    assert_close(by_id(embedded.verdict.checks), got)
    assert not any(c.endswith("not_distributable") for c in got)
    assert got["regression.latency.max"]["observed"] == pytest.approx(df["cand_ms"].mean(), rel=1e-12)


def test_clustered_per_example_scores_on_the_workers_give_the_embedded_checks(tmp_path: Path, scheduler: str) -> None:
    from tests.gates.checks.test_per_example_partitioned import FAIRNESS, REGRESSION, frame
    from tests.gates.checks.test_per_example_partitioned import project as per_example_project
    from tests.gates.checks.test_regression_partitioned import assert_close, by_id

    df = frame()
    path = per_example_project(tmp_path, df, {"regression": REGRESSION, "fairness": FAIRNESS},
                               data={"cluster": "prompt_id"})
    policy = load_policy(path)
    embedded = whole_frame(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=scheduler)))
    got = by_id(remote.verdict.checks)
    assert_close(by_id(embedded.verdict.checks), got)
    assert got["regression.correct.max_drop"]["ci_method"].startswith("bootstrap-clusters")
    assert got["regression.correct.max_drop"]["details"]["clusters"] == df["prompt_id"].nunique()


def test_a_fold_on_the_cluster_merges_in_partition_order_into_the_one_shot_table(scheduler: str) -> None:
    from gates.checks.data.drift import merge_value_counts, value_counts
    from gates.engine.dask import DaskEngine
    from gates.engine.folding import Tiered

    rng = np.random.default_rng(19)
    items = [np.round(rng.normal(size=int(rng.integers(1, 400))), 2) for _ in range(23)]
    engine = DaskEngine(EngineSpec("dask", address=scheduler))
    try:
        order: list[int] = []

        def merge(total: Tiered[Any], part: tuple[np.ndarray, np.ndarray]) -> Tiered[Any]:
            order.append(int(part[1].sum()))
            total.add(part)
            return total

        tiered = Tiered(lambda a, b: merge_value_counts([a, b]), lambda t: len(t[0]))
        folded = engine.fold(value_counts, items, merge, tiered).result()
        one_shot = merge_value_counts(engine.map(value_counts, items))
    finally:
        engine.close()
    assert order == [len(v) for v in items]
    expected_values, expected_counts = np.unique(np.concatenate(items), return_counts=True)
    np.testing.assert_array_equal(folded[0], expected_values)
    np.testing.assert_array_equal(folded[1], expected_counts)
    np.testing.assert_array_equal(folded[0], one_shot[0])
    np.testing.assert_array_equal(folded[1], one_shot[1])
