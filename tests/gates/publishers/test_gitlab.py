"""GitLabPublisher against a stand-in GitLab API that validates every body against GitLab's API schemas."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gates.publishers import select_publisher
from gates.publishers.gitlab import FIELD_CHARS, GitLabContext, MSG_JOB_TOKEN, MSG_NO_TOKEN, MSG_TOKEN_VARIABLE_EMPTY, GitLabPublisher
from gates.publishers.http import RetryPolicy
from gates.publishers.metrics import METRICS_FILE
from gates.publishers.sticky import marker
from tests.contracts.stand_in import GITLAB_TOKEN, Fault, StandIn
from gates.reporters.markdown import render_markdown
from tests.gates.publishers.reports import check, multibyte_report, report

STATUS = "POST /projects/:id/statuses/:sha"
LIST = "GET /projects/:id/merge_requests/:merge_request_iid/notes"
CREATE = "POST /projects/:id/merge_requests/:merge_request_iid/notes"
UPDATE = "PUT /projects/:id/merge_requests/:merge_request_iid/notes/:note_id"
SHA = "3333333333333333333333333333333333333333"
JOB_URL = "https://gitlab.example/acme/models/-/jobs/555"


def gitlab_env(api_url: str, *, mr: str | None = "17", **extra: str) -> dict[str, str]:
    env = {"GITLAB_CI": "true", "CI_API_V4_URL": api_url, "CI_SERVER_URL": "https://gitlab.example",
           "CI_PROJECT_ID": "12", "CI_PROJECT_PATH": "acme/models", "CI_COMMIT_SHA": SHA,
           "CI_COMMIT_REF_NAME": "feature/x", "CI_JOB_NAME": "model-gates", "CI_JOB_URL": JOB_URL,
           "CI_PIPELINE_ID": "9001", "CI_PIPELINE_URL": "https://gitlab.example/acme/models/-/pipelines/9001",
           "CI_JOB_TOKEN": "job-token-not-for-notes", "MODEL_GATES_GITLAB_TOKEN": GITLAB_TOKEN}
    if mr:
        env["CI_MERGE_REQUEST_IID"] = mr
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


class Run:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.sleeps: list[float] = []
        self.publisher = GitLabPublisher(env, sleep=self.sleeps.append, retry=RetryPolicy(attempts=3))

    def __call__(self, rep: dict) -> list[str]:
        warnings = self.publisher.started(rep["model"]["name"])
        return warnings + self.publisher.publish(rep, self.root / "model-gates-report")


@pytest.fixture
def run(tmp_path: Path, gitlab_api: StandIn) -> Iterator[Run]:
    yield Run(tmp_path, gitlab_env(gitlab_api.url))
    assert gitlab_api.errors == []


def test_status_runs_then_fails_and_a_note_is_written(run, gitlab_api):
    assert run(report()) == []
    assert [(s["state"], s["sha"]) for s in gitlab_api.statuses] == [("running", SHA), ("failed", SHA)]
    final = gitlab_api.statuses[-1]
    assert final["name"] == "model-gates: credit-risk" and final["target_url"] == JOB_URL
    assert final["pipeline_id"] == 9001 and "ref" not in final
    assert final["description"].startswith("failed: 1 fail, 1 pass, 1 warn")
    (note,) = gitlab_api.comments["17"]
    assert note["body"].startswith(marker("model-gates", "credit-risk"))
    assert (run.root / "model-gates-report" / METRICS_FILE).is_file()
    (create,) = gitlab_api.calls(CREATE)
    assert create.headers["private-token"] == GITLAB_TOKEN and create.path == "/projects/12/merge_requests/17/notes"


def test_a_second_run_updates_the_note_in_place(tmp_path, gitlab_api):
    gitlab_api.add_comment("17", "LGTM from a human")
    env = gitlab_env(gitlab_api.url)
    Run(tmp_path, env)(report())
    Run(tmp_path, env)(report([check("regression.roc_auc.max_drop", "pass")]))
    bodies = [n["body"] for n in gitlab_api.comments["17"]]
    assert len(bodies) == 2 and bodies[0] == "LGTM from a human" and "passed" in bodies[1].splitlines()[1]
    assert len(gitlab_api.calls(CREATE)) == 1 and len(gitlab_api.calls(UPDATE)) == 1
    assert gitlab_api.statuses[-1]["state"] == "success"
    assert gitlab_api.errors == []


def test_a_branch_pipeline_sets_the_status_but_writes_no_note(tmp_path, gitlab_api):
    env = gitlab_env(gitlab_api.url, mr=None, CI_PIPELINE_ID="")
    assert Run(tmp_path, env)(report()) == []
    assert gitlab_api.calls(LIST) == [] and gitlab_api.calls(CREATE) == []
    assert gitlab_api.statuses[-1]["ref"] == "feature/x"


def test_ci_job_token_is_refused_with_a_clear_message(tmp_path, gitlab_api):
    for env in (gitlab_env(gitlab_api.url, MODEL_GATES_GITLAB_TOKEN="job-token-not-for-notes"),
                gitlab_env(gitlab_api.url, MODEL_GATES_TOKEN_VARIABLE="CI_JOB_TOKEN")):
        warnings = Run(tmp_path, env)(report())
        assert warnings == [MSG_JOB_TOKEN]
        assert "CI_JOB_TOKEN, which cannot write merge-request notes" in warnings[0]
    assert gitlab_api.requests == []
    assert (tmp_path / "model-gates-report" / METRICS_FILE).is_file()  # reports do not need the API


def test_the_token_variable_can_be_renamed(tmp_path, gitlab_api):
    env = gitlab_env(gitlab_api.url, MODEL_GATES_GITLAB_TOKEN="", MODEL_GATES_TOKEN_VARIABLE="MY_BOT_TOKEN",
                     MY_BOT_TOKEN=GITLAB_TOKEN)
    assert Run(tmp_path, env)(report()) == []
    assert len(gitlab_api.statuses) == 2
    env = gitlab_env(gitlab_api.url, MODEL_GATES_TOKEN_VARIABLE="MISSING_TOKEN")
    assert Run(tmp_path, env)(report()) == [MSG_TOKEN_VARIABLE_EMPTY.format(name="MISSING_TOKEN")]


def test_without_a_token_nothing_is_sent(tmp_path, gitlab_api):
    env = gitlab_env(gitlab_api.url, MODEL_GATES_GITLAB_TOKEN="")
    assert Run(tmp_path, env)(report()) == [MSG_NO_TOKEN]
    assert gitlab_api.requests == []
    env = gitlab_env(gitlab_api.url, MODEL_GATES_GITLAB_TOKEN="", GITLAB_TOKEN=GITLAB_TOKEN)  # the fallback
    assert Run(tmp_path, env)(report()) == []


def test_transient_failures_are_retried_and_then_succeed(run, gitlab_api):
    gitlab_api.fail(STATUS, Fault(502), Fault(429, {"Retry-After": "2"}))
    gitlab_api.fail(CREATE, Fault(503))
    assert run(report()) == []
    assert len(run.sleeps) == 3 and 2.0 in run.sleeps
    assert len(gitlab_api.comments["17"]) == 1


def test_persistent_failure_is_a_warning_never_an_exception(run, gitlab_api):
    gitlab_api.fail(STATUS, *[Fault(500)] * 10)
    gitlab_api.fail(LIST, *[Fault(502, body={"message": f"upstream {GITLAB_TOKEN}"})] * 10)
    warnings = run(report())
    assert [w.split(":")[0] for w in warnings] == ["could not publish the commit status"] * 2 + \
        ["could not publish the merge-request note"]
    assert GITLAB_TOKEN not in "".join(warnings)


def test_allowed_to_fail_does_not_fail_the_pipeline_through_the_status(tmp_path, gitlab_api):
    Run(tmp_path, gitlab_env(gitlab_api.url, MODEL_GATES_ALLOW_FAILURE="true"))(report())
    assert gitlab_api.statuses[-1]["state"] == "skipped"
    assert gitlab_api.statuses[-1]["description"].startswith("failed (allowed to fail: not blocking)")


def test_shadow_mode_succeeds(run, gitlab_api):
    run(report(mode="shadow"))
    assert gitlab_api.statuses[-1]["state"] == "success"
    assert "shadow mode" in gitlab_api.statuses[-1]["description"]


def test_long_fields_are_cut_to_the_api_limits(tmp_path, gitlab_api):
    checks = [check(f"data.not_null[{'c' * 40}{i}]", "fail") for i in range(3)]
    env = gitlab_env(gitlab_api.url, CI_JOB_URL="https://gitlab.example/" + "j" * 300)
    Run(tmp_path, env)(report(checks, model="m" * 300))
    assert all(len(s["description"]) <= FIELD_CHARS and len(s["name"]) <= FIELD_CHARS for s in gitlab_api.statuses)
    assert all("target_url" not in s for s in gitlab_api.statuses)
    assert gitlab_api.errors == []


def test_self_managed_api_url_and_a_url_encoded_project_id(tmp_path):
    from tests.contracts.stand_in import serve

    gen = serve("gitlab", prefix="/gitlab/api/v4")
    api = next(gen)
    try:
        env = gitlab_env(api.url, CI_PROJECT_ID="acme/models")
        Run(tmp_path, env)(report())
        assert api.errors == [] and len(api.statuses) == 2
        assert api.calls(STATUS)[0].path == f"/projects/acme%2Fmodels/statuses/{SHA}"
    finally:
        gen.close()


def test_abandon_fails_a_running_status(tmp_path, gitlab_api):
    r = Run(tmp_path, gitlab_env(gitlab_api.url))
    r.publisher.started("credit-risk")
    r.publisher.abandon()
    assert [s["state"] for s in gitlab_api.statuses] == ["running", "failed"]


def test_ci_info_and_detection(gitlab_api):
    env = gitlab_env(gitlab_api.url)
    pub = select_publisher("auto", env)
    assert isinstance(pub, GitLabPublisher)
    assert pub.ci_info() == {"platform": "gitlab", "url": JOB_URL,
                             "pipeline_url": "https://gitlab.example/acme/models/-/pipelines/9001",
                             "project": "acme/models", "job": "model-gates", "pipeline_id": 9001,
                             "ref": "feature/x", "sha": SHA, "merge_request": 17}


def test_a_bug_while_publishing_is_a_warning_not_a_crash(tmp_path, gitlab_api):
    broken = report()
    del broken["verdict"]
    warnings = Run(tmp_path, gitlab_env(gitlab_api.url)).publisher.publish(broken, tmp_path / "out")
    assert len(warnings) == 1 and warnings[0].startswith("publishing to GitLab failed: KeyError")


def test_a_note_longer_than_gitlabs_limit_is_shortened_with_a_pointer_to_the_artifacts(run, gitlab_api):
    rep = multibyte_report(1000, groups=14)
    assert len(render_markdown(rep)) > 1_000_000
    assert run(rep) == []  # the stand-in holds the body to the schema's maxLength of 1,000,000
    (note,) = gitlab_api.comments["17"]
    body = note["body"]
    assert len(body) <= 1_000_000 and body.startswith(marker("model-gates", "credit-risk") + "\n")
    assert "shortened to fit GitLab's note limit of 1,000,000 characters" in body
    assert f"`{run.root / 'model-gates-report'}/report.md`" in body and JOB_URL in body
    assert all(f"`{c['id']}`" in body for c in rep["checks"])  # every failing check is still listed


def test_a_multibyte_note_that_fits_is_sent_whole(run, gitlab_api):
    rep = multibyte_report(30)
    run(rep)
    (note,) = gitlab_api.comments["17"]
    assert note["body"] == marker("model-gates", "credit-risk") + "\n" + render_markdown(rep)


@pytest.mark.parametrize("value", ["\u00b2", "\u0662", "1" * 40, "-3", " ", "12a"])
def test_a_merge_request_iid_that_is_not_ascii_digits_is_no_merge_request(value):
    """str.isdigit() accepts '²' (int() then raises) and Arabic-Indic digits: neither is a GitLab id."""
    ctx = GitLabContext.from_env({"CI_MERGE_REQUEST_IID": value, "CI_PIPELINE_ID": value})
    assert ctx.merge_request_iid is None and ctx.pipeline_id is None


def test_an_ascii_merge_request_iid_is_read():
    assert GitLabContext.from_env({"CI_MERGE_REQUEST_IID": " 42 "}).merge_request_iid == 42
