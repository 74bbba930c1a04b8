"""The GitLab CI/CD component's job, run as a GitLab runner would, against a stand-in GitLab API.

The component is interpolated with its inputs (``$[[ inputs.x ]]``, as GitLab does), its
``variables:`` are expanded, and its ``script:`` lines run in order under ``sh -e`` in a GitLab-like
environment (``CI_*`` variables). With gitlab-ci-local available, the same job also runs through it
end to end (``include: local:`` with inputs; ``include: component:`` needs a GitLab server).
"""
from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gates.publishers.metrics import METRICS_FILE
from gates.publishers.sticky import marker
from tests.contracts.node_tools import gitlab_ci_local
from tests.contracts.sandbox import (
    OFFLINE_PIP_ARGS,
    REPO,
    clean_env,
    copy_checkout,
    fresh_python,
    read_report,
    write_project,
)
from tests.contracts.stand_in import GITLAB_TOKEN, Fault, StandIn, serve

COMPONENT = REPO / "templates" / "model-gates" / "template.yml"
INPUT = re.compile(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]")
SHA = "6666666666666666666666666666666666666666"
NOTES = "GET /projects/:id/merge_requests/:merge_request_iid/notes"


def component_job(**inputs: Any) -> tuple[str, dict[str, Any]]:
    """Return the component's (job name, job) interpolated with ``inputs`` over the defaults."""
    header, jobs = COMPONENT.read_text().split("\n---\n", 1)
    spec = yaml.safe_load(header)["spec"]["inputs"]
    values = {**{k: v.get("default") for k, v in spec.items()}, **inputs}
    text = INPUT.sub(lambda m: str(values[m.group(1)]).lower() if isinstance(values[m.group(1)], bool)
                     else str(values[m.group(1)]), jobs)
    ((name, job),) = yaml.safe_load(text).items()
    return name, job


