"""The MLflow backend against a real ``mlflow server`` on 127.0.0.1, over HTTP, read back with MLflow's own client.

The server is started once for the module (SQLite backend store, local artifact destination served
through the server, a free port), waited for with a bounded loop, and always stopped.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

pytest.importorskip("mlflow")

import mlflow.artifacts
import mlflow.sklearn
from mlflow import MlflowClient

from gates.registry import open_backend
from gates.registry.base import Evidence, RunEntry
from tests.gates.registry.backends import migrated_mlflow_db

READY_WITHIN_S = 240
MLFLOW = Path(sys.executable).with_name("mlflow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow server not ready after {READY_WITHIN_S} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and the workers it started (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(migrated_mlflow_db(), folder / "mlflow.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                 "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                                 "--artifacts-destination", str(folder / "artifacts")],
                                cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_ready(proc, url, log)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[LogisticRegression, pd.DataFrame, list[Path]]:
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"tenure": rng.integers(0, 60, 300), "spend": rng.normal(80, 20, 300)})
    y = (X.spend / 20 - X.tenure / 30 + rng.normal(0, 1, 300) > 2).astype(int)
    models = [LogisticRegression(C=c).fit(X, y) for c in (1.0, 0.1, 0.01, 0.001)]
    for i, model in enumerate(models):
        sio.dump(model, folder / f"m{i}.skops")
    return models[0], X, [folder / f"m{i}.skops" for i in range(len(models))]


def test_registered_over_http_and_read_back_with_mlflows_client(server, trained, tmp_path, monkeypatch, capfd):
    model, X, paths = trained
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    capfd.readouterr()
    reg = open_backend("mlflow", server)
    run = RunEntry("pass", "ci", "https://ci.example/1", {"failing": []})
    got = reg.register("churn", paths[0], format="skops", lineage={"git_sha": "f00d", "verdict": "pass"}, by="alice",
                       verdict="pass", alias="production", run=run, evidence=Evidence(model, X), tags={"team": "growth"})
    reg.close()
    assert capfd.readouterr().out == "", "nothing on stdout: `register --json` prints JSON only"

    client = MlflowClient(tracking_uri=server)
    mv = client.get_model_version_by_alias("churn", "production")
    assert int(mv.version) == got.version.version
    assert mv.aliases == ["production"] and mv.tags["team"] == "growth"
    assert mv.tags["model_gates.model_sha256"] == got.version.model_sha256 == sio_sha(paths[0])
    assert mv.tags["model_gates.git_sha"] == "f00d" and mv.tags["model_gates.created_by"] == "alice"
    assert mv.source.startswith("mlflow-artifacts:"), "the artifacts went through the server"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    exact = mlflow.artifacts.download_artifacts("models:/churn@production/model_gates/model.skops",
                                                dst_path=str(tmp_path))
    assert Path(exact).read_bytes() == paths[0].read_bytes()
    served = mlflow.sklearn.load_model("models:/churn@production")
    np.testing.assert_array_equal(served.predict(X), model.predict(X))

    reopened = open_backend("mlflow", server)
    assert reopened.fetch("churn", got.version.version).read_bytes() == paths[0].read_bytes()
    assert [e.kind for e in reopened.audit_log("churn")] == ["run", "register", "tag", "alias"]
    reopened.close()


def write(folder: Path, content: bytes) -> Path:
    """Return a model file of plain bytes: no flavour to build, so only the HTTP round trips are timed."""
    path = folder / f"{content.decode()}.skops"
    path.write_bytes(content)
    return path


def test_two_registrations_at_once_over_http_get_distinct_versions(server, tmp_path):
    paths = [write(tmp_path, f"race-{i}".encode()) for i in (0, 1)]
    start = threading.Barrier(2)
    results: dict[int, int] = {}

    def register(i: int) -> None:
        reg = open_backend("mlflow", server)
        reg.list_models()
        start.wait(timeout=60)
        results[i] = reg.register("race", paths[i], format="skops", lineage={}, by=f"job{i}",
                                  verdict="pass").version.version
        reg.close()

    threads = [threading.Thread(target=register, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(results.values()) == [1, 2]
    client = MlflowClient(tracking_uri=server)
    by_version = {int(mv.version): mv.tags["model_gates.model_sha256"]
                  for mv in client.search_model_versions("name = 'race'")}
    assert by_version == {results[i]: sio_sha(paths[i]) for i in (0, 1)}
    reader = open_backend("mlflow", server)
    log = reader.audit_log("race")
    reader.close()
    assert [(e.seq, e.kind) for e in log] == [(1, "register"), (2, "register")]
    assert sorted(e.version for e in log) == [1, 2]


def test_promote_and_rollback_move_mlflow_aliases(server, tmp_path):
    reg = open_backend("mlflow", server)
    for i in (1, 2):
        reg.register("flip", write(tmp_path, f"flip-{i}".encode()), format="skops", lineage={}, by="alice",
                     verdict="pass")
    reg.set_alias("flip", "production", 1, by="bob")
    reg.set_alias("flip", "production", 2, by="bob")
    client = MlflowClient(tracking_uri=server)
    assert client.get_registered_model("flip").aliases == {"production": "2"}
    assert reg.rollback("flip", "production", by="carol").to_version == 1
    assert client.get_model_version_by_alias("flip", "production").version == "1"
    assert [(m.kind, m.to_version) for m in reg.alias_moves("flip", "production")] == [
        ("promote", 1), ("promote", 2), ("rollback", 1)]
    reg.close()


def sio_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
