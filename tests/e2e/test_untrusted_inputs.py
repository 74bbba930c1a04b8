"""Hostile inputs through the command line: model files, registry entries, config files.

Every hostile input is built here. A payload that must not run writes a marker file when it does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from gates.loading import MSG_REGISTRY_PICKLE
from gates.publishers.http import MSG_BUDGET_SPENT
from tests.gates.publishers.test_http_hostile import TOKEN, drip, reply, servers  # noqa: F401 -- fixture
from tests.hostile import pickle_exec, skops_exec_alone, skops_exec_nested

POLICY = """\
version: 1
model: {{name: churn, task: binary_classification, candidate: {candidate}, baseline: {baseline}{extra}}}
data: {{eval: eval.csv, target: label}}
registry: {{uri: reg, on_pass: {{alias: staging}}}}
gates:
  regression:
    bootstrap: 200
    metrics:
      accuracy: {{min: 0.5, max_drop: 0.2}}
"""


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gates", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "CI": "true", **(env or {})})


@pytest.fixture
def project(tmp_path: Path):
    """eval.csv, a good model good.skops, and a function writing gates.yaml."""
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
    y = (X.x1 + X.x2 + rng.normal(size=300) > 0).astype(int)
    X.assign(label=y).to_csv(tmp_path / "eval.csv", index=False)
    sio.dump(LogisticRegression().fit(X, y), tmp_path / "good.skops")

    def write(candidate: str = "good.skops", baseline: str = "none", extra: str = "") -> Path:
        path = tmp_path / "gates.yaml"
        path.write_text(POLICY.format(candidate=candidate, baseline=baseline, extra=extra))
        return path

    write.X, write.y = X, y
    return write


def one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


@pytest.mark.parametrize("kind", ["alone", "nested"])
def test_a_skops_file_calling_exec_is_refused_by_run_and_never_runs(project, tmp_path, kind):
    marker = tmp_path / "ran"
    data = skops_exec_alone(marker) if kind == "alone" else skops_exec_nested(marker, project.X, project.y)
    (tmp_path / "evil.skops").write_bytes(data)
    policy = project(candidate="evil.skops")
    res = cli("run", "-c", str(policy), cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    line = one_error_line(res)
    assert line.startswith("model-gates: error: gates.yaml:2:") and "builtins.exec" in line
    assert "trusted_types: [builtins.exec]" in line
    assert not marker.exists()
    assert not (tmp_path / "reg").exists() and not (tmp_path / "model-gates-report").exists()


def plant(reg: str, path: Path, format: str, alias: str = "production") -> None:
    """Write ``path`` into the registry as the writer's code would, past the register command's trust check
    (another tool, or someone with write access to the registry folder)."""
    from gates.registry import open_backend

    backend = open_backend("local", reg)
    try:
        backend.register("churn", path, format=format, lineage={}, by="mallory", verdict="none", alias=alias,
                         forced_reason="attack")
    finally:
        backend.close()


def test_register_refuses_a_pickle_without_trust_pickle_and_never_runs_it(project, tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "planted.pkl").write_bytes(pickle_exec(marker))
    got = cli("register", "planted.pkl", "-c", str(project()), "--name", "churn", "--force", "--reason", "attack",
              cwd=tmp_path)
    assert got.returncode == 2, got.stdout + got.stderr
    line = one_error_line(got)
    assert "planted.pkl" in line and "model.trust_pickle: true" in line
    assert not marker.exists() and not (tmp_path / "reg").exists()


def test_a_planted_registry_pickle_is_refused_without_trust_pickle(project, tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "planted.pkl").write_bytes(pickle_exec(marker))
    reg = str(tmp_path / "reg")
    plant(reg, tmp_path / "planted.pkl", "pkl")
    shown = cli("show", "churn", "production", "--registry", reg, cwd=tmp_path)
    assert "pkl" in shown.stdout and json.loads(cli("show", "churn", "1", "--json", "--registry", reg,
                                                    cwd=tmp_path).stdout)["format"] == "pkl"
    policy = project(baseline="registry:production")
    res = cli("run", "-c", str(policy), cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    line = one_error_line(res)
    expected = MSG_REGISTRY_PICKLE.format(uri="registry:production (v1)", format="pkl")
    assert line == f"model-gates: error: gates.yaml:2: {expected}"
    assert not marker.exists()
    history = json.loads(cli("history", "churn", "--json", "--registry", reg, cwd=tmp_path).stdout)
    assert [v["version"] for v in history] == [1]


def test_the_planted_pickle_is_real(tmp_path):
    """Control: loading the planted file with trust does run its payload."""
    marker = tmp_path / "ran"
    (tmp_path / "planted.pkl").write_bytes(pickle_exec(marker))
    joblib.load(tmp_path / "planted.pkl")
    assert marker.exists()


def test_a_registry_skops_baseline_needs_its_types_trusted_by_the_reader(project, tmp_path):
    """skops bytes from the registry load under the reading policy's trusted_types, not the writer's."""
    marker = tmp_path / "ran"
    (tmp_path / "evil.skops").write_bytes(skops_exec_nested(marker, project.X, project.y))
    reg = str(tmp_path / "reg")
    refused = cli("register", "evil.skops", "--registry", reg, "--name", "churn", "--force", "--reason", "attack",
                  cwd=tmp_path)
    assert refused.returncode == 2 and "builtins.exec" in one_error_line(refused)
    assert not marker.exists() and not Path(reg).exists()
    plant(reg, tmp_path / "evil.skops", "skops")
    res = cli("run", "-c", str(project(baseline="registry:production")), cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    line = one_error_line(res)
    assert "registry:production (v1)" in line and "builtins.exec" in line
    assert not marker.exists()


# ---------------------------------------------------------------- publishing to a hostile API


def gitlab_env(api: str, **extra: str) -> dict[str, str]:
    return {"CI_API_V4_URL": api, "CI_PROJECT_ID": "7", "CI_COMMIT_SHA": "a" * 40, "CI_MERGE_REQUEST_IID": "3",
            "MODEL_GATES_GITLAB_TOKEN": TOKEN, "CI_JOB_NAME": "gate", **extra}


def test_a_redirect_to_another_host_gets_no_token_and_leaves_the_verdict(project, tmp_path, servers):
    elsewhere = servers("127.0.0.2", reply())
    api = servers("127.0.0.1", reply(307, {}, {"Location": f"{elsewhere.url}/api/v4/steal"}))
    res = cli("run", "-c", str(project()), "--no-register", "--ci", "gitlab", cwd=tmp_path,
              env=gitlab_env(api.url + "/api/v4"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "refused to follow a redirect (307)" in res.stderr and TOKEN not in res.stderr + res.stdout
    assert elsewhere.seen == [] and api.seen and all(h["private-token"] == TOKEN for _, h in api.seen)


def test_a_pagination_link_to_another_host_gets_no_token(project, tmp_path, servers):
    elsewhere = servers("127.0.0.2", reply(200, []))

    def handle(h):
        if h.command == "GET":
            reply(200, [], {"Link": f'<{elsewhere.url}/api/v4/notes?page=2>; rel="next"'})(h)
        else:
            reply(201, {"id": 1})(h)

    api = servers("127.0.0.1", handle)
    res = cli("run", "-c", str(project()), "--no-register", "--ci", "gitlab", cwd=tmp_path,
              env=gitlab_env(api.url + "/api/v4"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "refused to follow a pagination link" in res.stderr
    assert elsewhere.seen == []


def test_a_dripping_api_holds_the_run_no_longer_than_the_budget(project, tmp_path, servers):
    api = servers("127.0.0.1", drip(600))
    started = time.monotonic()
    res = cli("run", "-c", str(project()), "--no-register", "--ci", "gitlab", cwd=tmp_path,
              env=gitlab_env(api.url + "/api/v4", MODEL_GATES_HTTP_TIMEOUT="1", MODEL_GATES_PUBLISH_BUDGET="1.5"))
    elapsed = time.monotonic() - started
    assert res.returncode == 0, res.stdout + res.stderr
    warnings = [line for line in res.stderr.splitlines() if "publishing stopped" in line]
    assert warnings == ["model-gates: warning: " + MSG_BUDGET_SPENT.format(budget=1.5, n=1)]
    assert "deadline" in res.stderr
    assert elapsed < 300  # the server drips 600 s per request; bench/README.md has the measured hold
    assert len(api.seen) == 2  # running status (1 s), final status (the 0.5 s left); the note was skipped


# ---------------------------------------------------------------- a damaged registry, verify


def registered_project(project, tmp_path) -> Path:
    """Register good.skops as production through run; return the registry folder."""
    policy = project(baseline="registry:production")
    policy.write_text(policy.read_text().replace("alias: staging", "alias: production"))
    res = cli("run", "-c", str(policy), cwd=tmp_path)
    assert res.returncode == 0 and "registered: churn version 1" in res.stdout, res.stdout + res.stderr
    return tmp_path / "reg"


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_an_emptied_index_is_an_error_never_a_new_registry(project, tmp_path, damage):
    reg = registered_project(project, tmp_path)
    for name in ("index.db-wal", "index.db-shm"):
        (reg / name).unlink(missing_ok=True)
    if damage == "truncate":
        (reg / "index.db").write_bytes(b"")
    else:
        (reg / "index.db").unlink()
    res = cli("run", "-c", str(tmp_path / "gates.yaml"), cwd=tmp_path)
    assert res.returncode == 3, res.stdout + res.stderr
    line = one_error_line(res)
    assert str(reg) in line and "damaged" in line
    assert not (reg / "index.db").exists() or (reg / "index.db").stat().st_size == 0
    ver = cli("verify", "-c", str(tmp_path / "gates.yaml"), cwd=tmp_path)
    assert ver.returncode == 3 and len(ver.stdout.strip().splitlines()) == 1 and "damaged" in ver.stdout


def test_verify_passes_a_sound_registry_and_names_each_problem(project, tmp_path):
    import sqlite3

    reg = registered_project(project, tmp_path)
    ok = cli("verify", "--registry", str(reg), cwd=tmp_path)
    assert ok.returncode == 0 and "sound" in ok.stdout, ok.stdout + ok.stderr
    conn = sqlite3.connect(reg / "index.db")
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET by = 'mallory' WHERE seq = 1")
    conn.execute("UPDATE aliases SET version = 9")  # an alias pointing at no version
    conn.commit()
    conn.close()
    blob = next((reg / "blobs" / "sha256").glob("*/*"))
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes() + b"tampered")
    bad = cli("verify", "--registry", str(reg), cwd=tmp_path)
    assert bad.returncode == 3
    lines = bad.stdout.strip().splitlines()
    assert any("blob does not match its sha256" in x for x in lines)
    assert any("audit: entry 1 does not match the hash chain" in x for x in lines)
    assert any("alias 'production' -> v9" in x for x in lines)
    assert "Traceback" not in bad.stderr


# ---------------------------------------------------------------- render, then register


def test_a_report_that_cannot_render_registers_nothing_and_exits_3(project, tmp_path, monkeypatch, capsys):
    import gates.reporters as reporters
    from gates.cli import main

    real = reporters.renderer

    def broken(fmt: str):
        if fmt == "md":
            def fail(report):
                raise ValueError("cannot format this number")
            return fail
        return real(fmt)

    monkeypatch.setattr(reporters, "renderer", broken)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "-c", str(project())])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "could not render report.md (ValueError: cannot format this number); nothing was registered" in err
    report = json.loads((tmp_path / "model-gates-report" / "report.json").read_text())
    assert report["verdict"] == "pass" and report["registration"]["registered"] is False
    assert not (tmp_path / "model-gates-report" / "report.md").exists()
    monkeypatch.setattr(reporters, "renderer", real)
    history = cli("history", "churn", "--json", "--audit", "--registry", str(tmp_path / "reg"), cwd=tmp_path)
    events = json.loads(history.stdout)
    assert [e["kind"] for e in events] == ["run"] and "could not be rendered" in events[0]["record"]["not_registered"]
