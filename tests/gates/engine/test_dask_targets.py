"""The target's checks on the dask engine: a real LocalCluster on 127.0.0.1 against the embedded engine.

``data.target.not_null`` and ``data.target.labels`` must be the embedded run's checks with the same
numbers, and rows without a target must never be scored by the gates that run on the workers.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from gates.checks.data._common import DEFAULT_MAX_FAILURE_CASES
from gates.config import load_policy
from gates.errors import UserError
from gates.policy import EngineSpec
from gates.reporters.json_report import check_to_dict
from gates.runner import RunOptions, run_policy
from tests.conftest import whole_frame

pytest.importorskip("distributed")

POLICY = """\
version: 1
model:
  name: titanic-like
  task: {task}
  candidate: {candidate}
  baseline: {baseline}
{positive}data: {{eval: eval, target: survived, features: [age, fare]}}
seed: 5
gates:
  regression:
    bootstrap: 200
    slices: [sex]
    min_slice_size: 20
    metrics: {{accuracy: {{min: 0.5}}, churn: {{max: 0.5}}}}
"""


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """A LocalCluster of two single-threaded worker processes on 127.0.0.1, for the whole module."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def frame(n: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame({"age": rng.uniform(1, 80, n), "fare": rng.lognormal(3, 1, n),
                        "sex": rng.choice(["female", "male"], n)})
    logit = 1.5 * (out["sex"] == "female") - 0.03 * out["age"] + 0.2 * np.log(out["fare"])
    out["survived"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return out


def write(folder: Path, eval_frame: pd.DataFrame, train: pd.DataFrame, *, task: str = "binary_classification",
          positive: str = "  positive_label: 'yes'\n", candidate: str = "cand.skops",
          baseline: str = "base.skops") -> Path:
    """Write two models trained on ``train``, the eval rows as 3 Parquet files, and gates.yaml."""
    X, y = train[["age", "fare"]], train["survived"]
    sio.dump(LogisticRegression().fit(X, y), folder / "cand.skops")
    sio.dump(LogisticRegression(C=0.01).fit(X, y), folder / "base.skops")
    (folder / "eval").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(eval_frame)), 3)):
        pq.write_table(pa.Table.from_pandas(eval_frame.iloc[rows], preserve_index=False),
                       folder / "eval" / f"part-{i}.parquet", row_group_size=100)
    path = folder / "gates.yaml"
    path.write_text(POLICY.format(task=task, positive=positive, candidate=candidate, baseline=baseline))
    return path


def both(path: Path, address: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Return the embedded and the dask run's checks by id (report form)."""
    policy = load_policy(path)
    embedded = whole_frame(policy)
    remote = run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=address)))
    assert remote.engine["kind"] == "dask" and remote.engine["partitions"] >= 3
    return ({c.id: check_to_dict(c) for c in embedded.verdict.checks},
            {c.id: check_to_dict(c) for c in remote.verdict.checks})


def same_target_checks(embedded: dict[str, dict[str, Any]], remote: dict[str, dict[str, Any]]) -> None:
    for cid in ("data.target.not_null", "data.target.labels"):
        want, got = embedded[cid], remote[cid]
        for key in ("status", "blocking", "observed", "threshold", "message", "reason", "details"):
            assert got.get(key) == want.get(key), (cid, key)
    assert list(remote)[:2] == ["data.target.not_null", "data.target.labels"] == list(embedded)[:2]


def test_string_labels_with_missing_targets_give_the_embedded_checks_and_are_never_scored(tmp_path: Path,
                                                                                         address: str) -> None:
    data = frame()
    ev = data.copy()
    ev.loc[ev.index[::7], "survived"] = None
    path = write(tmp_path, ev, data)
    embedded, remote = both(path, address)
    same_target_checks(embedded, remote)
    missing = int(ev["survived"].isna().sum())
    not_null = remote["data.target.not_null"]
    assert not_null["status"] == "fail" and not_null["observed"] == missing
    assert not_null["details"]["scored_rows"] == len(ev) - missing
    assert [e["index"] for e in not_null["details"]["examples"]] == list(range(0, 7 * DEFAULT_MAX_FAILURE_CASES, 7))
    assert remote["data.target.labels"]["status"] == "pass"
    assert remote["data.target.labels"]["details"]["labels"] == [
        {"label": k, "count": int(v)} for k, v in ev["survived"].value_counts().sort_index().items()]
    # the workers scored only the rows with a target: the regression checks are the embedded ones
    regression = [i for i in embedded if i.startswith("regression.")]
    assert [i for i in remote if i.startswith("regression.")] == regression and len(regression) >= 4
    for cid in regression:
        assert remote[cid]["status"] == embedded[cid]["status"], cid
        assert remote[cid]["observed"] == pytest.approx(embedded[cid]["observed"], abs=1e-12), cid
    scored = ev.dropna(subset=["survived"])
    model = sio.load(tmp_path / "cand.skops", trusted=sio.get_untrusted_types(file=tmp_path / "cand.skops"))
    want = accuracy_score(scored["survived"], model.predict(scored[["age", "fare"]]))
    assert remote["regression.accuracy.min"]["observed"] == pytest.approx(want, abs=1e-12)


