"""The MLflow backend's own guarantees, read back with MLflow's client (the shared contract is in test_backend_suite).

Every test gets a fresh SQLite tracking database in its tmp folder (a copy of one migrated template).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

pytest.importorskip("mlflow")

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from gates.errors import EnvironmentProblem, UserError
from gates.registry import mlflow_backend, open_backend
from gates.registry.base import Evidence, RunEntry
from gates.registry.blobs import MSG_BLOB_CORRUPT
from gates.registry.mlflow_artifacts import NOTE_NO_SIGNATURE, NOTE_PICKLE, run_metrics
from gates.registry.mlflow_audit import MAX_PARAM_CHARS, MSG_RECORD_ALTERED
from gates.registry.mlflow_backend import (
    MSG_EXTERNAL_VERSION,
    MSG_RESERVED_TAG,
    MlflowRegistry,
)
from gates.registry.mlflow_client import MSG_MLFLOW_FAILED
from tests.gates.registry.backends import migrated_mlflow_db

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
REPORT = {k: v for k, v in json.loads((GOLDEN / "report_sample.json").read_text()).items() if k != "registration"}
LINEAGE = {"git_sha": "abc123", "ci_url": "https://ci.example/7", "policy": {"sha256": "p" * 64},
           "data": {"eval": {"sha256": "e" * 64, "rows": 200}}, "verdict": "pass",
           "metrics": {"regression.roc_auc.min": 0.91, "fairness.tpr.max[sex&race]": 0.04}, "report": REPORT}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fresh_db(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_mlflow_db(), folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return fresh_db(tmp_path / "store")


@pytest.fixture
def reg(uri: str):
    backend = MlflowRegistry(uri)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[LogisticRegression, pd.DataFrame, Path]:
    """A fitted model on named feature columns, its eval features, and its .skops file."""
    folder = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"age": rng.integers(18, 90, 200), "income": rng.normal(50, 10, 200)})
    y = (X.income + rng.normal(0, 5, 200) > 50).astype(int)
    model = LogisticRegression().fit(X, y)
    sio.dump(model, folder / "model.skops")
    return model, X, folder / "model.skops"


def register(backend: MlflowRegistry, path: Path, **kw):
    kw.setdefault("format", path.suffix.lstrip("."))
    kw.setdefault("lineage", LINEAGE)
    return backend.register("credit", path, by="alice", verdict="pass", **kw)


def write(tmp_path: Path, content: bytes, suffix: str = ".skops") -> Path:
    path = tmp_path / f"{sha(content)[:10]}{suffix}"
    path.write_bytes(content)
    return path


def test_a_registration_is_a_run_with_the_flavour_the_bytes_and_the_reports(reg, uri, trained, tmp_path):
    model, X, path = trained
    got = register(reg, path, evidence=Evidence(model, X), alias="production")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version_by_alias("credit", "production")
    assert (int(mv.version), got.version.version) == (1, 1)
    assert mv.tags["model_gates.model_sha256"] == sha(path.read_bytes()) == got.version.model_sha256
    assert (mv.tags["model_gates.git_sha"], mv.tags["model_gates.ci_url"]) == ("abc123", "https://ci.example/7")
    assert mv.tags["model_gates.data.eval.rows"] == "200" and mv.tags["model_gates.flavor"] == "sklearn"
    assert json.loads(mv.tags["model_gates.lineage"]) == {k: v for k, v in LINEAGE.items() if k != "report"}
    source = mv.source.removeprefix("file://")
    assert (Path(source) / "model_gates" / "model.skops").read_bytes() == path.read_bytes()
    import mlflow.models
    import mlflow.sklearn

    info = mlflow.models.get_model_info(source)
    assert info.signature.inputs.input_names() == ["age", "income"]
    loaded = mlflow.sklearn.load_model(source)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    run = client.get_run(mv.run_id)
    cleaned = "fairness.tpr.max_sex_race_." + hashlib.sha256(b"fairness.tpr.max[sex&race]").hexdigest()[:8]
    assert run.data.metrics == {"regression.roc_auc.min": 0.91, cleaned: 0.04}
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.user"] == "alice"
    reports = client.download_artifacts(mv.run_id, "model_gates", str(tmp_path / "dl"))
    assert json.loads(Path(reports, "report.json").read_text()) == REPORT
    assert REPORT["checks"][0]["id"] in Path(reports, "report.md").read_text()
    assert reg.get_version("credit", 1).lineage == LINEAGE
    assert reg.get_version("credit", 1).record()["report"] == REPORT


def test_ids_that_clean_alike_keep_one_metric_each():
    ids = ["fairness.tpr.max[a b]", "fairness.tpr.max[a_b]", "fairness.tpr.max_a_b_", "x" * 300, "x" * 301]
    metrics = run_metrics({"metrics": {cid: float(i) for i, cid in enumerate(ids)}})
    assert sorted(metrics.values()) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert metrics["fairness.tpr.max_a_b_"] == 2.0  # accepted as it is, so unchanged
    assert all(len(key) <= 250 and not re.search(r"[^\w.\- /:]", key) for key in metrics)
    first = next(key for key, value in metrics.items() if value == 0.0)
    assert run_metrics({"metrics": {"fairness.tpr.max[a b]": 1.0}}) == {first: 1.0}  # the same key in any run


def test_without_a_gate_run_a_safe_skops_gets_a_flavour_and_a_pickle_only_its_bytes(reg, uri, trained, tmp_path):
    _, _, path = trained
    register(reg, path, lineage={})
    register(reg, write(tmp_path, b"pickled bytes", ".joblib"), lineage={})
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    first, second = (client.get_model_version("credit", v).tags for v in ("1", "2"))
    assert (first["model_gates.flavor"], first["model_gates.flavor_note"]) == ("sklearn", NOTE_NO_SIGNATURE)
    assert (second["model_gates.flavor"], second["model_gates.flavor_note"]) == ("none", NOTE_PICKLE)
    assert reg.fetch("credit", 2).read_bytes() == b"pickled bytes"
    assert "model_gates.report_artifact" not in first


def test_artifacts_stay_beside_the_database_not_in_the_working_folder(uri, tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    backend = MlflowRegistry(uri)
    register(backend, write(tmp_path, b"v1"))
    backend.record_run("credit", RunEntry("fail", "ci", None, {}))
    assert backend.fetch("credit", 1).read_bytes() == b"v1"
    backend.close()
    assert list(work.iterdir()) == []
    stored = [p for p in (tmp_path / "store" / "mlartifacts").rglob("model.skops")]
    assert [p.read_bytes() for p in stored] == [b"v1"]


def test_reading_a_registry_that_does_not_exist_creates_nothing(tmp_path):
    backend = open_backend("mlflow", f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}")
    assert backend.list_models() == [] and backend.audit_log() == [] and backend.audit_log("credit") == []
    assert backend.resolve("credit", "production") is None and backend.resolve("credit", "1") is None
    with pytest.raises(UserError, match="no model named 'credit'"):
        backend.list_versions("credit")
    backend.close()
    assert not (tmp_path / "nowhere").exists()


def test_the_audit_log_is_run_parameters_that_mlflow_refuses_to_rewrite(reg, uri, tmp_path):
    reg.record_run("credit", RunEntry("fail", "ci", "https://ci/1", {"failing": ["a"]}))
    register(reg, write(tmp_path, b"v1"), run=RunEntry("pass", "ci", "https://ci/2", {"failing": []}))
    client = MlflowClient(tracking_uri=uri)
    [log_run] = client.search_runs([client.get_experiment_by_name("model-gates-audit").experiment_id])
    params = log_run.data.params
    assert sorted(params) == ["00000001", "00000002", "00000003"]
    assert [json.loads(params[k])["kind"] for k in sorted(params)] == ["run", "run", "register"]
    with pytest.raises(MlflowException, match="Changing param values is not allowed"):
        client.log_param(log_run.info.run_id, "00000001", json.dumps({"kind": "run", "verdict": "pass"}))
    assert [e.verdict for e in reg.audit_log("credit")][:2] == ["fail", "pass"]


def test_a_long_record_is_an_artifact_checked_on_read(reg, uri, tmp_path):
    record = {"checks": [{"id": f"data.not_null[column_{i}]", "status": "pass"} for i in range(200)]}
    assert len(json.dumps(record)) > MAX_PARAM_CHARS
    event = reg.record_run("credit", RunEntry("pass", "ci", None, record))
    assert reg.audit_log("credit")[0].record == record and event.record == record
    [stored] = (tmp_path / "store" / "mlartifacts").rglob("records/*.json")
    stored.write_text(stored.read_text().replace("pass", "fail"))
    with pytest.raises(EnvironmentProblem) as err:
        MlflowRegistry(uri).audit_log("credit")
    assert str(err.value) == MSG_RECORD_ALTERED.format(seq=1, name="credit", path=f"records/{stored.name}")


def test_altered_model_bytes_are_detected_on_fetch(reg, tmp_path):
    register(reg, write(tmp_path, b"good bytes"))
    [stored] = (tmp_path / "store" / "mlartifacts").rglob("model.skops")
    stored.write_bytes(b"evil bytes")
    with pytest.raises(EnvironmentProblem) as err:
        reg.fetch("credit", 1)
    assert str(err.value).startswith(MSG_BLOB_CORRUPT.split("{path}")[0].format(name="credit", version=1))
    assert sha(b"evil bytes") in str(err.value)


def test_an_alias_moved_in_mlflow_itself_rolls_back_to_the_audited_holder(reg, uri, tmp_path):
    for i in (1, 2, 3):
        register(reg, write(tmp_path, f"v{i}".encode()))
    reg.set_alias("credit", "production", 1, by="bob")
    MlflowClient(registry_uri=uri, tracking_uri=uri).set_registered_model_alias("credit", "production", "3")
    move = reg.rollback("credit", "production", by="carol")
    assert (move.from_version, move.to_version) == (3, 1)
    assert reg.resolve("credit", "production").version == 1
    tag = MlflowClient(registry_uri=uri, tracking_uri=uri).get_registered_model("credit").tags
    assert json.loads(tag["model_gates.alias.production"])["move"] == "rollback"


def test_versions_registered_outside_model_gates_are_listed_as_external(reg, uri, tmp_path):
    register(reg, write(tmp_path, b"ours"))
    client = MlflowClient(registry_uri=uri, tracking_uri=uri)
    run = client.create_run(client.get_experiment_by_name("model-gates").experiment_id)
    client.create_model_version("credit", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
                                tags={"team": "risk"})
    ours, theirs = reg.list_versions("credit")
    assert (ours.verdict, theirs.verdict, theirs.version, theirs.tags) == ("pass", "external", 2, {"team": "risk"})
    with pytest.raises(UserError) as err:
        reg.fetch("credit", 2)
    assert str(err.value) == MSG_EXTERNAL_VERSION.format(name="credit", version=2)


def test_registering_again_completes_a_registration_cut_short_after_its_version(reg, tmp_path, monkeypatch):
    path = write(tmp_path, b"v1")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed after the version was made")

    with monkeypatch.context() as patch:
        patch.setattr(MlflowRegistry, "_audit_run", crash)
        with pytest.raises(KeyboardInterrupt):
            register(reg, path, alias="production")
    assert [e.kind for e in reg.audit_log("credit")] == []
    soon = register(reg, path)
    assert soon.already_registered and [e.kind for e in reg.audit_log("credit")] == [], "a live writer is not raced"
    monkeypatch.setattr(mlflow_backend, "COMPLETE_AFTER_S", 0.0)
    again = register(reg, path, alias="production")
    assert again.already_registered and again.version.aliases == ("production",)
    assert [e.kind for e in reg.audit_log("credit")] == ["register", "alias"]
    register(reg, path)
    assert [e.kind for e in reg.audit_log("credit")] == ["register", "alias"]


def test_model_gates_tag_keys_are_reserved(reg, tmp_path):
    register(reg, write(tmp_path, b"v1"))
    with pytest.raises(UserError) as err:
        reg.set_tag("credit", 1, "model_gates.verdict", "pass", by="mallory")
    assert str(err.value) == MSG_RESERVED_TAG.format(key="model_gates.verdict")
    assert reg.get_version("credit", 1).verdict == "pass"


def test_an_unreachable_server_is_one_line_without_the_password(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    backend = MlflowRegistry("http://alice:s3cret@127.0.0.1:9/")
    with pytest.raises(EnvironmentProblem) as err:
        backend.list_models()
    message = str(err.value)
    assert message.startswith(MSG_MLFLOW_FAILED.format(uri="http://alice:***@127.0.0.1:9/", problem=""))
    assert "s3cret" not in message and "\n" not in message


WRITER = """
import sys, time
from pathlib import Path
from gates.registry import open_backend
uri, work, me, go1, go2 = sys.argv[1:]
reg = open_backend("mlflow", uri)
reg.list_models()  # import mlflow and open the store now, so both writers start their registration together
print("ready", flush=True)
for go, content in ((go1, f"model of {me}"), (go2, "the same model")):
    path = Path(work) / f"{me}-{len(content)}.skops"
    path.write_bytes(content.encode())
    while not Path(go).exists():
        time.sleep(0.005)
    got = reg.register("credit", path, format="skops", lineage={"by": me}, by=me, verdict="pass")
    print(got.version.version, int(got.already_registered), flush=True)
