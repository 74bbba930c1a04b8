"""GitHub: check run (or commit status), sticky pull-request comment, job summary, step outputs.

Everything comes from the workflow's own environment (``GITHUB_*``, the event payload at
``GITHUB_EVENT_PATH``); the API root is ``GITHUB_API_URL``, so GitHub Enterprise Server works.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from gates.publishers import findings as find
from gates.publishers import github_workflow as wf
from gates.publishers import limits
from gates.publishers.base import ApiPublisher
from gates.publishers.http import ApiClient, ApiError, RetryPolicy, response_id
from gates.publishers.limits import ANNOTATIONS_PER_REQUEST, CHECK_RUN_TEXT, GITHUB_COMMENT
from gates.publishers.sticky import comment_body, marker, upsert
from gates.publishers.sticky import shorten as _shorten
from gates.reporters._format import STATUS_ICON, STATUS_WORD, counts_line, num, sort_checks, threshold
from gates.reporters.markdown import render_markdown

MAX_ANNOTATIONS = 500
STATUS_DESCRIPTION_CHARS = 140
ANNOTATION_TITLE_CHARS = 255
#: environment values that turn a default-on switch off
OFF = ("false", "0", "no", "off")

MSG_NO_TOKEN = ("GITHUB_TOKEN is not set: no check run, commit status or pull-request comment "
                "(the job summary and step outputs are still written)")
MSG_NO_REPOSITORY = "GITHUB_REPOSITORY or the commit is unknown: nothing published through the API"
MSG_READ_ONLY = ("the token may not write to {repo} (the job needs permissions checks, statuses and "
                 "pull-requests: write; pull requests from forks always get a read-only token): {error}")
MSG_CHECK_RUN = "could not publish the check run: {error}"
MSG_STATUS = "could not publish the commit status: {error}"
MSG_COMMENT = "could not publish the pull-request comment: {error}"
MSG_FILE = "could not write {what} ({path}): {error}"
MSG_UNEXPECTED = "publishing to GitHub failed: {error}"
MSG_ABANDONED = "model-gates stopped before reaching a verdict; see the job log"


@dataclass(frozen=True)
class GitHubContext:
    """The workflow run as its environment describes it."""

    api_url: str
    server_url: str
    repository: str
    sha: str
    token: str
    workflow: str
    job: str
    run_id: str
    run_attempt: str
    event_name: str
    ref: str
    pull_number: int | None
    workspace: Path | None
    output_file: Path | None
    summary_file: Path | None
    comment: bool
    check_run: bool
    check_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubContext:
        """Read the run from ``env``; on pull requests the commit is the PR head, not the merge commit."""
        event = _event(env.get("GITHUB_EVENT_PATH"))
        pr = event.get("pull_request") or {}
        number = pr.get("number")
        return cls(
            api_url=(env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
            server_url=(env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
            repository=env.get("GITHUB_REPOSITORY", ""),
            sha=(pr.get("head") or {}).get("sha") or env.get("GITHUB_SHA", ""),
            token=env.get("MODEL_GATES_GITHUB_TOKEN") or env.get("GITHUB_TOKEN", ""),
            workflow=env.get("GITHUB_WORKFLOW", ""),
            job=env.get("GITHUB_JOB", ""),
            run_id=env.get("GITHUB_RUN_ID", ""),
            run_attempt=env.get("GITHUB_RUN_ATTEMPT", ""),
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            ref=env.get("GITHUB_REF", ""),
            pull_number=number if isinstance(number, int) else None,
            workspace=Path(env["GITHUB_WORKSPACE"]) if env.get("GITHUB_WORKSPACE") else None,
            output_file=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
            summary_file=Path(env["GITHUB_STEP_SUMMARY"]) if env.get("GITHUB_STEP_SUMMARY") else None,
            comment=env.get("MODEL_GATES_COMMENT", "true").strip().lower() not in OFF,
            check_run=env.get("MODEL_GATES_CHECK_RUN", "true").strip().lower() not in OFF,
            check_name=env.get("MODEL_GATES_CHECK_NAME", "").strip(),
        )

    @property
    def run_url(self) -> str | None:
        if not (self.repository and self.run_id):
            return None
        attempt = f"/attempts/{self.run_attempt}" if self.run_attempt and self.run_attempt != "1" else ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}{attempt}"

    @property
    def repo_path(self) -> str:
        owner, _, name = self.repository.partition("/")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


def _event(path: str | None) -> dict[str, Any]:
    """Return the webhook payload of the triggering event ({} when absent or unreadable)."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class GitHubPublisher(ApiPublisher):
    """Publish a run to GitHub; every API problem becomes a warning, never an exception."""

    name = "github"
    unexpected = MSG_UNEXPECTED

    def __init__(self, env: Mapping[str, str], *, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, stdout: TextIO | None = None,
                 cwd: Path | None = None) -> None:
        self.ctx = GitHubContext.from_env(env)
        self._env = dict(env)
        self._cwd = cwd or Path.cwd()
        self._out = stdout
        super().__init__(ApiClient(
            self.ctx.api_url, {"Authorization": f"Bearer {self.ctx.token}",
                               "Accept": "application/vnd.github+json",
                               "X-GitHub-Api-Version": "2022-11-28"},
            secrets=(self.ctx.token,), retry=retry or RetryPolicy.from_env(env), sleep=sleep))
        self._check_run_id: int | None = None
        #: a commit status instead of a check run: asked for (MODEL_GATES_CHECK_RUN=false) or forced
        #: by a token that may not create check runs
        self._use_status = not self.ctx.check_run
        self._read_only = False
        self._items: list[find.Finding] = []
        self._report_dir: Path | None = None

    # -- Publisher protocol -------------------------------------------------------------------
    def ci_info(self) -> dict[str, Any]:
        c = self.ctx
        info = {"platform": "github", "url": c.run_url, "repository": c.repository or None,
                "workflow": c.workflow or None, "job": c.job or None, "run_id": c.run_id or None,
                "run_attempt": c.run_attempt or None, "event": c.event_name or None, "ref": c.ref or None,
                "sha": c.sha or None, "pull_request": c.pull_number}
        return {k: v for k, v in info.items() if v is not None}

    def _open(self, model_name: str) -> list[str]:
        """Open an in-progress check run (or a pending commit status when checks are off or not allowed)."""
        if self._use_status:
            return self._status("pending", f"Gating {model_name}…")
        try:
            created = self._client.request("POST", f"{self.ctx.repo_path}/check-runs", body={
                "name": self.check_name, "head_sha": self.ctx.sha, "status": "in_progress",
                "started_at": _now(), **self._links()})
            self._check_run_id = response_id(created)
            return []
        except ApiError as exc:
            if exc.status in (403, 404):
                self._use_status = True
                return self._status("pending", f"Gating {model_name}…")
            return [MSG_CHECK_RUN.format(error=exc)]

    def _write_local(self, report: Mapping[str, Any], report_dir: Path) -> list[str]:
        """Write step outputs and the job summary, and print workflow commands for failed checks."""
        self._report_dir = report_dir
        warnings = self._write_files(report, report_dir)
        self._items = find.findings(report, find.config_path(report, self._env, self._cwd), self.ctx.workspace)
        wf.print_commands(self._items, self._out or sys.stdout)
        return warnings

    def _conclude(self, report: Mapping[str, Any]) -> list[str]:
        """Complete the check run (or set the status), then update the sticky comment."""
        warnings = self._conclude_check(report, self._items)
        if self.ctx.comment and self.ctx.pull_number is not None:
            warnings += self._comment(report)
        return warnings

    # -- pieces ---------------------------------------------------------------------------------
    @property
    def check_name(self) -> str:
        return self.ctx.check_name or f"model-gates: {self._model}"

    def _api_problem(self) -> str | None:
        if not self.ctx.token:
            return MSG_NO_TOKEN
        if not (self.ctx.repository and self.ctx.sha):
            return MSG_NO_REPOSITORY
        return None

    def _links(self) -> dict[str, str]:
        out = {"external_id": self.ctx.run_id} if self.ctx.run_id else {}
        if self.ctx.run_url:
            out["details_url"] = self.ctx.run_url
        return out

    def _write_files(self, report: Mapping[str, Any], report_dir: Path) -> list[str]:
        warnings = []
        if self.ctx.output_file is not None:
            try:
                wf.write_outputs(self.ctx.output_file, wf.outputs(report, report_dir))
            except OSError as exc:
                warnings.append(MSG_FILE.format(what="step outputs", path=self.ctx.output_file, error=exc))
        if self.ctx.summary_file is not None:
            try:
                wf.write_step_summary(self.ctx.summary_file, report)
            except OSError as exc:
                warnings.append(MSG_FILE.format(what="the job summary", path=self.ctx.summary_file, error=exc))
        return warnings

    def _conclude_check(self, report: Mapping[str, Any], items: Sequence[find.Finding]) -> list[str]:
        if self._use_status:
            return self._status(*_status_of(report))
        try:
            self._complete_check_run(report, items)
            return []
        except ApiError as exc:
            if exc.status in (403, 404) and self._check_run_id is None:
                self._use_status = True
                return self._status(*_status_of(report))
            return [self._api_warning(MSG_CHECK_RUN, exc)]

    def _complete_check_run(self, report: Mapping[str, Any], items: Sequence[find.Finding]) -> None:
        """Complete the check run; annotations beyond the first 50 follow in further PATCHes."""
        notes = [_annotation(f) for f in items[:MAX_ANNOTATIONS]]
        batches = [notes[i:i + ANNOTATIONS_PER_REQUEST] for i in range(0, len(notes), ANNOTATIONS_PER_REQUEST)]
        output = self._check_output(report)
        first = {"status": "completed", "conclusion": _conclusion(report), "completed_at": _now(),
                 "output": {**output, "annotations": batches[0]} if batches else output}
        if self._check_run_id is None:
            created = self._client.request("POST", f"{self.ctx.repo_path}/check-runs", body={
                "name": self.check_name, "head_sha": self.ctx.sha, **self._links(), **first})
            self._check_run_id = response_id(created)
        else:
            self._client.request("PATCH", f"{self.ctx.repo_path}/check-runs/{self._check_run_id}", body=first)
        for batch in batches[1:]:
            self._client.request("PATCH", f"{self.ctx.repo_path}/check-runs/{self._check_run_id}",
                                 body={"output": {**output, "annotations": batch}})

    def _check_output(self, report: Mapping[str, Any]) -> dict[str, str]:
        """Return the check run's title, summary (the Markdown report) and, when the summary had to be
        shortened, a text listing every check; both within GitHub's 65,535 bytes."""
        where = self._where_whole()
        summary = limits.fit(lambda chars: render_markdown(report, max_chars=chars), CHECK_RUN_TEXT, where)
        output = {"title": _title(report), "summary": summary}
        if summary.endswith(limits.cut_note(CHECK_RUN_TEXT, where)):
            output["text"] = limits.cut(check_list(report), CHECK_RUN_TEXT, where)
        return output

    def _where_whole(self) -> str:
        """Say where the whole report is, for the note that ends a shortened text."""
        folder = _display_dir(self._report_dir, self.ctx.workspace)
        where = (f"the whole report is `{folder}/report.md` (with report.json), which the model-gates action "
                 f"uploads as the run's artifact")
        return f"{where}: {self.ctx.run_url}" if self.ctx.run_url else where

    def _status(self, state: str, description: str) -> list[str]:
        if self._read_only:
            return []
        body: dict[str, Any] = {"state": state, "context": self.check_name,
                                "description": _shorten(description, STATUS_DESCRIPTION_CHARS)}
        if self.ctx.run_url:
            body["target_url"] = self.ctx.run_url
        try:
            self._client.request("POST", f"{self.ctx.repo_path}/statuses/{self.ctx.sha}", body=body)
        except ApiError as exc:
            return [self._api_warning(MSG_STATUS, exc)]
        return []

    def _comment(self, report: Mapping[str, Any]) -> list[str]:
        if self._read_only:
            return []
        mark = marker(self.ctx.workflow, str(report["model"]["name"]))
        body = comment_body(report, mark, GITHUB_COMMENT, self._where_whole())
        issue = f"{self.ctx.repo_path}/issues/{self.ctx.pull_number}/comments"
        try:
            upsert(self._client.paginate(issue, {"per_page": 100}), mark, body,
                   create=lambda text: self._client.request("POST", issue, body={"body": text}),
                   update=lambda cid, text: self._client.request(
                       "PATCH", f"{self.ctx.repo_path}/issues/comments/{cid}", body={"body": text}))
        except ApiError as exc:
            return [self._api_warning(MSG_COMMENT, exc)]
        return []

    def _api_warning(self, template: str, exc: ApiError) -> str:
        """Word a failed call; a 403 marks the token read-only so later writes are not attempted."""
        if exc.status == 403 and "rate limit" not in str(exc).lower():
            self._read_only = True
            return MSG_READ_ONLY.format(repo=self.ctx.repository, error=exc)
        return template.format(error=exc)

    def abandon(self) -> None:
        """Close the check run (or status) of a run that ended without a verdict; called at exit.

        Without this, an error after ``started`` would leave a check spinning "in progress" forever.
        """
        if self._finished:
            return
        self._client.retry = RetryPolicy(attempts=1, connect_timeout=3, read_timeout=5)
        try:
            if self._check_run_id is not None:
                self._client.request("PATCH", f"{self.ctx.repo_path}/check-runs/{self._check_run_id}", body={
                    "status": "completed", "conclusion": "cancelled", "completed_at": _now(),
                    "output": {"title": MSG_ABANDONED, "summary": MSG_ABANDONED}})
            elif self._use_status:
                self._status("error", MSG_ABANDONED)
        except ApiError:
            pass


