"""GitHubPublisher against a stand-in GitHub API that validates every body against GitHub's schemas."""
from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gates.publishers import select_publisher
from gates.publishers.github import (
    ANNOTATIONS_PER_REQUEST,
    MSG_NO_TOKEN,
    MSG_READ_ONLY,
    STATUS_DESCRIPTION_CHARS,
    GitHubPublisher,
)
from gates.publishers.github_workflow import COMMANDS_PER_LEVEL, STEP_SUMMARY_BYTES
from gates.publishers.http import RetryPolicy
from gates.publishers.limits import CHECK_RUN_TEXT, GITHUB_COMMENT
from gates.publishers.sticky import marker
from gates.reporters.markdown import render_markdown
from tests.contracts.stand_in import GITHUB_TOKEN, Fault, StandIn, serve
from tests.gates.publishers.reports import (
    LINE_DP_RATIO,
    LINE_REGRESSION,
    LINE_ROC_AUC_MAX_DROP,
    POLICY_YAML,
    check,
    many_failures,
    multibyte_report,
    report,
)

CHECK_RUNS = "POST /repos/{owner}/{repo}/check-runs"
CHECK_RUN = "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}"
STATUSES = "POST /repos/{owner}/{repo}/statuses/{sha}"
LIST = "GET /repos/{owner}/{repo}/issues/{issue_number}/comments"
CREATE = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
UPDATE = "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}"
HEAD_SHA = "1111111111111111111111111111111111111111"
MERGE_SHA = "2222222222222222222222222222222222222222"


def github_env(root: Path, api_url: str, *, pull: int | None = 42, **extra: str) -> dict[str, str]:
    """Return a GitHub Actions environment for a run in ``root`` (the workspace)."""
    event: dict = {"pull_request": {"number": pull, "head": {"sha": HEAD_SHA}}} if pull else {"ref": "refs/heads/main"}
    (root / "event.json").write_text(json.dumps(event))
    (root / "gates.yaml").write_text(POLICY_YAML)
    env = {"GITHUB_ACTIONS": "true", "GITHUB_API_URL": api_url, "GITHUB_SERVER_URL": "https://github.example",
           "GITHUB_REPOSITORY": "acme/models", "GITHUB_SHA": MERGE_SHA, "GITHUB_EVENT_PATH": str(root / "event.json"),
           "GITHUB_EVENT_NAME": "pull_request" if pull else "push", "GITHUB_WORKFLOW": "model gates",
           "GITHUB_JOB": "gate", "GITHUB_RUN_ID": "777", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_REF": "refs/pull/42/merge",
           "GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_WORKSPACE": str(root), "GITHUB_OUTPUT": str(root / "output"),
           "GITHUB_STEP_SUMMARY": str(root / "summary.md")}
    return {**env, **extra}


