"""What a GitHub Actions step can say without the API: outputs, job summary, workflow commands.

These work even with a read-only token (pull requests from forks), so they are written first.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from gates.publishers.findings import Finding
from gates.publishers.limits import BYTES, Limit, fit
from gates.reporters.markdown import render_markdown

#: GitHub rejects a step summary over 1 MiB; keep a margin for what other tools appended
STEP_SUMMARY_BYTES = 1024 * 1024 - 4096
#: GitHub shows at most 10 error and 10 warning annotations per step
COMMANDS_PER_LEVEL = 10
MSG_MORE = "…and {n} more {what} (see the job summary or report.json)"


def outputs(report: Mapping[str, Any], report_dir: Path) -> dict[str, str]:
    """Return the step outputs: verdict, report path and directory, model, registered version."""
    reg = report.get("registration") or {}
    version = reg.get("version") if reg.get("registered") else None
    return {
        "verdict": str(report["verdict"]),
        "report-path": str((report_dir / "report.json").resolve()),
        "report-dir": str(report_dir.resolve()),
        "model": str(report["model"]["name"]),
        "registered-version": "" if version is None else str(version),
    }


def write_outputs(path: Path, values: Mapping[str, str]) -> None:
    """Append ``values`` to ``$GITHUB_OUTPUT`` in the multi-line form, safe for any value."""
    with path.open("a", encoding="utf-8") as fh:
        for name, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def write_step_summary(path: Path, report: Mapping[str, Any]) -> None:
    """Append the Markdown report to ``$GITHUB_STEP_SUMMARY``, shortened to fit what room is left."""
    used = path.stat().st_size if path.exists() else 0
    room = STEP_SUMMARY_BYTES - used
    if room <= 0:
        return
    limit = Limit(room, BYTES, "the room left in GitHub's 1 MiB job summary")
    where = "the whole report is report.md (with report.json) in the report folder"
    text = fit(lambda chars: render_markdown(report, max_chars=chars), limit, where)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


def print_commands(items: Sequence[Finding], out: TextIO) -> None:
    """Print ``::error``/``::warning``/``::notice`` workflow commands, within GitHub's per-step cap."""
    for level, command, what in (("failure", "error", "failed checks"), ("warning", "warning", "warnings"),
                                 ("notice", "notice", "waived checks")):
        chosen = [f for f in items if f.level == level]
        shown = chosen if len(chosen) <= COMMANDS_PER_LEVEL else chosen[:COMMANDS_PER_LEVEL - 1]
        for f in shown:
            props = f"file={_prop(f.path)},line={f.line},title={_prop(f.title)}"
            out.write(f"::{command} {props}::{_data(f.message)}\n")
        if len(shown) < len(chosen):
            out.write(f"::{command}::{_data(MSG_MORE.format(n=len(chosen) - len(shown), what=what))}\n")
    out.flush()


def _data(text: str) -> str:
    """Escape a workflow command's message (as @actions/core's ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    """Escape a workflow command's property value (as @actions/core's ``escapeProperty``)."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")
