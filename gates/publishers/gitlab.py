"""GitLab: commit status, sticky merge-request note, metrics report.

Everything comes from the job's predefined variables (``CI_*``); the API root is
``CI_API_V4_URL``, so self-managed instances work. Writing notes and statuses needs a project
(or personal) access token with the ``api`` scope, sent as ``PRIVATE-TOKEN``: the job's own
``CI_JOB_TOKEN`` is not allowed to write either.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gates.publishers.base import ApiPublisher
from gates.publishers.http import ApiClient, ApiError, RetryPolicy
from gates.publishers.limits import GITLAB_NOTE
from gates.publishers.metrics import write_metrics
from gates.publishers.sticky import comment_body, marker, upsert
from gates.publishers.sticky import shorten as _shorten
from gates.reporters._format import counts_line

FIELD_CHARS = 255
DEFAULT_TOKEN_VARIABLES = ("MODEL_GATES_GITLAB_TOKEN", "GITLAB_TOKEN")

MSG_NO_TOKEN = ("no GitLab token: set a project access token (scope api) in the CI/CD variable "
                "MODEL_GATES_GITLAB_TOKEN (or the variable named by MODEL_GATES_TOKEN_VARIABLE); "
                "no commit status or merge-request note (the reports are still written)")
MSG_JOB_TOKEN = ("the GitLab token given is CI_JOB_TOKEN, which cannot write merge-request notes or "
                 "commit statuses: set a project access token (scope api) in MODEL_GATES_GITLAB_TOKEN")
MSG_TOKEN_VARIABLE_EMPTY = ("the CI/CD variable {name} (MODEL_GATES_TOKEN_VARIABLE) is empty or unset: "
                            "no commit status or merge-request note (protected variables reach only "
                            "protected branches)")
MSG_NO_PROJECT = "CI_PROJECT_ID or CI_COMMIT_SHA is unknown: nothing published through the API"
MSG_STATUS = "could not publish the commit status: {error}"
MSG_NOTE = "could not publish the merge-request note: {error}"
MSG_METRICS = "could not write the metrics report ({path}): {error}"
MSG_UNEXPECTED = "publishing to GitLab failed: {error}"
MSG_ABANDONED = "model-gates stopped before reaching a verdict; see the job log"


@dataclass(frozen=True)
class GitLabContext:
    """The job as its predefined variables describe it."""

    api_url: str
    project_id: str
    sha: str
    ref: str
    token: str
    token_problem: str | None
    job_name: str
    job_url: str
    pipeline_id: int | None
    pipeline_url: str
    project_path: str
    merge_request_iid: int | None
    allow_failure: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitLabContext:
        token, problem = _token(env)
        server = (env.get("CI_SERVER_URL") or "https://gitlab.com").rstrip("/")
        return cls(
            api_url=(env.get("CI_API_V4_URL") or f"{server}/api/v4").rstrip("/"),
            project_id=env.get("CI_PROJECT_ID", ""),
            sha=env.get("CI_COMMIT_SHA", ""),
            ref=env.get("CI_COMMIT_REF_NAME", ""),
            token=token, token_problem=problem,
            job_name=env.get("CI_JOB_NAME", ""),
            job_url=env.get("CI_JOB_URL", ""),
            pipeline_id=_int(env.get("CI_PIPELINE_ID")),
            pipeline_url=env.get("CI_PIPELINE_URL", ""),
            project_path=env.get("CI_PROJECT_PATH", ""),
            merge_request_iid=_int(env.get("CI_MERGE_REQUEST_IID")),
            allow_failure=env.get("MODEL_GATES_ALLOW_FAILURE", "").strip().lower() in ("true", "1", "yes"),
        )

    @property
    def failed_state(self) -> str:
        """Return the state of a failed gate: ``failed`` blocks the pipeline even when the job may
        fail, so a job with ``allow_failure`` reports ``skipped`` (its description says it failed)."""
        return "skipped" if self.allow_failure else "failed"

    @property
    def project(self) -> str:
        return f"/projects/{quote(self.project_id, safe='')}"


def _token(env: Mapping[str, str]) -> tuple[str, str | None]:
    """Return the API token and, when it cannot work, why (CI_JOB_TOKEN, empty variable, none)."""
    named = env.get("MODEL_GATES_TOKEN_VARIABLE", "").strip().lstrip("$")
    if named == "CI_JOB_TOKEN":
        return "", MSG_JOB_TOKEN
    if named:
        token = env.get(named, "")
        if not token:
            return "", MSG_TOKEN_VARIABLE_EMPTY.format(name=named)
    else:
        token = next((env[v] for v in DEFAULT_TOKEN_VARIABLES if env.get(v)), "")
    if not token:
        return "", MSG_NO_TOKEN
    if token == env.get("CI_JOB_TOKEN"):
        return "", MSG_JOB_TOKEN
    return token, None


def _int(value: str | None) -> int | None:
    """Return a CI variable's id, or None unless it is 1-18 ASCII digits (str.isdigit takes '²', int() then fails)."""
    text = (value or "").strip()
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


