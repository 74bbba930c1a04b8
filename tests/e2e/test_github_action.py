"""The composite action's ``run:`` steps, executed as GitHub's runner would, against a stand-in API.

Each ``run:`` step is written to a script and run with ``bash --noprofile --norc -eo pipefail``
(GitHub's bash), with the step's ``env:`` and ``working-directory`` evaluated from the inputs, in a
GitHub-like environment (``GITHUB_*`` variables, ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY``
files). ``uses:`` steps (setup-python, upload-artifact) are the platform's and are not run.
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.contracts.sandbox import OFFLINE_PIP_ARGS, clean_env, copy_checkout, fresh_python, read_report, write_project
from tests.contracts.stand_in import GITHUB_TOKEN, Fault, StandIn, serve

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
HEAD_SHA = "4444444444444444444444444444444444444444"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this repository where the runner puts an action's checkout."""
    return copy_checkout(tmp_path_factory.mktemp("_actions") / "model-gates" / "v0")


@pytest.fixture(scope="module")
def python_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_python(tmp_path_factory.mktemp("py") / "venv")


@dataclass
class StepResult:
    name: str
    code: int
    stdout: str
    stderr: str


def evaluate(text: str, inputs: dict[str, str], action_path: Path, token: str) -> str:
    """Evaluate the expressions the action may use in env and working-directory; anything else fails."""
    def value(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr.startswith("inputs."):
            return inputs[expr.removeprefix("inputs.")]
        if expr == "github.action_path":
            return str(action_path)
        if expr == "github.token":
            return token
        raise AssertionError(f"the action's run steps use an unsupported expression: {expr}")

    return EXPR.sub(value, text)


def run_action(checkout: Path, workspace: Path, env: dict[str, str], given: dict[str, str],
               only: tuple[str, ...] = ()) -> list[StepResult]:
    """Run the action's ``run:`` steps (or those named in ``only``) in order, stopping at a failure."""
    action_path = checkout / "actions" / "model-gates"
    action = yaml.safe_load((action_path / "action.yml").read_text())
    token = env["GITHUB_TOKEN_FOR_CONTEXT"]
    inputs = {name: evaluate(str(spec.get("default", "")), {}, action_path, token)
              for name, spec in action["inputs"].items()}
    inputs.update(given)
    results = []
    for i, step in enumerate(action["runs"]["steps"]):
        if "run" not in step or (only and step["name"] not in only):
            continue
        assert step["shell"] == "bash" and "if" not in step
        script = workspace.parent / f"step{i}.sh"
        script.write_text(step["run"])
        step_env = {k: evaluate(str(v), inputs, action_path, token) for k, v in step.get("env", {}).items()}
        cwd = workspace / evaluate(step.get("working-directory", "."), inputs, action_path, token)
        out = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=cwd,
                             env={**env, **step_env}, capture_output=True, text=True, timeout=300, check=False)
        results.append(StepResult(step["name"], out.returncode, out.stdout, out.stderr))
        if out.returncode != 0:
            break
    return results