class Run:
    """One publisher run in a workspace: stdout captured, sleeps recorded."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.stdout = io.StringIO()
        self.sleeps: list[float] = []
        self.publisher = GitHubPublisher(env, sleep=self.sleeps.append, stdout=self.stdout, cwd=root,
                                         retry=RetryPolicy(attempts=3))

    def __call__(self, rep: dict, *, model: str = "credit-risk") -> list[str]:
        warnings = self.publisher.started(model)
        warnings += self.publisher.publish(rep, self.root / "model-gates-report")
        return warnings


@pytest.fixture
def run(tmp_path: Path, github_api: StandIn) -> Iterator[Run]:
    yield Run(tmp_path, github_env(tmp_path, github_api.url))
    assert github_api.errors == []


def outputs(path: Path) -> dict[str, str]:
    """Parse a $GITHUB_OUTPUT file written in the NAME<<DELIMITER form."""
    out, lines = {}, path.read_text().splitlines()
    i = 0
    while i < len(lines):
        name, _, delimiter = lines[i].partition("<<")
        end = lines.index(delimiter, i + 1)
        out[name] = "\n".join(lines[i + 1:end])
        i = end + 1
    return out


def test_a_failing_run_shows_everywhere(run, github_api):
    assert run(report()) == []
    (created,) = github_api.calls(CHECK_RUNS)
    assert created.body["status"] == "in_progress" and created.body["head_sha"] == HEAD_SHA  # the PR head
    assert created.body["details_url"] == "https://github.example/acme/models/actions/runs/777"
    (done,) = github_api.calls(CHECK_RUN)
    assert done.body["conclusion"] == "failure" and done.body["output"]["title"].startswith("credit-risk failed")
    (run_id,) = github_api.check_runs
    notes = github_api.annotations[run_id]
    levels = {(a["title"].split(":")[0], a["annotation_level"], a["path"], a["start_line"]) for a in notes}
    assert levels == {("regression.roc_auc.max_drop", "failure", "gates.yaml", LINE_ROC_AUC_MAX_DROP),
                      ("fairness.demographic_parity_ratio.min[sex]", "warning", "gates.yaml", LINE_DP_RATIO)}
    (comment,) = github_api.comments["42"]
    assert comment["body"].startswith(marker("model gates", "credit-risk"))
    assert "`regression.roc_auc.max_drop`" in comment["body"]
    assert outputs(run.root / "output") == {
        "verdict": "fail", "report-path": str((run.root / "model-gates-report" / "report.json").resolve()),
        "report-dir": str((run.root / "model-gates-report").resolve()), "model": "credit-risk",
        "registered-version": ""}
    assert "model-gates: `credit-risk` failed" in (run.root / "summary.md").read_text()
    assert f"::error file=gates.yaml,line={LINE_ROC_AUC_MAX_DROP},title=regression.roc_auc.max_drop%3A FAIL::" \
        in run.stdout.getvalue()
    assert "::warning file=gates.yaml" in run.stdout.getvalue()


def test_a_second_run_updates_the_same_comment(tmp_path, github_api):
    github_api.add_comment("42", "a reviewer's comment")
    env = github_env(tmp_path, github_api.url)
    Run(tmp_path, env)(report())
    Run(tmp_path, env)(report([check("regression.roc_auc.max_drop", "pass")], registered_version=4))
    bodies = [c["body"] for c in github_api.comments["42"]]
    assert len(bodies) == 2 and bodies[0] == "a reviewer's comment"
    assert "passed" in bodies[1].splitlines()[1] and "Registered** as version 4" in bodies[1]
    assert len(github_api.calls(CREATE)) == 1 and len(github_api.calls(UPDATE)) == 1
    assert outputs(tmp_path / "output")["registered-version"] == "4"
    assert github_api.errors == []


def test_an_unchanged_comment_is_not_rewritten(tmp_path, github_api):
    env = github_env(tmp_path, github_api.url)
    Run(tmp_path, env)(report())
    Run(tmp_path, env)(report())
    assert len(github_api.calls(CREATE)) == 1 and github_api.calls(UPDATE) == []


def test_each_model_and_workflow_has_its_own_comment(tmp_path, github_api):
    env = github_env(tmp_path, github_api.url)
    Run(tmp_path, env)(report(model="credit-risk"), model="credit-risk")
    Run(tmp_path, env)(report(model="churn"), model="churn")
    Run(tmp_path, {**env, "GITHUB_WORKFLOW": "nightly"})(report(model="churn"), model="churn")
    assert len(github_api.comments["42"]) == 3 and github_api.calls(UPDATE) == []


def test_the_marked_comment_is_found_on_a_later_page(tmp_path, github_api):
    env = github_env(tmp_path, github_api.url)
    for i in range(150):
        github_api.add_comment("42", f"chatter {i}")
    Run(tmp_path, env)(report())
    for i in range(150):
        github_api.add_comment("42", f"more chatter {i}")
    Run(tmp_path, env)(report([check("regression.roc_auc.max_drop", "pass")]))
    assert len(github_api.calls(CREATE)) == 1 and len(github_api.calls(UPDATE)) == 1
    assert all(int(r.query["per_page"]) <= 100 for r in github_api.calls(LIST) if "per_page" in r.query)
    assert github_api.errors == []


def test_annotations_are_sent_fifty_per_request(run, github_api):
    run(many_failures(123))
    patches = github_api.calls(CHECK_RUN)
    sizes = [len(p.body["output"].get("annotations", [])) for p in patches]
    assert sizes == [ANNOTATIONS_PER_REQUEST, ANNOTATIONS_PER_REQUEST, 23]
    (run_id,) = github_api.check_runs
    assert [a["title"] for a in github_api.annotations[run_id]] == \
        [f"regression.roc_auc.min[slice={i}]: FAIL" for i in range(123)]
    assert github_api.check_runs[run_id]["conclusion"] == "failure"


def test_without_check_permission_a_commit_status_is_used(run, github_api):
    github_api.deny(CHECK_RUNS, 403, "You must authenticate via a GitHub App.")
    assert run(report()) == []
    states = [(s["state"], s["sha"], s["context"]) for s in github_api.statuses]
    assert states == [("pending", HEAD_SHA, "model-gates: credit-risk"), ("failure", HEAD_SHA, "model-gates: credit-risk")]
    final = github_api.statuses[-1]
    assert len(final["description"]) <= STATUS_DESCRIPTION_CHARS
    assert final["target_url"] == "https://github.example/acme/models/actions/runs/777"
    assert len(github_api.comments["42"]) == 1


def test_a_read_only_token_gives_one_warning_and_no_exception(run, github_api):
    for endpoint in (CHECK_RUNS, STATUSES, CREATE, LIST):
        github_api.deny(endpoint)
    warnings = run(report())
    assert len(warnings) == 1 and warnings[0].startswith(MSG_READ_ONLY.split("{")[0].format())
    assert "forks" in warnings[0]
    assert github_api.calls(CREATE) == [] and github_api.calls(LIST) == []
    assert outputs(run.root / "output")["verdict"] == "fail"  # what needs no token still happens


def test_without_a_token_only_files_and_commands_are_written(tmp_path, github_api):
    env = github_env(tmp_path, github_api.url)
    del env["GITHUB_TOKEN"]
    r = Run(tmp_path, env)
    assert r(report()) == [MSG_NO_TOKEN]
    assert github_api.requests == []
    assert outputs(tmp_path / "output")["verdict"] == "fail"
    assert "::error" in r.stdout.getvalue()


def test_transient_failures_are_retried_and_then_succeed(run, github_api):
    github_api.fail(CHECK_RUNS, Fault(502))
    github_api.fail(CHECK_RUN, Fault(429, {"Retry-After": "3"}))
    github_api.fail(LIST, Fault(503))
    github_api.fail(CREATE, Fault(500), Fault(502))
    assert run(report()) == []
    assert len(run.sleeps) == 5 and 3.0 in run.sleeps
    assert len(github_api.comments["42"]) == 1 and github_api.check_runs[1001]["conclusion"] == "failure"


def test_persistent_failure_is_a_warning_never_an_exception(run, github_api):
    for endpoint in (CHECK_RUNS, CHECK_RUN, LIST, CREATE):
        github_api.fail(endpoint, *[Fault(502, body={"message": f"bad gateway {GITHUB_TOKEN}"})] * 20)
    warnings = run(report())
    assert [w.split(":")[0] for w in warnings] == ["could not publish the check run",  # opening it
                                                   "could not publish the check run",  # completing it
                                                   "could not publish the pull-request comment"]
    assert all("gave up after 3 attempts" in w for w in warnings)
    assert GITHUB_TOKEN not in "".join(warnings) + run.stdout.getvalue()


def test_github_enterprise_api_url_is_honoured(tmp_path):
    gen = serve("github", prefix="/api/v3")
    api = next(gen)
    try:
        Run(tmp_path, github_env(tmp_path, api.url))(report())
        assert {r.endpoint for r in api.requests} >= {CHECK_RUNS, CHECK_RUN, LIST, CREATE}
        assert api.errors == []
    finally:
        gen.close()


def test_shadow_mode_concludes_neutral(run, github_api):
    run(report(mode="shadow"))
    assert github_api.check_runs[1001]["conclusion"] == "neutral"


def test_a_push_has_no_comment_and_uses_the_pushed_commit(tmp_path, github_api):
    r = Run(tmp_path, github_env(tmp_path, github_api.url, pull=None))
    r(report([check("regression.accuracy.min", "pass")]))
    assert github_api.check_runs[1001]["head_sha"] == MERGE_SHA
    assert github_api.check_runs[1001]["conclusion"] == "success"
    assert github_api.calls(LIST) == [] and github_api.calls(CREATE) == []
    assert r.publisher.ci_info() == {
        "platform": "github", "url": "https://github.example/acme/models/actions/runs/777",
        "repository": "acme/models", "workflow": "model gates", "job": "gate", "run_id": "777",
        "run_attempt": "1", "event": "push", "ref": "refs/pull/42/merge", "sha": MERGE_SHA}


def test_comments_can_be_turned_off_and_the_check_renamed(tmp_path, github_api):
    env = github_env(tmp_path, github_api.url, MODEL_GATES_COMMENT="false", MODEL_GATES_CHECK_NAME="gate / credit")
    Run(tmp_path, env)(report())
    assert github_api.calls(LIST) == [] and github_api.check_runs[1001]["name"] == "gate / credit"


def test_workflow_commands_are_escaped_and_capped(tmp_path, github_api):
    checks = [check(f"regression.acc.min[s={i}]", "fail", message=f"100% bad,\nline {i}") for i in range(25)]
    r = Run(tmp_path, github_env(tmp_path, github_api.url))
    r(report(checks))
    lines = [ln for ln in r.stdout.getvalue().splitlines() if ln.startswith("::error")]
    assert len(lines) == COMMANDS_PER_LEVEL
    assert lines[0].startswith(f"::error file=gates.yaml,line={LINE_REGRESSION},title=regression.acc.min[s=0]%3A FAIL::100%25 bad,%0Aline 0")
    assert lines[-1] == "::error::…and 16 more failed checks (see the job summary or report.json)"


def test_a_huge_report_keeps_the_summary_and_comment_within_limits(run, github_api):
    checks = [check(f"regression.m{i}.min", "fail", message="x" * 300) for i in range(4000)]
    run(report(checks))
    size = (run.root / "summary.md").stat().st_size
    assert 0 < size <= STEP_SUMMARY_BYTES
    assert len(github_api.comments["42"][0]["body"]) <= 65536
    assert len(github_api.check_runs[1001]["output"]["summary"].encode("utf-8")) <= 65535


def test_a_full_step_summary_is_left_alone(run):
    (run.root / "summary.md").write_bytes(b"x" * STEP_SUMMARY_BYTES)
    assert run(report()) == []
    assert (run.root / "summary.md").stat().st_size == STEP_SUMMARY_BYTES


def test_an_unwritable_summary_is_a_warning(tmp_path, github_api):
    env = github_env(tmp_path, github_api.url, GITHUB_STEP_SUMMARY=str(tmp_path))  # a folder
    warnings = Run(tmp_path, env)(report())
    assert len(warnings) == 1 and warnings[0].startswith("could not write the job summary")


def test_abandon_closes_a_check_run_left_in_progress(tmp_path, github_api):
    r = Run(tmp_path, github_env(tmp_path, github_api.url))
    r.publisher.started("credit-risk")
    r.publisher.abandon()
    assert github_api.check_runs[1001]["conclusion"] == "cancelled"
    r.publisher.publish(report(), tmp_path / "out")
    n = len(github_api.requests)
    r.publisher.abandon()  # after a verdict, nothing more
    assert len(github_api.requests) == n


def test_select_publisher_detects_github_actions(tmp_path, github_api):
    env = github_env(tmp_path, github_api.url)
    assert isinstance(select_publisher("auto", env), GitHubPublisher)
    assert select_publisher("none", env) is None
    assert re.fullmatch(r"<!-- model-gates:model gates:credit-risk -->", marker("model gates", "credit-risk"))


def test_an_unexpected_response_is_a_warning(tmp_path, github_api):
    github_api.fail(CHECK_RUNS, Fault(201, body={"unexpected": True}), Fault(200, body=["not", "an", "object"]))
    warnings = Run(tmp_path, github_env(tmp_path, github_api.url))(report())
    assert [w.split(":")[0] for w in warnings] == ["could not publish the check run"] * 2
    assert "without an id" in warnings[0]


def test_a_bug_while_publishing_is_a_warning_not_a_crash(tmp_path, github_api):
    r = Run(tmp_path, github_env(tmp_path, github_api.url))
    broken = report()
    del broken["checks"][0]["status"]  # not a valid report: rendering it fails
    warnings = r.publisher.publish(broken, tmp_path / "out")
    assert len(warnings) == 1 and warnings[0].startswith("publishing to GitHub failed: KeyError")


# -- byte-exact limits, with reports full of multi-byte text ---------------------------------------

RUN_URL = "https://github.example/acme/models/actions/runs/777"
CUT = "shortened to fit GitHub's check-run limit of 65,535 bytes"


def test_a_report_longer_in_bytes_than_in_characters_is_shortened_by_bytes(run, github_api):
    """The case counting characters gets wrong: under 65,535 characters, over 65,535 bytes."""
    n = next(n for n in range(10, 300, 5)
             if len(render_markdown(multibyte_report(n))) <= 65535 < len(render_markdown(multibyte_report(n)).encode()))
    rep = multibyte_report(n)
    assert run(rep) == []  # and the stand-in, counting bytes as GitHub does, accepted every request
    output = github_api.check_runs[1001]["output"]
    summary, text = output["summary"], output["text"]
    assert len(summary.encode("utf-8")) <= 65535 and len(text.encode("utf-8")) <= 65535
    assert CUT in summary and "`model-gates-report/report.md`" in summary and RUN_URL in summary
    assert all(f"`{c['id']}`" in summary for c in rep["checks"])  # every failing row is kept
    assert summary.count("<details>") == summary.count("</details>")
    assert text.startswith("### Every check") and all(f"`{c['id']}`" in text for c in rep["checks"])


def test_a_report_whose_failures_alone_overflow_is_cut_on_a_character_boundary(run, github_api):
    rep = multibyte_report(900, groups=1)
    assert len(render_markdown(rep, max_chars=65535).encode("utf-8")) > 65535
    run(rep)
    output = github_api.check_runs[1001]["output"]
    for field in ("summary", "text"):
        value = output[field]
        assert len(value.encode("utf-8")) <= 65535 and CUT in value and value.endswith(RUN_URL + "._\n")
        assert "\ufffd" not in value  # nothing was cut inside a UTF-8 sequence
    ids = [c["id"] for c in rep["checks"]]
    shown = [i for i in ids if f"`{i}`" in output["summary"]]
    assert shown == ids[:len(shown)] and 50 < len(shown) < len(ids)  # worst first, then cut
    assert len(github_api.annotations[1001]) == 500 and github_api.errors == []


def test_an_annotation_message_is_cut_to_64_kb_of_utf8(run, github_api):
    rep = report([check("regression.roc_auc.min", "fail", message="𝔸" * 30000)])  # 120,000 bytes
    run(rep)
    (note,) = github_api.annotations[1001]
    assert 60000 < len(note["message"].encode("utf-8")) <= 65535 and note["message"].endswith("…")
    assert set(note["message"][:-1]) == {"𝔸"}


def test_a_comment_full_of_multibyte_text_keeps_githubs_character_limit(run, github_api):
    rep = multibyte_report(120)
    assert len(render_markdown(rep)) > GITHUB_COMMENT.size
    run(rep)
    (comment,) = github_api.comments["42"]
    body = comment["body"]
    assert len(body) <= 65536 and body.startswith(marker("model gates", "credit-risk") + "\n")
    assert "shortened to fit GitHub's comment limit of 65,536 characters" in body and RUN_URL in body


def test_a_report_that_fits_is_sent_whole_without_a_note(run, github_api):
    rep = multibyte_report(5)
    run(rep)
    output = github_api.check_runs[1001]["output"]
    assert output["summary"] == render_markdown(rep) and "text" not in output
    assert "shortened" not in github_api.comments["42"][0]["body"]
    assert CHECK_RUN_TEXT.fits(output["summary"])


# -- the check run can be turned off ----------------------------------------------------------------

@pytest.mark.parametrize("value", ["false", "False", "0", "no", "off"])
def test_check_run_off_keeps_status_comment_and_summary(tmp_path, github_api, value):
    r = Run(tmp_path, github_env(tmp_path, github_api.url, MODEL_GATES_CHECK_RUN=value))
    assert r(report()) == []
    assert github_api.calls(CHECK_RUNS) == [] and github_api.calls(CHECK_RUN) == []
    assert [(s["state"], s["sha"], s["context"]) for s in github_api.statuses] == [
        ("pending", HEAD_SHA, "model-gates: credit-risk"), ("failure", HEAD_SHA, "model-gates: credit-risk")]
    assert len(github_api.comments["42"]) == 1
    assert "model-gates: `credit-risk` failed" in (tmp_path / "summary.md").read_text()
    assert "::error file=gates.yaml" in r.stdout.getvalue()  # the job's own annotations remain
    assert outputs(tmp_path / "output")["verdict"] == "fail"
    assert github_api.errors == []


def test_check_run_on_by_default_and_when_asked(tmp_path, github_api):
    for value in (None, "true", "yes", ""):
        extra = {} if value is None else {"MODEL_GATES_CHECK_RUN": value}
        Run(tmp_path, github_env(tmp_path, github_api.url, **extra))(report())
    assert len(github_api.check_runs) == 4 and github_api.statuses == []


def test_check_run_off_closes_the_status_of_an_abandoned_run(tmp_path, github_api):
    r = Run(tmp_path, github_env(tmp_path, github_api.url, MODEL_GATES_CHECK_RUN="false"))
    r.publisher.started("credit-risk")
    r.publisher.abandon()
    assert [s["state"] for s in github_api.statuses] == ["pending", "error"] and github_api.check_runs == {}


def test_text_utf8_cannot_encode_is_replaced_not_fatal(tmp_path, github_api):
    """A lone surrogate (YAML's "\\ud800" escape) in a check id or message: the log, the summary and
    the API still get everything, with U+FFFD in its place."""
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")  # a real log stream: strict UTF-8
    env = github_env(tmp_path, github_api.url)
    publisher = GitHubPublisher(env, sleep=lambda s: None, stdout=stdout, cwd=tmp_path, retry=RetryPolicy(attempts=2))
    rep = report([check("regression.m.min[s=\ud800]", "fail", message="bad \udc80 value")])
    assert publisher.started("credit-risk") + publisher.publish(rep, tmp_path / "model-gates-report") == []
    log = raw.getvalue().decode("utf-8")
    assert "::error file=gates.yaml" in log and "bad \ufffd value" in log
    assert "\ufffd" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    (note,) = github_api.annotations[1001]
    assert note["message"].startswith("bad \ufffd value") and len(github_api.comments["42"]) == 1
    assert github_api.errors == []