def _conclusion(report: Mapping[str, Any]) -> str:
    if report["verdict"] == "pass":
        return "success"
    return "neutral" if _is_shadow(report) else "failure"


def _status_of(report: Mapping[str, Any]) -> tuple[str, str]:
    state = {"success": "success", "neutral": "success", "failure": "failure"}[_conclusion(report)]
    return state, _title(report)


def _is_shadow(report: Mapping[str, Any]) -> bool:
    return (report.get("policy") or {}).get("mode") == "shadow"


def _title(report: Mapping[str, Any]) -> str:
    word = "passed" if report["verdict"] == "pass" else "failed"
    shadow = " (shadow mode)" if _is_shadow(report) else ""
    return f"{report['model']['name']} {word}{shadow}: {counts_line(report.get('summary') or {})}"


def _annotation(f: find.Finding) -> dict[str, Any]:
    return {"path": f.path, "start_line": f.line, "end_line": f.line, "annotation_level": f.level,
            "title": _shorten(limits.encodable(f.title), ANNOTATION_TITLE_CHARS),
            "message": limits.shorten(f.message, limits.ANNOTATION_MESSAGE)}


def check_list(report: Mapping[str, Any]) -> str:
    """Return every check on one line each, worst first: the check run's text when the summary was shortened."""
    lines = ["### Every check", ""]
    for c in sort_checks(report.get("checks") or []):
        status = c["status"]
        base = f", baseline {num(c.get('baseline'))}" if c.get("baseline") is not None else ""
        lines.append(f"- {STATUS_ICON.get(status, '')} {STATUS_WORD.get(status, status)} `{c['id']}`: "
                     f"observed {num(c.get('observed'))}{base}, threshold {threshold(c.get('threshold') or {})}")
    return "\n".join(lines) + "\n"


def _display_dir(folder: Path | None, root: Path | None) -> str:
    """Return the report folder as a reader finds it: relative to the workspace when inside it."""
    if folder is None:
        return "model-gates-report"
    path = folder.resolve()
    if root is not None and path.is_relative_to(root.resolve()):
        return Path(os.path.relpath(path, root.resolve())).as_posix()
    return folder.as_posix()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
