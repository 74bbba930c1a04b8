"""Lineage helpers: who acted, the CI run's URL, the report digest the audit log keeps."""
from __future__ import annotations

import hashlib
import json

from gates.lineage import ci_url, current_actor, observed_metrics, report_digest, run_record

REPORT = {"schema_version": 1, "run": {"id": "r1", "git_sha": "abc", "ci": {}}, "verdict": "fail",
          "policy": {"mode": "enforce", "sha256": "p" * 64}, "model": {"name": "m", "candidate": {"sha256": "c"}},
          "summary": {"pass": 1, "fail": 1},
          "checks": [{"id": "a", "status": "pass", "blocking": True, "observed": 0.9},
                     {"id": "b", "status": "fail", "blocking": True, "observed": None},
                     {"id": "c", "status": "warn", "blocking": False, "observed": 3}],
          "waivers": [], "registration": {"registered": False}}


def test_ci_url_prefers_the_report_then_the_ci_variables():
    assert ci_url({"run": {"ci": {"url": "https://x/job/1", "pipeline_url": "https://x/p/1"}}}, env={}) == \
        "https://x/job/1"
    github = {"GITHUB_SERVER_URL": "https://gh.example", "GITHUB_REPOSITORY": "acme/m", "GITHUB_RUN_ID": "42"}
    assert ci_url(REPORT, env=github) == "https://gh.example/acme/m/actions/runs/42"
    job = "https://gl.example/acme/m/-/jobs/9"
    assert ci_url(REPORT, env={"CI_JOB_URL": job}) == job
    assert ci_url(REPORT, env={}) is None


def test_the_actor_is_the_ci_user_when_there_is_one():
    assert current_actor({"GITHUB_ACTOR": "octocat", "GITLAB_USER_LOGIN": "x"}) == "octocat"
    assert current_actor({"GITLAB_USER_LOGIN": "tanuki"}) == "tanuki"
    assert current_actor({"MODEL_GATES_ACTOR": "release-bot", "GITHUB_ACTOR": "octocat"}) == "release-bot"


def test_the_digest_covers_the_report_without_its_registration_block():
    body = {k: v for k, v in REPORT.items() if k != "registration"}
    expected = hashlib.sha256((json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()).hexdigest()
    assert report_digest(REPORT) == expected
    assert report_digest({**REPORT, "registration": {"registered": True, "version": 3}}) == expected


def test_the_run_record_lists_blocking_failures_and_observed_metrics():
    record = run_record(REPORT, not_registered="the verdict is fail")
    assert record["failing"] == ["b"] and record["not_registered"] == "the verdict is fail"
    assert record["checks"][2] == {"id": "c", "status": "warn", "blocking": False}
    assert observed_metrics(REPORT) == {"a": 0.9, "c": 3}