def test_unknown_labels_and_a_zero_one_target_with_gaps_agree_with_the_embedded_engine(tmp_path: Path,
                                                                                     address: str) -> None:
    data = frame(seed=1)
    data["survived"] = (data["survived"] == "yes").astype(int)
    ev = data.copy().astype({"survived": float})
    ev.loc[ev.index[::11], "survived"] = np.nan
    ev.loc[ev.index[5::50], "survived"] = 2.0  # a label neither model knows
    path = write(tmp_path, ev, data, positive="  positive_label: 1\n")
    embedded, remote = both(path, address)
    same_target_checks(embedded, remote)
    labels = remote["data.target.labels"]
    assert labels["status"] == "fail" and labels["observed"] == int((ev["survived"] == 2).sum()) > 0
    assert labels["details"]["unknown"]["candidate"] == [{"label": 2, "count": labels["observed"]}]
    assert remote["data.target.not_null"]["observed"] == int(ev["survived"].isna().sum())


def test_prediction_columns_stand_for_the_classes_on_the_workers_too(tmp_path: Path, address: str) -> None:
    data = frame(seed=2)
    ev = data.assign(cand_pred=np.where(data["age"] < 40, "yes", "no"), base_pred="no")
    ev.loc[ev.index[3::13], "survived"] = None
    path = write(tmp_path, ev, data, candidate="{predictions: cand_pred}", baseline="{predictions: base_pred}")
    embedded, remote = both(path, address)
    same_target_checks(embedded, remote)
    assert remote["data.target.labels"]["status"] == "pass"
    # a type mismatch between target and prediction column is the same config error on both engines
    ints = ev.assign(cand_pred=(ev["cand_pred"] == "yes").astype(int))
    (tmp_path / "ints").mkdir()
    path = write(tmp_path / "ints", ints, data, candidate="{predictions: cand_pred}", baseline="none")
    assert "convert one to the other's type" in same_config_error(load_policy(path), address)


def test_a_target_missing_everywhere_is_the_same_config_error(tmp_path: Path, address: str) -> None:
    data = frame(seed=3)
    path = write(tmp_path, data.assign(survived=None).astype({"survived": object}), data)
    assert "no eval row has a target" in same_config_error(load_policy(path), address)


def same_config_error(policy: Any, address: str) -> str:
    """Return the config error the whole-frame, batched and dask runs raise on ``policy``, asserting it is the same text."""
    with pytest.raises(UserError) as local:
        whole_frame(policy)
    with pytest.raises(UserError) as batched:
        run_policy(policy)
    with pytest.raises(UserError) as dask:
        run_policy(policy, options=RunOptions(engine=EngineSpec("dask", address=address)))
    assert str(dask.value) == str(batched.value) == str(local.value)
    return str(local.value)


ODD_POLICY = """\
version: 1
model: {name: odd, task: binary_classification, candidate: {predictions: pred, scores: score}, baseline: none}
data: {eval: eval, target: label}
seed: 2
gates:
  regression:
    bootstrap: 200
    slices: [n, __y, __code, __cell, "we]ird[col", "line\\nbreak"]
    metrics: {accuracy: {min: 0.5}, roc_auc: {min: 0.5}}
  fairness:
    bootstrap: 200
    groups: [n, __candidate]
    metrics: {demographic_parity_difference: {max: 0.9}}
"""


def test_columns_named_like_the_engines_own_tables_give_the_embedded_checks(tmp_path: Path, address: str) -> None:
    rng = np.random.default_rng(4)
    n = 1500
    x = rng.normal(size=n)
    ev = pd.DataFrame({"x": x, "label": (x + rng.normal(size=n) > 0).astype(float), "pred": (x > 0).astype(int),
                       "score": 1 / (1 + np.exp(-2 * x))})
    for col in ("n", "__y", "__code", "__cell", "__candidate", "we]ird[col", "line\nbreak"):
        ev[col] = rng.choice(["a", "b"], n)
    ev.loc[ev.index[::17], "label"] = np.nan
    (tmp_path / "eval").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(n), 3)):
        pq.write_table(pa.Table.from_pandas(ev.iloc[rows], preserve_index=False), tmp_path / "eval" / f"p{i}.parquet")
    (tmp_path / "gates.yaml").write_text(ODD_POLICY)
    embedded, remote = both(tmp_path / "gates.yaml", address)
    assert list(remote) == list(embedded) and not any("gate_error" in i or "not_distributable" in i for i in remote)
    assert "regression.accuracy.min[line\\nbreak=a]" in remote and "fairness.demographic_parity_difference.max[n]" in remote
    for cid, want in embedded.items():
        assert remote[cid]["status"] == want["status"], cid
        assert remote[cid]["observed"] == pytest.approx(want["observed"], abs=1e-9), cid