def outputs(path: Path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT (``name=value`` and ``name<<DELIMITER`` forms)."""
    out, lines, i = {}, path.read_text().splitlines(), 0
    while i < len(lines):
        if "<<" in lines[i] and "=" not in lines[i].split("<<")[0]:
            name, delimiter = lines[i].split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[name], i = "\n".join(lines[i + 1:end]), end + 1
        else:
            name, _, value = lines[i].partition("=")
            out[name], i = value, i + 1
    return out


def job_env(tmp_path: Path, api_url: str, python_bin: Path) -> dict[str, str]:
    """Return a GitHub-like job environment for a pull request, with a workspace at tmp_path/workspace."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"sha": HEAD_SHA}}}))
    return clean_env(
        PATH=f"{python_bin}:{clean_env()['PATH']}", GITHUB_ACTIONS="true", GITHUB_API_URL=api_url,
        GITHUB_SERVER_URL="https://github.example", GITHUB_REPOSITORY="acme/models", GITHUB_SHA="5" * 40,
        GITHUB_EVENT_PATH=str(event), GITHUB_EVENT_NAME="pull_request", GITHUB_WORKFLOW="model-gates",
        GITHUB_JOB="gate", GITHUB_RUN_ID="31337", GITHUB_RUN_ATTEMPT="1", GITHUB_WORKSPACE=str(workspace),
        GITHUB_OUTPUT=str(tmp_path / "output"), GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
        RUNNER_TEMP=str(tmp_path), GITHUB_TOKEN_FOR_CONTEXT=GITHUB_TOKEN)


@pytest.fixture(scope="module")
def installed(checkout: Path, python_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> StepResult:
    """The action's install step, run once for the module: pip installs the checkout into a fresh Python."""
    root = tmp_path_factory.mktemp("install")
    env = job_env(root, "http://127.0.0.1:9", python_bin)
    (result,) = run_action(checkout, root / "workspace", env, {"install-args": OFFLINE_PIP_ARGS},
                           only=("Install model-gates",))
    return result


@pytest.fixture
def github_api() -> Iterator[StandIn]:
    yield from serve("github")


@pytest.fixture
def runner(tmp_path: Path, github_api: StandIn, python_bin: Path, installed: StepResult) -> Iterator[dict[str, str]]:
    """A job whose model-gates is installed; the stand-in API must have seen only valid requests."""
    assert installed.code == 0 and "model-gates, version" in installed.stdout, installed.stderr
    yield job_env(tmp_path, github_api.url, python_bin)
    assert github_api.errors == []


def test_the_run_steps_are_install_then_run():
    action = yaml.safe_load((Path(__file__).resolve().parents[2] / "actions/model-gates/action.yml").read_text())
    assert [s["name"] for s in action["runs"]["steps"] if "run" in s] == ["Install model-gates", "Run model-gates"]


def test_the_action_gates_a_pull_request(checkout, runner, github_api, tmp_path, python_bin):
    workspace = Path(runner["GITHUB_WORKSPACE"])
    write_project(workspace / "ml", passing=False)
    (run,) = run_action(checkout, workspace, runner, {"working-directory": "ml", "fail-on-error": "false"},
                        only=("Run model-gates",))
    assert run.code == 0, run.stdout + run.stderr  # the gates failed, but fail-on-error is false
    assert "::notice title=model-gates::the gates failed" in run.stdout
    assert "::error file=ml/gates.yaml,line=" in run.stdout  # annotated on the policy, workspace-relative
    out = outputs(tmp_path / "output")
    report_dir = workspace / "ml" / "model-gates-report"
    assert out["verdict"] == "fail" and out["exit-code"] == "1" and out["registered-version"] == ""
    assert out["report-path"] == str(report_dir / "report.json") and out["report-dir"] == str(report_dir)
    assert out["model"] == "demo"  # names the artifact: model-gates-report-demo
    assert read_report(report_dir)["verdict"] == "fail"
    assert read_report(report_dir)["run"]["ci"]["pull_request"] == 7
    assert "## ❌ model-gates: `demo` failed" in (tmp_path / "summary.md").read_text()
    (check_run,) = github_api.check_runs.values()
    assert check_run["head_sha"] == HEAD_SHA and check_run["conclusion"] == "failure"
    assert len(github_api.comments["7"]) == 1
    installed = subprocess.run([str(python_bin / "python"), "-c", "import gates; print(gates.__file__)"],
                               capture_output=True, text=True, env=runner, cwd=tmp_path, check=False).stdout
    assert installed.startswith(str(python_bin.parent))  # the action installed its own checkout


def test_a_failing_gate_fails_the_step_by_default_even_when_github_is_down(checkout, runner, github_api, tmp_path):
    workspace = Path(runner["GITHUB_WORKSPACE"])
    write_project(workspace, passing=False)
    for endpoint in github_api.endpoints:
        github_api.fail(endpoint, *[Fault(502, {"Retry-After": "0"}, {"message": f"down {GITHUB_TOKEN}"})] * 9)
    (run,) = run_action(checkout, workspace, {**runner, "MODEL_GATES_HTTP_ATTEMPTS": "3"}, {},
                        only=("Run model-gates",))
    assert run.code == 1, run.stdout + run.stderr  # the verdict decides, not the API
    assert "could not publish the check run" in run.stderr and "gave up after 3 attempts" in run.stderr
    assert GITHUB_TOKEN not in run.stdout + run.stderr
    assert outputs(tmp_path / "output")["verdict"] == "fail"


def test_a_passing_model_is_registered_and_the_comment_kept_current(checkout, runner, github_api, tmp_path):
    workspace = Path(runner["GITHUB_WORKSPACE"])
    write_project(workspace, passing=True, with_model=True)
    github_api.add_comment("7", "<!-- model-gates:model-gates:demo -->\nan earlier verdict")
    github_api.fail("GET /repos/{owner}/{repo}/issues/{issue_number}/comments", Fault(502))
    github_api.fail("PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}", Fault(429, {"Retry-After": "0"}))
    (run,) = run_action(checkout, workspace, runner, {"register": "true"}, only=("Run model-gates",))
    assert run.code == 0, run.stdout + run.stderr
    assert "model-gates: warning" not in run.stderr  # both faults were retried away
    out = outputs(tmp_path / "output")
    assert out["verdict"] == "pass" and out["registered-version"] == "1" and out["exit-code"] == "0"
    (comment,) = github_api.comments["7"]
    assert "an earlier verdict" not in comment["body"] and "Registered** as version 1" in comment["body"]


def test_check_run_false_keeps_the_status_comment_and_summary(checkout, runner, github_api, tmp_path):
    """Several workflows on one commit: the check run is off, the commit status carries the verdict."""
    workspace = Path(runner["GITHUB_WORKSPACE"])
    write_project(workspace, passing=False)
    (run,) = run_action(checkout, workspace, runner, {"check-run": "false", "check-name": "gates / nightly"},
                        only=("Run model-gates",))
    assert run.code == 1, run.stdout + run.stderr
    assert github_api.check_runs == {} and "::error file=gates.yaml,line=" in run.stdout
    assert [(s["state"], s["context"], s["sha"]) for s in github_api.statuses] == [
        ("pending", "gates / nightly", HEAD_SHA), ("failure", "gates / nightly", HEAD_SHA)]
    assert len(github_api.comments["7"]) == 1
    assert "## ❌ model-gates: `demo` failed" in (tmp_path / "summary.md").read_text()


def test_a_config_error_fails_the_step_even_without_fail_on_error(checkout, runner, tmp_path):
    workspace = Path(runner["GITHUB_WORKSPACE"])
    (workspace / "gates.yaml").write_text("version: 1\nmodel: {name: x}\n")
    (run,) = run_action(checkout, workspace, runner, {"fail-on-error": "false"}, only=("Run model-gates",))
    assert run.code == 2 and "gates.yaml" in run.stderr
    assert outputs(tmp_path / "output") == {"exit-code": "2"}


def test_init_writes_ci_files_from_the_installed_package(installed, python_bin, tmp_path):
    """A non-editable install carries the CI templates: init works without this repository."""
    assert installed.code == 0, installed.stderr
    for platform in ("github", "gitlab"):
        out = subprocess.run([str(python_bin / "python"), "-m", "gates", "init", "--ci", platform, "-d", platform],
                             cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
    repo = Path(__file__).resolve().parents[2]
    assert (tmp_path / "github/.github/workflows/model-gates.yml").read_text() == \
        (repo / "starters/github/model-gates.yml").read_text()
    assert (tmp_path / "gitlab/.gitlab/model-gates.yml").read_text() == \
        (repo / "templates/model-gates/template.yml").read_text()