def run_job(job: dict[str, Any], project: Path, ci: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the job's script lines in ``project`` as the runner does: variables expanded, stop at a failure."""
    env = clean_env(**ci, CI_PROJECT_DIR=str(project), GITLAB_CI="true")
    for key, value in job.get("variables", {}).items():
        env[key] = _expand(str(value), env)
    script = "\n".join(job["script"])
    return subprocess.run(["sh", "-e", "-c", script], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def gitlab_ci(api_url: str, python_bin: Path, *, branch: str = "feature/x", mr: str | None = "17") -> dict[str, str]:
    env = {"PATH": f"{python_bin}:{os.environ['PATH']}", "CI_API_V4_URL": api_url, "CI_PROJECT_ID": "12",
           "CI_PROJECT_PATH": "acme/models", "CI_COMMIT_SHA": SHA, "CI_COMMIT_REF_NAME": branch,
           "CI_COMMIT_BRANCH": branch, "CI_DEFAULT_BRANCH": "main", "CI_JOB_NAME": "model-gates",
           "CI_JOB_URL": "https://gitlab.example/acme/models/-/jobs/1", "CI_PIPELINE_ID": "77",
           "CI_JOB_TOKEN": "job-token", "MODEL_GATES_GITLAB_TOKEN": GITLAB_TOKEN, "MODEL_GATES_HTTP_ATTEMPTS": "2"}
    if mr:
        env.update({"CI_MERGE_REQUEST_IID": mr, "CI_PIPELINE_SOURCE": "merge_request_event"})
        env.pop("CI_COMMIT_BRANCH")  # GitLab leaves it unset in merge-request pipelines
    return env


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this repository: what the component's ``package`` input points pip at here."""
    return copy_checkout(tmp_path_factory.mktemp("model-gates-src"))


@pytest.fixture(scope="module")
def python_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_python(tmp_path_factory.mktemp("py") / "venv")


@pytest.fixture
def api() -> Iterator[StandIn]:
    running = serve("gitlab")
    stand_in = next(running)
    yield stand_in
    running.close()
    assert stand_in.errors == []


def test_the_job_installs_gates_and_reports_to_the_merge_request(checkout, python_bin, api, tmp_path):
    project = tmp_path / "project"
    write_project(project, passing=False)
    _, job = component_job(package=str(checkout), pip_args=OFFLINE_PIP_ARGS)
    out = run_job(job, project, gitlab_ci(api.url, python_bin))
    assert out.returncode == 1, out.stdout + out.stderr  # the gates failed: the job fails
    reports = project / "model-gates-report"
    assert read_report(reports)["verdict"] == "fail"
    assert read_report(reports)["run"]["ci"]["merge_request"] == 17
    assert read_report(reports)["registration"]["registered"] is False
    junit = ET.parse(project / job["artifacts"]["reports"]["junit"]).getroot()
    assert {tc.get("name") for tc in junit.iter("testcase")} == {c["id"] for c in read_report(reports)["checks"]}
    metrics = (project / job["artifacts"]["reports"]["metrics"]).read_text()
    assert 'model_gates_verdict{model="demo"} 0' in metrics and metrics.endswith("# EOF\n")
    assert [s["state"] for s in api.statuses] == ["running", "failed"]
    (note,) = api.comments["17"]
    assert note["body"].startswith(marker("model-gates", "demo"))

    write_project(project, passing=True)  # the next push fixes the candidate; the API is down for notes
    api.fail(NOTES, *[Fault(502, {"Retry-After": "0"})] * 4)
    out = run_job(job, project, gitlab_ci(api.url, python_bin))
    assert out.returncode == 0, out.stdout + out.stderr  # a publishing failure never changes the verdict
    assert "could not publish the merge-request note" in out.stderr
    assert [s["state"] for s in api.statuses][-1] == "success" and len(api.comments["17"]) == 1


@pytest.mark.parametrize("register, branch, mr, registers", [
    ("default-branch", "main", None, True), ("default-branch", "feature/x", None, False),
    ("default-branch", "feature/x", "17", False), ("always", "feature/x", "17", True),
    ("never", "main", None, False)])
def test_the_register_input_decides_the_flag(tmp_path, register, branch, mr, registers):
    """The script's own logic, with a stand-in ``python`` that records its arguments."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text('#!/bin/sh\necho "$@" >> "$ARGS_LOG"\n')
    (fake / "python").chmod(0o755)
    _, job = component_job(register=register, args="--require-baseline")
    ci = {**gitlab_ci("http://127.0.0.1:9", fake, branch=branch, mr=mr), "ARGS_LOG": str(tmp_path / "args")}
    assert run_job(job, tmp_path, ci).returncode == 0
    install, run = (tmp_path / "args").read_text().splitlines()
    assert install.startswith("-m pip install") and install.endswith("model-gates==0.1.0")
    assert run.startswith("-m gates run --config gates.yaml --report-dir model-gates-report --ci gitlab")
    assert ("--no-register" not in run) is registers and run.endswith("--require-baseline")


def test_the_job_runs_under_gitlab_ci_local(checkout, python_bin, api, tmp_path):
    tool = gitlab_ci_local()
    project = tmp_path / "project"
    write_project(project, passing=False)
    (project / ".gitlab").mkdir()
    (project / ".gitlab" / "model-gates.yml").write_text(COMPONENT.read_text())
    pipeline = {"stages": ["test"],
                "include": [{"local": ".gitlab/model-gates.yml", "inputs": {
                    "package": str(checkout), "pip_args": OFFLINE_PIP_ARGS, "job_name": "gate-demo"}}]}
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=project, check=True, timeout=60)
    ci = gitlab_ci(api.url, python_bin, branch="main", mr="17")
    env = clean_env(PATH=ci.pop("PATH"), HOME=str(tmp_path))
    variables = [f"--variable={k}={v}" for k, v in ci.items()] + ["--unset-variable=CI_COMMIT_BRANCH"]  # as in MR pipelines

    def tool_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tool), "--cwd", ".", "--no-color", *variables, *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=600, check=False)

    listed = tool_run("--list")  # the tool's own include expansion, interpolation and schema validation
    assert listed.returncode == 0 and "gate-demo" in listed.stdout and "test" in listed.stdout, listed.stdout
    # No Docker here: with an empty image gitlab-ci-local runs the job with its shell executor; the
    # empty image is this harness's, so its schema check is off for the run (the real file passed above).
    pipeline["gate-demo"] = {"image": ""}
    (project / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline))
    out = tool_run("--json-schema-validation=false", "gate-demo")
    log = out.stdout + out.stderr
    assert "gate-demo" in log and out.returncode != 0, log  # the gates failed, so the job (and the tool) fail
    artifacts = project / ".gitlab-ci-local" / "artifacts" / "gate-demo" / "model-gates-report"
    assert (artifacts / "report.json").is_file() and (artifacts / METRICS_FILE).is_file(), log
    assert (artifacts / "report.xml").is_file() and read_report(artifacts)["verdict"] == "fail"
    assert [s["state"] for s in api.statuses] == ["running", "failed"] and len(api.comments["17"]) == 1
