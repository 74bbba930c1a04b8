"""The end of a gate run: render every report, then register, then put the reports in place.

``model-gates run``, the pytest plugin and the quickstart all end a run here, so the order is
one: a report that cannot be rendered stops the run before the registry changes; the registry
then records the run (registering the candidate when the verdict allows); the reports, rendered
again with the registration's outcome, replace the old ones by rename. So the exit code and the
registry agree: a run that fails after its verdict registers nothing and says what failed.
"""
from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.errors import EnvironmentProblem, GateError, first_line
from gates.policy import Policy
from gates.registrar import REASON_NO_REGISTER, record_run, why_not_register
from gates.runner import RunResult

MSG_RENDER_FAILED = "could not render {name} ({problem}); nothing was registered"
MSG_WRITE_FAILED = "could not write the reports to {folder} ({problem}); nothing was registered"
MSG_PLACE_FAILED = "registered, but could not move the reports into {folder}: {problem}"
REASON_RENDER_FAILED = "the reports could not be rendered: {problem}"
REASON_REGISTRY_ERROR = "registry error: {problem}"


@dataclass(frozen=True)
class Finished:
    """How a run ended: the final report, the files written, and what failed after the verdict.

    ``error`` is None when everything after the verdict worked; otherwise the run must exit with
    ``error.exit_code`` and the registry holds no new version from it. ``stage`` names what
    failed: ``render``, ``registry`` or ``write``.
    """

    report: Mapping[str, Any]
    written: tuple[Path, ...]
    error: GateError | None = None
    stage: str | None = None


def finish_run(policy: Policy, result: RunResult, report: dict[str, Any], report_dir: Path, *,
               register: bool, not_asked: str = REASON_NO_REGISTER) -> Finished:
    """Render the reports, record the run in the registry (registering on pass), write the reports.

    ``register`` and ``not_asked`` are :func:`gates.registrar.record_run`'s. Never raises a
    GateError: a failure is returned in :attr:`Finished.error`, with the reports that could be
    written (always report.json when it renders) as the run's evidence.
    """
    from gates.reporters import report_files

    staging = _staging(report_dir)
    if isinstance(staging, GateError):
        return Finished(report, (), _unregistered(policy, result, report, register, not_asked, staging), "write")
    try:
        report["registration"] = _provisional(policy, result, register)
        failed = _render(report, report_files(), staging)
        if failed is not None:
            name, problem = failed
            error = EnvironmentProblem(MSG_RENDER_FAILED.format(name=name, problem=problem))
            _unregistered(policy, result, report, register, not_asked, error,
                          reason=REASON_RENDER_FAILED.format(problem=f"{name}: {problem}"))
            rendered = [(f, n) for f, n in report_files() if n != name]
            _render(report, rendered, staging)
            return Finished(report, _place(staging, report_dir, rendered), error, "render")
        error, stage = None, None
        try:
            report["registration"] = record_run(policy, result, report, register=register, not_asked=not_asked)
        except GateError as exc:  # the reports are still written: they are the run's evidence
            error, stage = exc, "registry"
            report["registration"] = {"registered": False, "reason": REASON_REGISTRY_ERROR.format(problem=exc)}
        failed = _render(report, report_files(), staging)
        if failed is not None:  # the same report but for its registration block: not expected to fail
            return Finished(report, (), EnvironmentProblem(MSG_PLACE_FAILED.format(
                folder=report_dir, problem=f"{failed[0]}: {failed[1]}")), "write")
        try:
            return Finished(report, _place(staging, report_dir, report_files()), error, stage)
        except OSError as exc:
            problem = MSG_PLACE_FAILED.format(folder=report_dir, problem=exc)
            return Finished(report, (), EnvironmentProblem(problem), "write")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _staging(report_dir: Path) -> Path | GateError:
    """Make a scratch folder inside ``report_dir`` (same file system: the final renames are atomic)."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        staging = report_dir / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        return staging
    except OSError as exc:
        return EnvironmentProblem(MSG_WRITE_FAILED.format(folder=report_dir, problem=exc.strerror or exc))


def _provisional(policy: Policy, result: RunResult, register: bool) -> dict[str, Any]:
    """Return a registration block shaped like the one this run should end with, for the first render."""
    reason = why_not_register(policy, result, register=register)
    if reason is not None:
        return {"registered": False, "reason": reason}
    alias = policy.registry.alias_on_pass
    return {"registered": True, "backend": policy.registry.backend, "version": 1,
            "aliases": [alias] if alias else [], "already_registered": False}


def _render(report: Mapping[str, Any], files: list[tuple[str, str]], folder: Path) -> tuple[str, str] | None:
    """Write each (format, name) into ``folder``; return (name, problem) of the first that fails, else None."""
    from gates.reporters import renderer

    for fmt, name in files:
        try:
            (folder / name).write_text(renderer(fmt)(report), encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 -- any failure of a renderer stops registration
            return name, f"{type(exc).__name__}: {first_line(exc, 300)}"
    return None


def _place(staging: Path, report_dir: Path, files: list[tuple[str, str]]) -> tuple[Path, ...]:
    """Move the rendered files from ``staging`` into ``report_dir`` (renames on one file system)."""
    placed = []
    for _, name in files:
        target = report_dir / name
        (staging / name).replace(target)
        placed.append(target)
    return tuple(placed)


def _unregistered(policy: Policy, result: RunResult, report: dict[str, Any], register: bool, not_asked: str,
                  error: GateError, reason: str | None = None) -> GateError:
    """Audit a run that cannot register because of ``error``; return ``error``."""
    why = reason or str(error)
    report["registration"] = {"registered": False, "reason": why}
    try:
        record_run(policy, result, report, register=False, not_asked=why)
    except GateError:
        pass  # the run's own error is what the user must see; the registry's is secondary
    return error
