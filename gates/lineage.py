"""Lineage and audit records built from a report.json (DESIGN section 5).

A registered version records where it came from: the model's sha256 and format, the eval and
reference data's sha256 and row counts, the policy's sha256, the git commit, the CI run URL,
Python and key package versions, the checks' observed metrics and the whole verdict. A gate run
that registers nothing still leaves a :class:`~gates.registry.base.RunEntry` in the audit log.
"""
from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Mapping
from typing import Any

from gates.registry.base import RunEntry
from gates.reporters.json_report import dumps, environment_versions

#: keys of report["run"]["ci"] that may hold the CI run's URL, most specific first
CI_URL_KEYS = ("url", "run_url", "job_url", "pipeline_url")


def current_actor(env: Mapping[str, str] | None = None) -> str:
    """Return who is acting: the CI's user when running there, else the local login name."""
    env = os.environ if env is None else env
    for var in ("MODEL_GATES_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if env.get(var):
            return env[var]
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def ci_url(report: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str | None:
    """Return the CI run's URL from the report's ``run.ci`` block, else from the CI's variables."""
    ci = (report.get("run") or {}).get("ci") or {}
    for key in CI_URL_KEYS:
        if ci.get(key):
            return str(ci[key])
    env = os.environ if env is None else env
    if env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"]
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None


def report_digest(report: Mapping[str, Any]) -> str:
    """Return the sha256 of the report as serialised, without its ``registration`` block.

    The registration block is filled in from the registry's answer, so the digest covers
    exactly what the registry was shown.
    """
    body = {k: v for k, v in report.items() if k != "registration"}
    return hashlib.sha256(dumps(body).encode()).hexdigest()


def observed_metrics(report: Mapping[str, Any]) -> dict[str, Any]:
    """Return check id -> the candidate's observed value, for every check that measured one."""
    return {c["id"]: c["observed"] for c in report.get("checks", []) if c.get("observed") is not None}


def run_record(report: Mapping[str, Any], *, not_registered: str | None = None) -> dict[str, Any]:
    """Return what the audit log keeps about one gate run."""
    run = report.get("run") or {}
    model = report.get("model") or {}
    checks = report.get("checks", [])
    record: dict[str, Any] = {
        "run_id": run.get("id"), "started_at": run.get("started_at"), "finished_at": run.get("finished_at"),
        "verdict": report.get("verdict"), "mode": (report.get("policy") or {}).get("mode"),
        "summary": report.get("summary", {}),
        "checks": [{"id": c["id"], "status": c["status"], "blocking": c.get("blocking", True)} for c in checks],
        "failing": [c["id"] for c in checks if c.get("blocking", True)
                    and c["status"] in ("fail", "inconclusive", "error")],
        "waivers": list(report.get("waivers", [])),
        "report_sha256": report_digest(report),
        "candidate": model.get("candidate"), "baseline": model.get("baseline"),
        "policy_sha256": (report.get("policy") or {}).get("sha256"),
        "git_sha": run.get("git_sha"), "ci": run.get("ci") or {},
    }
    if not_registered:
        record["not_registered"] = not_registered
    return record


def run_entry(report: Mapping[str, Any], *, by: str | None = None, not_registered: str | None = None) -> RunEntry:
    """Return the audit log entry of a gate run."""
    return RunEntry(verdict=str(report.get("verdict", "fail")), by=by or current_actor(), ci_url=ci_url(report),
                    record=run_record(report, not_registered=not_registered))


def build_lineage(report: Mapping[str, Any] | None, *, model_sha256: str, model_format: str, by: str,
                  forced_reason: str | None = None) -> dict[str, Any]:
    """Return the lineage record stored with a registered version.

    ``report`` is the passing report that admitted the model (None only for a forced
    registration without one); ``forced_reason`` marks a registration that bypassed the gates.
    """
    report = report or {}
    run = report.get("run") or {}
    model = report.get("model") or {}
    candidate = model.get("candidate") or {}
    return {
        "model": {"sha256": model_sha256, "format": model_format, "source": candidate.get("uri"),
                  "task": model.get("task")},
        "baseline": model.get("baseline"),
        "data": report.get("data", {}),
        "policy": report.get("policy", {}),
        "git_sha": run.get("git_sha"),
        "ci": run.get("ci") or {},
        "ci_url": ci_url(report) if report else ci_url({}),
        "run": {"id": run.get("id"), "started_at": run.get("started_at"), "finished_at": run.get("finished_at")},
        "environment": environment_versions(),
        "metrics": observed_metrics(report),
        "verdict": report.get("verdict"),
        "summary": report.get("summary", {}),
        "report_sha256": report_digest(report) if report else None,
        "report": {k: v for k, v in report.items() if k != "registration"},
        "registered_by": by,
        "forced": forced_reason is not None,
        "forced_reason": forced_reason,
    }
