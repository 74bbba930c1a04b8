"""Markdown report: the PR comment, MR note and job summary (GitHub- and GitLab-flavoured)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gates.reporters._format import (
    STATUS_ICON,
    STATUS_WORD,
    anchors,
    blocking_failures,
    by_gate,
    counts_line,
    interval,
    num,
    sort_checks,
    threshold,
)
from gates.reporters.mermaid import mermaid_charts

#: status words that make a check worth a detail section
ATTENTION = frozenset({"fail", "inconclusive", "error", "warn", "waived"})
TRUNCATED = "\n_…{n} more passing checks are in report.json._\n"


def render_markdown(report: Mapping[str, Any], *, max_chars: int | None = None) -> str:
    """Return the report as Markdown: the verdict, the blocking checks that fail, then every check by gate.

    With ``max_chars``, passing rows are dropped (and counted in a note) until the text fits,
    then the Mermaid charts, then detail sections; the verdict line and the blocking list are always kept.
    """
    head = _header(report) + _blocking(report["checks"])
    checks = list(report["checks"])
    details = _details(sort_checks(checks))
    charts = mermaid_charts(report)
    tail = _footer(report)
    body = head + _by_gate(checks) + details + charts + tail
    if max_chars is None or len(body) <= max_chars:
        return body
    keep = [c for c in checks if c["status"] != "pass"]
    dropped = len(checks) - len(keep)
    note = TRUNCATED.format(n=dropped) if dropped else ""
    for extra in (charts, ""):
        body = head + _by_gate(keep) + note + details + extra + tail
        if len(body) <= max_chars:
            return body
    body = head + _by_gate(keep) + note + tail
    return body if len(body) <= max_chars else body[: max_chars - 40] + "\n\n_…report truncated._\n"


def _header(report: Mapping[str, Any]) -> str:
    verdict = report["verdict"]
    model = report["model"]
    mode = report.get("policy", {}).get("mode", "enforce")
    icon = {"pass": "✅", "incomplete": "⚠️"}.get(verdict, "❌")
    word = {"pass": "passed", "incomplete": "incomplete"}.get(verdict, "failed")
    shadow = " (shadow mode: reported, never blocks)" if mode == "shadow" else ""
    lines = [f"## {icon} model-gates: `{model['name']}` {word}{shadow}", ""]
    cand = model.get("candidate") or {}
    base = model.get("baseline")
    base_text = "none" if not base else (f"v{base['version']}" if base.get("version") else f"`{base['uri']}`")
    lines.append(f"**Candidate** `{cand.get('uri', '?')}` (sha256 `{(cand.get('sha256') or '—')[:12]}`) "
                 f"vs **baseline** {base_text} on {num(report['data']['eval']['rows'])} rows · "
                 f"{counts_line(report.get('summary', {}))}")
    reg = report.get("registration") or {}
    if reg.get("registered"):
        aliases = ", ".join(reg.get("aliases", [])) or "no alias"
        lines.append(f"\n**Registered** as version {reg.get('version')} ({aliases}) in the {reg.get('backend')} registry.")
    elif reg.get("reason"):
        lines.append(f"\n**Not registered:** {reg['reason']}")
    return "\n".join(lines) + "\n\n"


def _blocking(checks: Sequence[Mapping[str, Any]]) -> str:
    """Return the short list a reader needs first: each blocking check that fails, why, and a link to its row."""
    failing = blocking_failures(checks)
    if not failing:
        return "**No blocking check fails.**\n"
    names = anchors(checks)
    lines = [f"**Blocking checks that fail ({len(failing)})**", ""]
    for c in failing:
        lines.append(f"- {STATUS_ICON.get(c['status'], '')} {STATUS_WORD.get(c['status'], c['status'])} "
                     f"[`{c['id']}`](#{names[c['id']]}): {_escape(c.get('message', ''))}")
    return "\n".join(lines) + "\n"


def _by_gate(checks: Sequence[Mapping[str, Any]]) -> str:
    """Return one table per gate, each gate's checks worst first; each row carries its anchor."""
    if not checks:
        return "\n_No checks ran._\n"
    names = anchors(checks)
    out = []
    for gate, members in by_gate(checks):
        out.append(f"\n#### {gate} · {counts_line(_counts(members))}\n\n" + _table(members, names))
    return "".join(out)


