"""Number and threshold formatting shared by every renderer (all read report dicts, not results)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: order in which checks are listed: what needs attention first
STATUS_ORDER = {"fail": 0, "inconclusive": 1, "error": 2, "warn": 3, "waived": 4, "skipped": 5, "pass": 6}
STATUS_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "❔", "error": "💥", "warn": "⚠️",
               "waived": "🏳️", "skipped": "⏭️"}
STATUS_WORD = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE", "error": "ERROR",
               "warn": "WARN", "waived": "WAIVED", "skipped": "SKIP"}


def num(x: Any, digits: int = 4) -> str:
    """Return a compact number: ``0.8123``, ``1.2e-05``, ``12345``; ``—`` for missing."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x == 0:
            return "0"
        if abs(x) >= 1e5 or abs(x) < 10 ** -digits:
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return str(x)


def threshold(th: Mapping[str, Any]) -> str:
    """Return ``max_drop 0.005, severity warn`` style text for a threshold mapping."""
    return ", ".join(f"{k} {num(v) if not isinstance(v, str) else v}" for k, v in th.items()) or "—"


def interval(ci: Sequence[Any] | None) -> str:
    if not ci:
        return "—"
    return f"[{num(ci[0])}, {num(ci[1])}]"


def sort_checks(checks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return checks with failing ones first; stable within a status, so output is deterministic."""
    return sorted(checks, key=lambda c: STATUS_ORDER.get(c["status"], 9))


def counts_line(summary: Mapping[str, int]) -> str:
    parts = [f"{n} {STATUS_WORD[s].lower()}" for s, n in summary.items() if n and s in STATUS_WORD]
    return ", ".join(parts) or "no checks"


#: statuses of a blocking check that fail the verdict
BLOCKING_STATUSES = frozenset({"fail", "inconclusive", "error"})
#: gates in the order a reader meets them; other gates (pytest-marked tests) follow in report order
GATE_ORDER = ("data", "regression", "fairness", "robustness")


def blocking_failures(checks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Return the blocking checks whose status fails the verdict, worst status first."""
    return sort_checks([c for c in checks if c.get("blocking", True) and c["status"] in BLOCKING_STATUSES])


def by_gate(checks: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Return ``(gate, checks)`` pairs in :data:`GATE_ORDER`, each gate's checks worst first."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for c in checks:
        found.setdefault(str(c.get("gate") or "other"), []).append(c)
    names = [g for g in GATE_ORDER if g in found] + [g for g in found if g not in GATE_ORDER]
    return [(g, sort_checks(found[g])) for g in names]


def slug(text: str) -> str:
    """Return ``text`` as a lowercase anchor name of letters, digits and dashes (Markdown-safe)."""
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def anchors(checks: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Return a unique ``check-<slug>`` anchor per check id (a numbered suffix where slugs collide)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for c in checks:
        base = "check-" + slug(c["id"])
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        out[c["id"]] = name
    return out
