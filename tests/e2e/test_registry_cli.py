"""The registry through the command line: run registers on pass, promote, rollback, history, show, register."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from gates.cli import main
from gates.commands.registry import (
    MSG_FORCE_NEEDS_REASON,
    MSG_NOT_ADMITTED,
    MSG_REPORT_FAILED,
    MSG_REPORT_OTHER_BYTES,
)
from gates.registry.base import MSG_BAD_ALIAS

POLICY = """\
version: 1
model: {name: churn, task: binary_classification, candidate: models/candidate.skops}
data: {eval: eval.csv, target: label}
registry: {on_pass: {alias: staging}}
gates:
  data:
    checks:
      row_count: {min: MIN_ROWS}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Return (eval.csv, three distinct model files), trained once for the module."""
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
    y = (X.x1 + X.x2 + rng.normal(size=300) > 0).astype(int)
    X.assign(label=y).to_csv(folder / "eval.csv", index=False)
    paths = []
    for i, c in enumerate((1.0, 0.1, 0.01)):
        sio.dump(LogisticRegression(C=c).fit(X, y), folder / f"m{i + 1}.skops")
        paths.append(folder / f"m{i + 1}.skops")
    return folder / "eval.csv", paths


@pytest.fixture
def project(tmp_path, models, monkeypatch):
    """A project folder (the cwd) with gates.yaml; ``use(i)`` puts model i in place as the candidate."""
    eval_csv, files = models
    shutil.copy(eval_csv, tmp_path / "eval.csv")
    (tmp_path / "models").mkdir()
    (tmp_path / "gates.yaml").write_text(POLICY.replace("MIN_ROWS", "10"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "true")

    class Project:
        root = tmp_path

        @staticmethod
        def use(i: int) -> Path:
            shutil.copy(files[i - 1], tmp_path / "models" / "candidate.skops")
            return tmp_path / "models" / "candidate.skops"

        @staticmethod
        def require_rows(n: int) -> None:
            (tmp_path / "gates.yaml").write_text(POLICY.replace("MIN_ROWS", str(n)))

        @staticmethod
        def report() -> dict:
            return json.loads((tmp_path / "model-gates-report" / "report.json").read_text())

    return Project


def cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def history(capsys) -> list[dict]:
    code, out, err = cli(capsys, "history", "churn", "--json")
    assert code == 0, err
    return json.loads(out)


def audit(capsys) -> list[dict]:
    code, out, err = cli(capsys, "history", "churn", "--json", "--audit")
    assert code == 0, err
    return json.loads(out)


def test_two_runs_of_a_passing_candidate_register_one_version(project, capsys):
    project.use(1)
    code, out, _ = cli(capsys, "run")
    assert code == 0 and "registered: churn version 1\n" in out
    assert project.report()["registration"] == {"registered": True, "backend": "local", "version": 1,
                                                "aliases": ["staging"], "already_registered": False}
    code, out, _ = cli(capsys, "run")
    assert code == 0 and "registered: churn version 1 (already registered: same model bytes)" in out
    assert project.report()["registration"]["already_registered"] is True
    [only] = history(capsys)
    assert (only["version"], only["aliases"], only["verdict"]) == (1, ["staging"], "pass")
    assert only["model_sha256"] == hashlib.sha256((project.root / "models/candidate.skops").read_bytes()).hexdigest()
    assert set(only) >= {"version", "aliases", "created_at", "verdict", "model_sha256"}
    assert [e["kind"] for e in audit(capsys)] == ["run", "register", "alias", "run"]


def test_a_failing_candidate_is_not_registered_but_audited(project, capsys):
    project.use(1)
    project.require_rows(10**6)
    code, out, _ = cli(capsys, "run")
    assert code == 1 and "not registered: the verdict is fail" in out
    assert project.report()["registration"] == {"registered": False, "reason": "the verdict is fail"}
    assert history(capsys) == []
    code, out, _ = cli(capsys, "history", "churn")
    assert code == 0 and "no version registered yet" in out and "run fail" in out
    [event] = audit(capsys)
    assert (event["kind"], event["verdict"]) == ("run", "fail")
    assert event["record"]["failing"] == ["data.row_count.min"]
    assert event["record"]["report_sha256"]


def test_rollback_after_promote_restores_the_previous_production_and_the_next_baseline(project, capsys):
    project.use(1)
    assert cli(capsys, "run")[0] == 0
    assert cli(capsys, "promote", "churn", "1", "--alias", "production")[1] == "churn: production unset -> v1\n"
    project.use(2)
    assert cli(capsys, "run")[0] == 0
    assert project.report()["model"]["baseline"]["version"] == 1
    assert cli(capsys, "promote", "churn", "2", "--alias", "production")[1] == "churn: production v1 -> v2\n"
    project.use(3)
    assert cli(capsys, "run", "--no-register")[0] == 0
    assert project.report()["model"]["baseline"]["version"] == 2
    code, out, _ = cli(capsys, "rollback", "churn")
    assert code == 0 and out == "churn: production rolled back v2 -> v1\n"
    assert cli(capsys, "run", "--no-register")[0] == 0
    assert project.report()["model"]["baseline"]["uri"] == "registry:production (v1)"
    assert {v["version"]: v["aliases"] for v in history(capsys)} == {1: ["production"], 2: ["staging"]}
    kinds = [(e["kind"], e["alias"], e["record"].get("from_version"), e["version"]) for e in audit(capsys)
             if e["kind"] in ("alias", "rollback")]
    assert kinds[-1] == ("rollback", "production", 2, 1)


def test_history_and_show_for_people(project, capsys):
    project.use(1)
    cli(capsys, "run")
    code, out, _ = cli(capsys, "history", "churn")
    assert code == 0
    lines = out.splitlines()
    assert lines[2].split() == ["version", "aliases", "verdict", "registered", "by", "format", "sha256", "ci"]
    assert lines[3].split()[:3] == ["1", "staging", "pass"] and lines[3].split()[5] == "skops"
    assert "recent events" in out and "register v1" in out
    code, out, _ = cli(capsys, "show", "churn", "1")
    assert code == 0 and out.startswith("churn v1  (aliases: staging)")
    assert "data.row_count.min" in out and "eval: eval.csv (300 rows" in out


def test_show_json_is_the_lineage_with_aliases(project, capsys):
    project.use(1)
    cli(capsys, "run")
    code, out, _ = cli(capsys, "show", "churn", "staging", "--json")
    record = json.loads(out)
    assert code == 0 and record["version"] == 1 and record["aliases"] == ["staging"]
    report = project.report()
    assert record["model"]["sha256"] == report["model"]["candidate"]["sha256"]
    assert record["data"] == report["data"] and record["policy"]["sha256"] == report["policy"]["sha256"]
    assert record["metrics"] == {"data.target.not_null": 0, "data.target.labels": 0, "data.row_count.min": 300}
    assert {"git_sha", "ci_url", "environment", "verdict", "report"} <= set(record)


@pytest.mark.parametrize("args, code, needle", [
    (("show", "churn", "7"), 2, "has no version 7"),
    (("show", "churn", "canary"), 2, "has no alias 'canary'"),
    (("show", "nope", "1"), 2, "no model named 'nope'"),
    (("promote", "churn", "1", "--alias", "v2"), 2, MSG_BAD_ALIAS.format(alias="v2")),
    (("promote", "../churn", "1", "--alias", "production"), 2, "invalid model name '../churn'"),
    (("rollback", "churn", "--alias", "staging"), 2, "no earlier version to roll back to"),
    (("history", "churn", "--registry", "/nonexistent/registry"), 2, "no model named 'churn'"),
])
def test_user_errors_exit_2_in_one_line(project, capsys, args, code, needle):
    project.use(1)
    cli(capsys, "run")
    got, out, err = cli(capsys, *args)
    assert got == code, out + err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_a_corrupted_production_blob_is_an_environment_error(project, capsys):
    project.use(1)
    cli(capsys, "run")
    cli(capsys, "promote", "churn", "1", "--alias", "production")
    blob = next((project.root / ".model-gates" / "registry" / "blobs").rglob("*.skops"))
    blob.chmod(0o644)
    blob.write_bytes(b"not the model")
    code, _, err = cli(capsys, "run")
    assert code == 3 and "corrupted" in err and err.count("\n") == 1


def test_register_requires_a_passing_report_for_the_same_bytes(project, capsys):
    project.use(1)
    assert cli(capsys, "run", "--no-register")[0] == 0
    other = project.use(2)
    code, _, err = cli(capsys, "register")
    report = project.report()
    gated = report["model"]["candidate"]["sha256"]
    actual = hashlib.sha256(other.read_bytes()).hexdigest()
    problem = MSG_REPORT_OTHER_BYTES.format(gated=gated, actual=actual)
    assert code == 2 and MSG_NOT_ADMITTED.format(report="model-gates-report/report.json", problem=problem) in err
    project.use(1)
    code, out, _ = cli(capsys, "register", "--alias", "production")
    assert code == 0 and out == "registered: churn version 1; aliases: production\n"
    assert [e["kind"] for e in audit(capsys)][-3:] == ["run", "register", "alias"]


def test_register_refuses_a_failed_report_unless_forced_with_a_reason(project, capsys):
    project.use(1)
    project.require_rows(10**6)
    assert cli(capsys, "run")[0] == 1
    code, _, err = cli(capsys, "register")
    assert code == 2 and MSG_REPORT_FAILED.format(verdict="fail") in err
    code, _, err = cli(capsys, "register", "--force")
    assert code == 2 and MSG_FORCE_NEEDS_REASON in err
    code, out, _ = cli(capsys, "register", "--force", "--reason", "incident 42: revert needed now")
    assert code == 0 and "[forced: audited]" in out
    forced = [e for e in audit(capsys) if e["kind"] == "forced_register"]
    assert len(forced) == 1 and forced[0]["record"]["reason"] == "incident 42: revert needed now"
    code, out, _ = cli(capsys, "show", "churn", "1", "--json")
    record = json.loads(out)
    assert record["forced"] is True and record["verdict"] == "fail"
    assert record["bypassed"] == [MSG_REPORT_FAILED.format(verdict="fail")]


def test_the_console_script_runs_the_registry_commands(project):
    project.use(1)
    assert main(["run", "-q"]) == 0
    res = subprocess.run([sys.executable, "-m", "gates", "history", "churn", "--json"], check=False, cwd=project.root,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert [v["version"] for v in json.loads(res.stdout)] == [1]


def test_register_points_the_configs_on_pass_alias_unless_told_otherwise(project, capsys):
    project.use(1)
    assert cli(capsys, "run", "--no-register")[0] == 0
    code, out, err = cli(capsys, "register")
    assert code == 0, err
    assert out == "registered: churn version 1; aliases: staging\n"
    (project.root / "gates.yaml").write_text(POLICY.replace("MIN_ROWS", "10").replace("alias: staging", "alias: null"))
    project.use(2)
    assert cli(capsys, "run", "--no-register")[0] == 0
    code, out, err = cli(capsys, "register")
    assert code == 0 and out == "registered: churn version 2\n", err
