"""Findings: the checks a CI platform should flag, each pointed at its line in gates.yaml.

A failed check becomes an annotation (GitHub check run, ``::error::`` workflow command) on the
policy line that declared it, so a reviewer lands on the threshold that failed.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gates.identity import CheckId, of_report
from gates.publishers.limits import encodable
from gates.reporters._format import STATUS_WORD, num, threshold

#: report statuses worth a finding, with the level they are shown at
LEVELS = {"fail": "failure", "inconclusive": "failure", "error": "failure", "warn": "warning", "waived": "notice"}


@dataclass(frozen=True)
class Finding:
    """One check to flag: where (path relative to the repository root, line) and what."""

    check_id: str
    level: str  # failure | warning | notice
    path: str
    line: int
    title: str
    message: str


def findings(report: Mapping[str, Any], config: Path | None, root: Path | None) -> list[Finding]:
    """Return a finding per check that failed, warned or was waived, failures first.

    Titles and messages are valid UTF-8 (a lone surrogate, which YAML escapes allow in a check id
    or a message, becomes U+FFFD), so the log and the API can carry them.

    ``config`` is the policy file (for line numbers) and ``root`` the repository root the
    paths are made relative to; either may be unknown, and then the report's policy name and
    line 1 are used.
    """
    lines = key_lines(config) if config is not None else {}
    path = _display_path(report, config, root)
    out = []
    for check in report.get("checks", []):
        level = _level(check)
        if level is None:
            continue
        title = f"{check['id']}: {STATUS_WORD.get(check['status'], check['status'])}"
        out.append(Finding(check_id=check["id"], level=level, path=path, line=locate(of_report(check), lines),
                           title=encodable(title), message=encodable(describe(check))))
    order = {"failure": 0, "warning": 1, "notice": 2}
    return sorted(out, key=lambda f: order[f.level])


def _level(check: Mapping[str, Any]) -> str | None:
    level = LEVELS.get(check["status"])
    if check["status"] == "error" and not check.get("blocking", True):
        return "warning"
    return level


def describe(check: Mapping[str, Any]) -> str:
    """Return a one-paragraph description: the check's message (which names any interval), the
    observed and baseline values and the threshold."""
    parts = [check.get("message") or ""]
    facts = [f"observed {num(check.get('observed'))}"]
    if check.get("baseline") is not None:
        facts.append(f"baseline {num(check.get('baseline'))}")
    facts.append(f"threshold {threshold(check.get('threshold') or {})}")
    parts.append("(" + ", ".join(facts) + ")")
    return " ".join(p for p in parts if p)


def config_path(report: Mapping[str, Any], env: Mapping[str, str], cwd: Path) -> Path | None:
    """Return the policy file: ``MODEL_GATES_CONFIG`` (set by the action) or the report's name in ``cwd``."""
    for candidate in (env.get("MODEL_GATES_CONFIG"), (report.get("policy") or {}).get("path")):
        if candidate and (cwd / candidate).is_file():
            return (cwd / candidate).resolve()
    return None


def _display_path(report: Mapping[str, Any], config: Path | None, root: Path | None) -> str:
    if config is None:
        return str((report.get("policy") or {}).get("path") or "gates.yaml")
    if root is not None:
        try:
            return Path(os.path.relpath(config, root.resolve())).as_posix()
        except ValueError:
            pass
    return config.name


def key_lines(path: Path) -> dict[tuple[str, ...], int]:
    """Return the 1-based line of every mapping key path in a YAML file ({} when unreadable)."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    out: dict[tuple[str, ...], int] = {}
    stack: list[tuple[yaml.Node | None, tuple[str, ...]]] = [(root, ())]
    while stack:
        node, keypath = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = keypath + (str(key.value),)
                out[sub] = key.start_mark.line + 1
                stack.append((value, sub))
    return out


def locate(check_id: CheckId, lines: Mapping[tuple[str, ...], int]) -> int:
    """Return the policy line that declared a check: the most specific key path found, else 1."""
    for keypath in candidate_keypaths(check_id):
        if keypath in lines:
            return lines[keypath]
    return 1


def candidate_keypaths(check_id: CheckId) -> list[tuple[str, ...]]:
    """Return key paths that may declare a check (its typed id's fields), most specific first.

    Gates lay out their sections differently (``metrics.<name>.<kind>``, ``drift.columns.<col>``,
    ``checks.columns.<col>``), so the candidates cover each layout and end at the gate itself.
    """
    gate, scope = check_id.gate, check_id.scope
    parts = tuple(p for p in (check_id.name, check_id.kind) if p)
    base = ("gates", gate)
    out: list[tuple[str, ...]] = []
    if parts:
        out += [base + ("metrics",) + parts, base + ("metrics", parts[0])]
        if scope:
            out += [base + (parts[0], "columns", scope), base + ("checks", "columns", scope),
                    base + ("checks", parts[0])]
        out += [base + parts, base + (parts[0],)]
    return out + [base, ("gates",)]


def by_level(items: Sequence[Finding], level: str) -> list[Finding]:
    return [f for f in items if f.level == level]