class GitLabPublisher(ApiPublisher):
    """Publish a run to GitLab; every API problem becomes a warning, never an exception."""

    name = "gitlab"
    unexpected = MSG_UNEXPECTED

    def __init__(self, env: Mapping[str, str], *, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.ctx = GitLabContext.from_env(env)
        super().__init__(ApiClient(self.ctx.api_url, {"PRIVATE-TOKEN": self.ctx.token}, secrets=(self.ctx.token,),
                                   retry=retry or RetryPolicy.from_env(env), sleep=sleep))
        self._status_sent = False
        self._report_dir: Path | None = None

    def ci_info(self) -> dict[str, Any]:
        c = self.ctx
        info = {"platform": "gitlab", "url": c.job_url or None, "pipeline_url": c.pipeline_url or None,
                "project": c.project_path or None, "job": c.job_name or None, "pipeline_id": c.pipeline_id,
                "ref": c.ref or None, "sha": c.sha or None, "merge_request": c.merge_request_iid}
        return {k: v for k, v in info.items() if v is not None}

    def _open(self, model_name: str) -> list[str]:
        """Set a ``running`` commit status for the job."""
        return self._status("running", f"Gating {model_name}…")

    def _write_local(self, report: Mapping[str, Any], report_dir: Path) -> list[str]:
        """Write metrics.txt (GitLab's metrics report) beside the other reports."""
        self._report_dir = report_dir
        try:
            write_metrics(report, report_dir)
        except OSError as exc:
            return [MSG_METRICS.format(path=report_dir, error=exc)]
        return []

    def _conclude(self, report: Mapping[str, Any]) -> list[str]:
        """Set the final commit status, then update the sticky merge-request note."""
        shadow = (report.get("policy") or {}).get("mode") == "shadow"
        state = "success" if report["verdict"] == "pass" or shadow else self.ctx.failed_state
        warnings = self._status(state, _description(report, shadow, self.ctx.allow_failure))
        if self.ctx.merge_request_iid is not None:
            warnings += self._note(report)
        return warnings

    @property
    def status_name(self) -> str:
        return f"model-gates: {self._model}"

    def _api_problem(self) -> str | None:
        if self.ctx.token_problem:
            return self.ctx.token_problem
        if not (self.ctx.project_id and self.ctx.sha):
            return MSG_NO_PROJECT
        return None

    def _status(self, state: str, description: str) -> list[str]:
        body: dict[str, Any] = {"state": state, "name": self.status_name[:FIELD_CHARS],
                                "description": _shorten(description, FIELD_CHARS)}
        if self.ctx.job_url and len(self.ctx.job_url) <= FIELD_CHARS:
            body["target_url"] = self.ctx.job_url
        if self.ctx.pipeline_id is not None:
            body["pipeline_id"] = self.ctx.pipeline_id
        elif self.ctx.ref:
            body["ref"] = self.ctx.ref[:FIELD_CHARS]
        try:
            self._client.request("POST", f"{self.ctx.project}/statuses/{quote(self.ctx.sha, safe='')}", body=body)
        except ApiError as exc:
            return [MSG_STATUS.format(error=exc)]
        self._status_sent = True
        return []

    def _note(self, report: Mapping[str, Any]) -> list[str]:
        mark = marker(self.ctx.job_name, str(report["model"]["name"]))
        body = comment_body(report, mark, GITLAB_NOTE, self._where_whole())
        notes = f"{self.ctx.project}/merge_requests/{self.ctx.merge_request_iid}/notes"
        try:
            upsert(self._client.paginate(notes, {"per_page": 100, "sort": "asc", "order_by": "created_at"}),
                   mark, body,
                   create=lambda text: self._client.request("POST", notes, body={"body": text}),
                   update=lambda nid, text: self._client.request("PUT", f"{notes}/{nid}", body={"body": text}))
        except ApiError as exc:
            return [MSG_NOTE.format(error=exc)]
        return []

    def _where_whole(self) -> str:
        """Say where the whole report is, for the note that ends a shortened note."""
        folder = self._report_dir.as_posix() if self._report_dir is not None else "model-gates-report"
        where = f"the whole report is `{folder}/report.md` (with report.json) in the job's artifacts"
        return f"{where}: {self.ctx.job_url}" if self.ctx.job_url else where

    def abandon(self) -> None:
        """Fail the ``running`` status of a run that ended without a verdict; called at exit.

        Without this, an error after ``started`` would leave the pipeline waiting on a running status.
        """
        if self._finished or not self._status_sent:
            return
        self._client.retry = RetryPolicy(attempts=1, connect_timeout=3, read_timeout=5)
        self._status(self.ctx.failed_state, MSG_ABANDONED)


def _description(report: Mapping[str, Any], shadow: bool, allow_failure: bool) -> str:
    word = "passed" if report["verdict"] == "pass" else "failed"
    mode = " (shadow mode: not blocking)" if shadow else ""
    if word == "failed" and allow_failure and not shadow:
        mode = " (allowed to fail: not blocking)"
    return f"{word}{mode}: {counts_line(report.get('summary') or {})}"