reg.close()
"""


def test_two_registrations_at_once_get_two_versions_and_identical_bytes_one(uri, tmp_path):
    """Two processes register at the same moment: distinct bytes get distinct versions from MLflow;
    then both register the same bytes at once and both get the one version those bytes hold."""
    work = tmp_path / "work"
    work.mkdir()
    go1, go2 = work / "go1", work / "go2"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, uri, str(work), name, str(go1), str(go2)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    try:
        assert [p.stdout.readline() for p in procs] == ["ready\n", "ready\n"]
        go1.touch()
        firsts = [p.stdout.readline().split() for p in procs]
        go2.touch()
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    seconds = [out.split() for out, _ in outs]
    assert sorted(int(v) for v, _ in firsts) == [1, 2] and {a for _, a in firsts} == {"0"}
    assert seconds[0][0] == seconds[1][0] and sorted(a for _, a in seconds) == ["0", "1"]
    backend = MlflowRegistry(uri)
    versions = {v.version: v.model_sha256 for v in backend.list_versions("credit")}
    assert versions[int(seconds[0][0])] == sha(b"the same model")
    assert sorted(versions.values()) == sorted([sha(b"model of a"), sha(b"model of b"), sha(b"the same model")])
    registered = [e for e in backend.audit_log("credit") if e.kind == "register"]
    assert sorted(e.version for e in registered) == sorted(versions)
    backend.close()
