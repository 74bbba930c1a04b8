"""A readable terminal table: one line per check, failing first, colour only on a TTY.

Skipped checks are many on a first run (no baseline yet) and say the same thing: they are folded
to one line per (gate, reason) unless ``verbose`` asks for each.
"""
from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from gates.reporters._format import STATUS_WORD, counts_line, interval, num, sort_checks, threshold

COLOURS = {"pass": "\033[32m", "fail": "\033[31m", "inconclusive": "\033[31m", "error": "\033[35m",
           "warn": "\033[33m", "waived": "\033[36m", "skipped": "\033[2m"}
RESET = "\033[0m"
#: statuses whose message is printed under the row
EXPLAINED = frozenset({"fail", "inconclusive", "error", "warn", "skipped"})
MSG_FOLDED = "{n} skipped checks are folded by gate and reason; --verbose lists each"


def render_terminal(report: Mapping[str, Any], *, colour: bool = False, width: int | None = None,
                    verbose: bool = False) -> str:
    """Return the verdict and a check table sized to ``width`` columns.

    Without ``verbose``, skipped checks are one line per (gate, reason) with their count and the
    first check's message.
    """
    width = width or shutil.get_terminal_size((120, 24)).columns
    checks = sort_checks(report["checks"])
    shown = checks if verbose else [c for c in checks if c["status"] != "skipped"]
    folded = [] if verbose else _fold([c for c in checks if c["status"] == "skipped"])
    id_w = min(max((len(c["id"]) for c in shown), default=10), max(24, width - 70))
    lines = [f"{'status':<13} {'check':<{id_w}} {'observed':>9} {'baseline':>9}  {'interval':<22} threshold"]
    for c in shown:
        if c["status"] == "pass" and folded:
            lines.extend(_folded_lines(folded, colour))
            folded = []
        lines.extend(_row(c, id_w, colour))
    lines.extend(_folded_lines(folded, colour))
    verdict = report["verdict"].upper()
    if colour:
        verdict = ("\033[1;32m" if report["verdict"] == "pass" else "\033[1;31m") + verdict + RESET
    mode = report.get("policy", {}).get("mode")
    suffix = " (shadow mode: not enforced)" if mode == "shadow" else ""
    lines.append("")
    n_skipped = sum(1 for c in checks if c["status"] == "skipped")
    if not verbose and n_skipped > 1:
        lines.append(MSG_FOLDED.format(n=n_skipped))
    lines.append(f"verdict: {verdict}{suffix} — {counts_line(report.get('summary', {}))}"
                 f"{'  (* warn-only check)' if any(not c.get('blocking', True) for c in checks) else ''}")
    return "\n".join(lines) + "\n"


def _row(c: Mapping[str, Any], id_w: int, colour: bool) -> list[str]:
    word = STATUS_WORD.get(c["status"], c["status"])
    if not c.get("blocking", True) and c["status"] in ("pass", "warn"):
        word += "*"
    cid = c["id"] if len(c["id"]) <= id_w else c["id"][: id_w - 1] + "…"
    out = [f"{_cell(word, c['status'], colour)} {cid:<{id_w}} {num(c.get('observed')):>9} "
           f"{num(c.get('baseline')):>9}  {interval(c.get('ci')):<22} {threshold(c.get('threshold', {}))}"]
    if c["status"] in EXPLAINED:
        out.append(f"{'':13}   ↳ {c['message']}")
    return out


def _cell(word: str, status: str, colour: bool) -> str:
    cell = f"{word:<13}"
    return COLOURS.get(status, "") + cell + RESET if colour else cell


def _fold(skipped: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, list[Mapping[str, Any]]]]:
    """Return ``(gate, reason, checks)`` groups of skipped checks, in the order first seen."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for c in skipped:
        groups.setdefault((str(c.get("gate", "")), str(c.get("reason") or "skipped")), []).append(c)
    return [(gate, reason, members) for (gate, reason), members in groups.items()]


def _folded_lines(folded: Sequence[tuple[str, str, list[Mapping[str, Any]]]], colour: bool) -> list[str]:
    out = []
    for gate, reason, members in folded:
        if len(members) == 1:
            c = members[0]
            out.append(f"{_cell('SKIP', 'skipped', colour)} {c['id']} ({reason})")
            out.append(f"{'':13}   ↳ {c['message']}")
            continue
        out.append(f"{_cell('SKIP', 'skipped', colour)} {gate}: {len(members)} checks ({reason}), "
                   f"e.g. {members[0]['id']}")
        out.append(f"{'':13}   ↳ {members[0]['message']}")
    return out