def _counts(checks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in STATUS_WORD:
        n = sum(1 for c in checks if c["status"] == s)
        if n:
            out[s] = n
    return out


def _table(checks: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> str:
    rows = ["| | check | observed | baseline | Δ | threshold | interval |",
            "|---|---|---|---|---|---|---|"]
    for c in checks:
        rows.append(
            f"| {STATUS_ICON.get(c['status'], '')} {STATUS_WORD.get(c['status'], c['status'])} "
            f"| <a id=\"{names[c['id']]}\"></a>`{c['id']}`{'' if c.get('blocking', True) else ' _(warn only)_'} "
            f"| {num(c.get('observed'))} "
            f"| {num(c.get('baseline'))} | {num(c.get('delta'))} | {_escape(threshold(c.get('threshold', {})))} "
            f"| {interval(c.get('ci'))} |")
    return "\n".join(rows) + "\n"


def _details(checks: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for c in checks:
        if c["status"] not in ATTENTION:
            continue
        out.append(f"\n<details><summary><code>{c['id']}</code>: {_escape(c['message'])}</summary>\n")
        groups = (c.get("details") or {}).get("groups")
        if groups:
            out.append(_group_table(groups, (c.get("details") or {}).get("metrics_involved")))
        examples = (c.get("details") or {}).get("examples")
        if examples:
            out.append(_examples(examples))
        if c.get("waiver"):
            w = c["waiver"]
            out.append(f"\nWaived by {w.get('by')}: {_escape(str(w.get('reason')))} (was {w.get('original_status')})\n")
        out.append("\n</details>\n")
    return "".join(out)


def _group_table(groups: Sequence[Mapping[str, Any]], involved: Sequence[str] | None) -> str:
    metrics = list(involved or sorted({k for g in groups for k in (g.get("metrics") or {})}))
    head = "| group | size | " + " | ".join(metrics) + " | note |"
    rows = [head, "|" + "---|" * (len(metrics) + 3)]
    for g in groups:
        label = ", ".join(f"{k}={v}" for k, v in (g.get("group") or {}).items())
        values = " | ".join(num((g.get("metrics") or {}).get(m)) for m in metrics)
        note = g.get("excluded") or ""
        rows.append(f"| {_escape(label)} | {num(g.get('size'))} | {values} | {_escape(str(note)) if note else ''} |")
    return "\n" + "\n".join(rows) + "\n"


def _examples(examples: Sequence[Any]) -> str:
    shown = ", ".join(f"`{_escape(str(e))}`" for e in list(examples)[:10])
    return f"\nExamples: {shown}\n"


def _footer(report: Mapping[str, Any]) -> str:
    waivers = report.get("waivers") or []
    lines = []
    if waivers:
        lines.append("\n**Waivers**")
        for w in waivers:
            used = ("" if w.get("used", True) else
                    " _(not needed: the check did not fail)_" if w.get("matched") else " _(matched no check)_")
            lines.append(f"- `{w['check']}`: {_escape(w['reason'])} — {w.get('by')}{used}")
    run = report.get("run", {})
    ci = run.get("ci", {}) or {}
    link = f" · [CI run]({ci['url']})" if ci.get("url") else ""
    lines.append(f"\n<sub>model-gates {report['tool']['version']} · policy sha256 "
                 f"`{report.get('policy', {}).get('sha256', '')[:12]}` · seed {report.get('policy', {}).get('seed')}"
                 f"{link}</sub>\n")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
