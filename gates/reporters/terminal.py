"""A readable terminal table: one line per check, failing first, colour only on a TTY."""
from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from gates.reporters._format import STATUS_WORD, counts_line, interval, num, sort_checks, threshold

COLOURS = {"pass": "\033[32m", "fail": "\033[31m", "inconclusive": "\033[31m", "error": "\033[35m",
           "warn": "\033[33m", "waived": "\033[36m", "skipped": "\033[2m"}
RESET = "\033[0m"


def render_terminal(report: Mapping[str, Any], *, colour: bool = False, width: int | None = None) -> str:
    """Return the verdict and a check table sized to ``width`` columns."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    checks = sort_checks(report["checks"])
    id_w = min(max((len(c["id"]) for c in checks), default=10), max(24, width - 70))
    lines = [f"{'status':<13} {'check':<{id_w}} {'observed':>9} {'baseline':>9}  {'interval':<22} threshold"]
    for c in checks:
        word = STATUS_WORD.get(c["status"], c["status"])
        if not c.get("blocking", True) and c["status"] in ("pass", "warn"):
            word += "*"
        cell = f"{word:<13}"
        if colour:
            cell = COLOURS.get(c["status"], "") + cell + RESET
        cid = c["id"] if len(c["id"]) <= id_w else c["id"][: id_w - 1] + "…"
        lines.append(f"{cell} {cid:<{id_w}} {num(c.get('observed')):>9} {num(c.get('baseline')):>9}  "
                     f"{interval(c.get('ci')):<22} {threshold(c.get('threshold', {}))}")
        if c["status"] in ("fail", "inconclusive", "error", "warn", "skipped"):
            lines.append(f"{'':13}   ↳ {c['message']}")
    verdict = report["verdict"].upper()
    if colour:
        verdict = ("\033[1;32m" if report["verdict"] == "pass" else "\033[1;31m") + verdict + RESET
    mode = report.get("policy", {}).get("mode")
    suffix = " (shadow mode: not enforced)" if mode == "shadow" else ""
    lines.append("")
    lines.append(f"verdict: {verdict}{suffix} — {counts_line(report.get('summary', {}))}"
                 f"{'  (* warn-only check)' if any(not c.get('blocking', True) for c in checks) else ''}")
    return "\n".join(lines) + "\n"
