"""report.html: one self-contained page with charts, rendered offline from report.json alone.

No scripts, no network: styles are inline, charts are inline SVG written directly (see
:mod:`gates.reporters.charts`), and a Content-Security-Policy forbids loading anything, so the file
can be published as a CI artifact and opened anywhere. Every text from the report is escaped.

The page opens with the verdict and the blocking checks that fail, then the pictures a reader
reaches for (ROC, precision-recall, reliability, confusion or residuals; drift per column), then
every check by gate, then the interval, fairness and robustness charts.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from gates.reporters import _chartdata as cd
from gates.reporters import charts
from gates.reporters._format import (
    STATUS_ORDER,
    STATUS_WORD,
    blocking_failures,
    by_gate,
    counts_line,
    interval,
    num,
    slug,
    sort_checks,
    threshold,
)

#: statuses of data checks whose examples are worth showing
ATTENTION = frozenset({"fail", "inconclusive", "error", "warn", "waived"})
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
#: interval rows, fairness and robustness panels drawn per section, worst first; the rest keep
#: their tables only (a reader stops looking long before the 13th, and a page of hundreds of panels
#: would be megabytes)
MAX_CHARTS = 12
MSG_NOT_DRAWN = "Not drawn: only the {n} worst panels of this section get a chart."


def render_html(report: Mapping[str, Any]) -> str:
    """Return the whole report as one HTML document (deterministic for a given report)."""
    checks = list(report["checks"])
    body = "".join([
        _banner(report),
        _blocking(checks),
        _summary(report),
        _performance(report.get("curves")),
        _drift(cd.drift_charts(checks, report.get("curves"))),
        _checks_by_gate(checks),
        _intervals(cd.interval_rows(checks)),
        _fairness(cd.fairness_panels(checks)),
        _robustness(cd.robustness_panels(checks)),
        _data_failures(checks),
        _waivers(report.get("waivers") or []),
        _lineage(report),
    ])
    title = f"model-gates: {report['model']['name']} {report['verdict']}"
    return PAGE.format(title=e(title), csp=CSP, style=STYLE, body=body)


def e(value: Any) -> str:
    """Return ``value`` as escaped HTML text."""
    return escape(str(value), quote=True)


def code(text: Any, breaks: str = "./=&,") -> str:
    """Return ``text`` as escaped ``<code>`` that may wrap after ``breaks`` and before ``[``.

    Check ids and paths have no spaces; without these break points a phone has to scroll.
    """
    out = []
    for ch in str(text):
        if ch == "[":
            out.append("<wbr>")
        out.append(escape(ch))
        if ch in breaks:
            out.append("<wbr>")
    return f"<code>{''.join(out)}</code>"


def status_chip(status: str) -> str:
    return f'<span class="st st-{e(status)}">{e(STATUS_WORD.get(status, status))}</span>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """Return a scrollable table; cells are HTML already escaped by the caller."""
    th = "".join(f"<th>{h}</th>" for h in head)
    tr = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table></div>'


def _anchor(check_id: str) -> str:
    return "check-" + check_id


def _link(check_id: str) -> str:
    return f'<a href="#{e(_anchor(check_id))}">{code(check_id)}</a>'


# ---------------------------------------------------------------- banner and summary


def _banner(report: Mapping[str, Any]) -> str:
    verdict = report["verdict"]
    shadow = (report.get("policy") or {}).get("mode") == "shadow"
    word = {"pass": "PASSED", "incomplete": "INCOMPLETE"}.get(verdict, "FAILED")
    note = " · shadow mode: reported, never blocks" if shadow else ""
    reg = report.get("registration") or {}
    if reg.get("registered"):
        aliases = ", ".join(reg.get("aliases") or []) or "no alias"
        outcome = f"Registered as version {e(reg.get('version'))} ({e(aliases)}) in the {e(reg.get('backend'))} registry."
    else:
        outcome = "Not registered" + (f": {e(reg['reason'])}." if reg.get("reason") else ".")
    summary = report.get("summary") or {}
    chips = "".join(f'<li>{status_chip(s)} {n}</li>' for s, n in
                    sorted(summary.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9)) if n)
    return (f'<header class="banner banner-{e(verdict)}"><p class="verdict">{word}{e(note)}</p>'
            f'<h1>model-gates · {e(report["model"]["name"])}</h1>'
            f'<p>{e(counts_line(summary))}. {outcome}</p><ul class="chips">{chips}</ul></header>')


def _summary(report: Mapping[str, Any]) -> str:
    model = report["model"]
    cand, base = model.get("candidate") or {}, model.get("baseline")
    ident = "".join(f"<tr><th>{role}</th><td>{_model_line(m)}</td></tr>"
                    for role, m in (("candidate", cand), ("production", base)))
    ident = f'<div class="scroll"><table class="kv">{ident}</table></div>'
    evaluation = report["data"]["eval"]
    lead = (f"<p>{e(model.get('task', '').replace('_', ' '))} on <b>{e(num(evaluation['rows']))}</b> eval rows "
            f"(<code>{e(evaluation['uri'])}</code>).</p>")
    return f'<section id="summary"><h2>Candidate vs production</h2>{lead}{ident}{_metric_table(report["checks"])}</section>'


def _model_line(m: Mapping[str, Any] | None) -> str:
    if not m:
        return "none (first model: checks against production are skipped)"
    bits = [code(m["uri"])]
    if m.get("version") is not None:
        bits.append(f"version {e(m['version'])}")
    if m.get("format"):
        bits.append(e(m["format"]))
    bits.append(f'sha256 <code class="hash">{e((m.get("sha256") or "—")[:12])}</code>')
    return " · ".join(bits)


def _metric_table(checks: Sequence[Mapping[str, Any]]) -> str:
    """Return candidate and production side by side, one row per measured (metric, scope)."""
    rows: dict[tuple[str, str, str], list[Any]] = {}
    for c in checks:
        if c.get("observed") is None or c.get("baseline") is None or c["gate"] not in ("regression", "fairness"):
            continue
        cid = cd.check_key(c)
        key = (cid.gate, cid.name, cid.scope)
        row = rows.setdefault(key, [c, None])
        if row[1] is None and c.get("delta") is not None:
            row[1] = c
    if not rows:
        return ""
    body = []
    for (gate, name, scope), (c, rel) in rows.items():
        delta = rel.get("delta") if rel else None
        where = f'<div class="muted">{e(gate)} · {e(scope or "all rows")}</div>'
        body.append([code(name, "_") + where, e(num(c["observed"])), e(num(c["baseline"])), _delta_cell(delta, rel)])
    return "<h3>Metrics</h3>" + _table(["metric", "candidate", "production", "Δ"], body, "num")


def _delta_cell(delta: float | None, check: Mapping[str, Any] | None) -> str:
    if delta is None or check is None:
        return "—"
    if delta == 0:
        return e(num(delta))
    word = "better" if (delta > 0) == cd.higher_is_better(check) else "worse"
    return f'<span class="{word}">{e(num(delta))} {word}</span>'


def _blocking(checks: Sequence[Mapping[str, Any]]) -> str:
    """Return what a reader needs first: each blocking check that fails, its reason, a link to its row."""
    failing = blocking_failures(checks)
    if not failing:
        warned = sum(1 for c in checks if c["status"] == "warn")
        extra = f" {warned} warn-only {'check warns' if warned == 1 else 'checks warn'}; see below." if warned else ""
        return f'<section id="blocking"><h2>Blocking checks</h2><p>None fails.{e(extra)}</p></section>'
    items = "".join(f"<li>{status_chip(c['status'])} {_link(c['id'])}<div class=\"msg\">{e(c.get('message', ''))}</div></li>"
                    for c in failing)
    return (f'<section id="blocking" class="failing"><h2>Blocking checks that fail ({len(failing)})</h2>'
            f'<ul class="plain blocking">{items}</ul></section>')


def _checks_by_gate(checks: Sequence[Mapping[str, Any]]) -> str:
    parts = [f'<h3 id="gate-{e(slug(gate))}">{e(gate)} <span class="muted">· {e(counts_line(_counts(members)))}</span></h3>'
             + _checks_table(members) for gate, members in by_gate(checks)]
    return f'<section id="checks"><h2>Checks by gate</h2>{"".join(parts)}</section>'


def _counts(checks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in checks:
        out[c["status"]] = out.get(c["status"], 0) + 1
    return dict(sorted(out.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9)))


def _checks_table(checks: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for c in checks:
        warn_only = "" if c.get("blocking", True) else ' <span class="muted">(warn only)</span>'
        rows.append(
            f'<tr id="{e(_anchor(c["id"]))}"><td>{status_chip(c["status"])}</td>'
            f'<td>{code(c["id"])}{warn_only}<div class="msg">{e(c.get("message", ""))}</div></td>'
            + _labelled("observed", num(c.get("observed"))) + _labelled("baseline", num(c.get("baseline")))
            + _labelled("Δ", num(c.get("delta"))) + _labelled("threshold", threshold(c.get("threshold") or {}))
            + _labelled("interval", interval(c.get("ci")), _method(c)) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("status", "check", "observed", "baseline", "Δ", "threshold", "interval"))
    return (f'<div class="scroll"><table class="checks"><thead><tr>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _labelled(label: str, text: str, extra: str = "") -> str:
    """Return a cell that names itself on phones (where the table becomes one card per check)."""
    empty = ' class="empty"' if text == "—" else ""
    return f'<td data-label="{e(label)}"{empty}>{e(text)}{extra}</td>'


def _method(c: Mapping[str, Any]) -> str:
    bits = [str(c["ci_method"])] if c.get("ci_method") else []
    level = c.get("adjusted_confidence") or c.get("confidence")
    if level and c.get("ci"):
        bits.append(f"{num(100 * level, 3)}%")
    return f'<div class="muted">{e(" · ".join(bits))}</div>' if bits else ""


# ---------------------------------------------------------------- charts


def _performance(curves: Mapping[str, Any] | None) -> str:
    """Return ROC, precision-recall, reliability and confusion charts (classification) or residuals."""
    parts = []
    for kind, title, draw, caption in PERFORMANCE:
        found = cd.curve_charts(curves, kind)
        if found:
            multi = len(found) > 1
            svgs = "".join(f'<div class="cell">{draw(ch, f"{kind}{i}", multi)}</div>' for i, ch in enumerate(found))
            parts.append(_chart_figure(kind, title, svgs, caption, multi))
    conf = cd.confusion(curves)
    if conf is not None:
        svgs = "".join(f'<div class="cell">{charts.confusion_chart(conf, role, m, f"cm-{role}")}</div>'
                       for role, m in conf.matrices)
        parts.append(_chart_figure("confusion", "Confusion matrix", svgs, CAPTION_CONFUSION, len(conf.matrices) > 1))
    res = cd.residuals(curves)
    if res is not None:
        parts.append(_chart_figure("residuals", "Residuals", f'<div class="cell">{charts.residual_chart(res, "res")}</div>',
                                   CAPTION_RESIDUALS, False))
    if not parts:
        return ""
    return (f'<section id="performance"><h2>Model performance</h2><p class="muted">{e(CAPTION_PERFORMANCE)}</p>'
            f'<div class="perf">{"".join(parts)}</div></section>')


def _chart_figure(kind: str, title: str, svgs: str, caption: str, wide: bool) -> str:
    cls = "chart-section chart perf-chart" + (" wide" if wide else "")
    return (f'<figure class="{cls}" id="chart-{kind}" data-kind="{kind}"><h3>{e(title)}</h3>'
            f'<div class="cells">{svgs}</div><figcaption>{e(caption)}</figcaption></figure>')


def _drift(found: Sequence[cd.DriftChart]) -> str:
    if not found:
        return ""
    ids = _drift_ids([d.column for d in found])
    parts = []
    for i, (d, fid) in enumerate(zip(found, ids)):
        c = d.check
        parts.append(f'<figure class="chart-section chart perf-chart" id="{e(fid)}" data-kind="drift">'
                     f'<h3>{status_chip(d.status)} {_link(c["id"])}</h3><p class="msg">{e(c.get("message", ""))}</p>'
                     f'<div class="cells"><div class="cell">{charts.drift_chart(d, f"dr{i}")}</div></div></figure>')
    note = (f"Every drift check that did not pass, and the {cd.DRIFT_PASSING} passing ones nearest their limit: "
            "the share of rows per bin in the reference snapshot and in the eval data.")
    return (f'<section id="drift"><h2>Data drift</h2><p class="muted">{e(note)}</p>'
            f'<div class="perf">{"".join(parts)}</div></section>')


def _drift_ids(columns: Sequence[str]) -> list[str]:
    """Return ``chart-drift-<column>`` ids, made unique where two columns give the same slug."""
    out, taken = [], set()
    for col in columns:
        base = "chart-drift-" + slug(col)
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        out.append(name)
    return out


CAPTION_PERFORMANCE = ("Candidate (solid, blue) and production (dashed, grey) on the same eval rows, from "
                       "curves computed once during the run (report.json's curves).")
CAPTION_ROC = ("True positive rate against false positive rate as the score threshold falls; the dotted "
               "diagonal is chance. AUC in the legend.")
CAPTION_PR = ("Precision against recall as the threshold falls; the dotted line is the share of positives "
              "(no skill). Average precision in the legend.")
CAPTION_CALIBRATION = ("Fraction of positives against the mean predicted probability in ten equal-width bins; "
                       "on the diagonal, a score of 0.7 means 70% positives. Bars: rows per bin. Brier score in the legend.")
CAPTION_CONFUSION = ("Rows are the actual class, columns the predicted one; each cell shows its count and its "
                     "share of the actual class (green: correct).")
CAPTION_RESIDUALS = ("Histogram of actual − predicted on bins shared by both models (the candidate filled, "
                     "production outlined); centred on 0 and narrow is good.")
PERFORMANCE = (
    ("roc", "ROC curve", charts.roc_chart, CAPTION_ROC),
    ("pr", "Precision-recall curve", charts.pr_chart, CAPTION_PR),
    ("calibration", "Reliability (calibration)", charts.calibration_chart, CAPTION_CALIBRATION),
)


def _intervals(rows: Sequence[cd.IntervalRow]) -> str:
    if not rows:
        return ""
    ordered = cd.worst_intervals_first(rows)
    drawn, rest = ordered[:MAX_CHARTS], ordered[MAX_CHARTS:]
    svg = charts.forest_plot(drawn, "iv")
    caption = ("Each row is one check, worst first: the dot is the estimate (Δ = candidate − production for "
               "checks against production), the bar its interval, the dashed line the threshold, and the shaded "
               "side fails. An interval crossing the line is inconclusive; a bar wider than the distance to "
               "the line means the data cannot show that margin.")
    return (f'<section id="intervals" class="chart-section" data-kind="intervals"><h2>Intervals</h2>'
            f'<figure class="chart">{svg}<figcaption>{e(caption)}</figcaption></figure>'
            f'{_undrawn_intervals(rest)}</section>')


def _undrawn_intervals(rows: Sequence[cd.IntervalRow]) -> str:
    """Return the interval checks past the chart cap as a table (they keep their numbers, not a row)."""
    if not rows:
        return ""
    body = [[status_chip(r.status), _link(r.check_id),
             e(("Δ " if r.is_difference else "") + num(r.point)), e(interval([r.low, r.high])),
             e(r.limit.label if r.limit else "—")] for r in rows]
    note = f'<p class="muted">{e(MSG_NOT_DRAWN.format(n=MAX_CHARTS))} {len(rows)} more interval checks:</p>'
    return note + _table(["status", "check", "estimate", "interval", "line"], body, "num")


def _fairness(panels: Sequence[cd.FairnessPanel]) -> str:
    if not panels:
        return ""
    parts = [_fairness_panel(p, i, i < MAX_CHARTS) for i, p in enumerate(cd.worst_first(panels))]
    return f'<section id="fairness"><h2>Fairness</h2>{"".join(parts)}</section>'


def _fairness_panel(p: cd.FairnessPanel, i: int, draw: bool) -> str:
    svg = charts.group_bars(p, f"fa{i}") if draw else ""
    verdicts = "".join(f"<li>{status_chip(c['status'])} {_link(c['id'])}: {e(c.get('message', ''))}</li>"
                       for c in p.checks)
    hidden = len(p.groups) - charts.MAX_GROUPS
    more = f"<p class=\"muted\">{hidden} more groups are in the table below, not drawn.</p>" if hidden > 0 else ""
    return (f'{_article("fairness", i, draw)}'
            f'<h3>{status_chip(p.status)} <code>{e(p.metric)}</code> by {e(p.grouping)}</h3><ul class="plain">{verdicts}</ul>'
            f'<div class="panel">{_figure(svg)}<div>{more}{_group_table(p)}</div></div></article>')


def _article(kind: str, i: int, draw: bool) -> str:
    """Open a panel; only drawn panels are chart sections (one chart each)."""
    cls = "chart-section" if draw else "no-chart"
    return f'<article class="{cls}" data-kind="{kind}" id="{kind}-{i}">'


def _figure(svg: str) -> str:
    if svg:
        return f'<figure class="chart">{svg}</figure>'
    return f'<p class="muted">{e(MSG_NOT_DRAWN.format(n=MAX_CHARTS))}</p>'


def _group_table(p: cd.FairnessPanel) -> str:
    has_base = any(g.baseline for g in p.groups)
    head = ["group", "size", "positives"] + [f"{e(r)}" + (" (prod.)" if has_base else "") for r in p.rates] + ["excluded"]
    rows = []
    for g in p.groups:
        rates = [_rate_cell(g.values.get(r), (g.baseline or {}).get(r), has_base) for r in p.rates]
        rows.append([e(g.label), e(num(g.size)), e(num(g.positives)), *rates,
                     e(g.excluded) if g.excluded else ""])
    return _table(head, rows, "num")


def _rate_cell(value: float | None, base: float | None, has_base: bool) -> str:
    text = "undefined" if value is None else num(value)
    if has_base:
        text += f" ({'undefined' if base is None else num(base)})"
    return e(text)


def _robustness(panels: Sequence[cd.CurvePanel]) -> str:
    if not panels:
        return ""
    parts = [_curve_panel(p, i, i < MAX_CHARTS) for i, p in enumerate(cd.worst_first(panels))]
    return f'<section id="robustness"><h2>Robustness</h2>{"".join(parts)}</section>'


def _curve_panel(p: cd.CurvePanel, i: int, draw: bool) -> str:
    draw = draw and bool(p.series)  # a perturbation whose every point errored has nothing to plot
    svg = charts.severity_curves(p, f"ro{i}") if draw else ""
    items = "".join(f"<li>{status_chip(c['status'])} {_link(c['id'])}: {e(c.get('message', ''))}</li>"
                    for c in sort_checks(p.checks))
    return (f'{_article("robustness", i, draw)}<h3>{status_chip(p.status)} {e(p.title)}</h3>'
            f'<div class="panel">{_figure(svg)}<ul class="plain">{items}</ul></div></article>')


# ---------------------------------------------------------------- data, waivers, lineage


def _data_failures(checks: Sequence[Mapping[str, Any]]) -> str:
    failing = [c for c in sort_checks(checks) if c["gate"] == "data" and c["status"] in ATTENTION]
    if not failing:
        return ""
    parts = []
    for c in failing:
        details = c.get("details") or {}
        parts.append(f'<article class="data-check"><h3>{status_chip(c["status"])} {_link(c["id"])}</h3>'
                     f'<p>{e(c.get("message", ""))} <span class="muted">observed {e(num(c.get("observed")))}</span></p>'
                     f'{_rows("Examples", details.get("examples"))}'
                     f'{_rows("Unexpected values", details.get("unexpected_values"))}'
                     f'{_rows("Failure cases", details.get("failure_cases"))}</article>')
    return f'<section id="data"><h2>Data checks that need attention</h2>{"".join(parts)}</section>'


def _rows(title: str, items: Any) -> str:
    """Return example rows as a table: columns from dict rows, else one ``value`` column."""
    if not items or not isinstance(items, list):
        return ""
    if all(isinstance(x, Mapping) for x in items):
        cols = list(dict.fromkeys(k for x in items for k in x))
        body = [[e(_cell(x.get(k))) for k in cols] for x in items]
    else:
        cols, body = ["value"], [[e(_cell(x))] for x in items]
    return f"<h4>{e(title)}</h4>" + _table([e(c) for c in cols], body)


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return num(value)
    return str(value)


def _waivers(waivers: Sequence[Mapping[str, Any]]) -> str:
    if not waivers:
        return ""
    rows = [[_link(str(w.get("check"))) if w.get("used", True) else code(w.get("check")), e(w.get("reason", "")),
             e(w.get("by") or "—"), e(w.get("source") or "—"), e(w.get("expires") or "never"),
             "yes" if w.get("used", True) else "matched no check"] for w in waivers]
    table = _table(["check", "reason", "by", "source", "expires", "used"], rows)
    return f'<section id="waivers"><h2>Waivers</h2>{table}</section>'


def _lineage(report: Mapping[str, Any]) -> str:
    run, policy, model = report.get("run") or {}, report.get("policy") or {}, report["model"]
    pairs: list[tuple[str, str]] = [("tool", e(f"{report['tool']['name']} {report['tool']['version']}"))]
    pairs += [(f"{role} model", _artifact(m)) for role, m in (("candidate", model.get("candidate")),
                                                               ("production", model.get("baseline"))) if m]
    pairs += [(f"{name} data", _artifact(d)) for name, d in (report.get("data") or {}).items()]
    if policy:
        text = (f"{code(policy.get('path', '—'))} sha256 <code class=\"hash\">{e(policy.get('sha256', '—'))}</code>"
                f" · seed {e(policy.get('seed'))} · mode {e(policy.get('mode', 'enforce'))}")
        pairs.append(("policy", text))
    pairs += [("git commit", f"<code class=\"hash\">{e(run.get('git_sha') or '—')}</code>"),
              ("run", e(f"{run.get('id', '—')} · {run.get('started_at', '—')} → {run.get('finished_at', '—')}")),
              ("CI", _ci(run.get("ci") or {}))]
    reg = report.get("registration") or {}
    pairs.append(("registration", _registration(reg)))
    env = report.get("environment") or run.get("environment")
    if isinstance(env, Mapping):
        pairs.append(("environment", e(", ".join(f"{k} {v}" for k, v in env.items()))))
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in pairs)
    return f'<section id="lineage"><h2>Lineage</h2><div class="scroll"><table class="kv">{rows}</table></div></section>'


def _registration(reg: Mapping[str, Any]) -> str:
    if not reg.get("registered"):
        return "not registered" + (f": {e(reg['reason'])}" if reg.get("reason") else "")
    extra = ", ".join(f"{k} {_cell(v)}" for k, v in reg.items() if k not in ("registered", "version", "backend"))
    return e(f"version {reg.get('version')} in the {reg.get('backend')} registry" + (f" ({extra})" if extra else ""))


def _artifact(m: Mapping[str, Any]) -> str:
    bits = [code(m.get("uri", "—"))]
    if m.get("version") is not None:
        bits.append(f"version {e(m['version'])}")
    if m.get("rows") is not None:
        bits.append(f"{e(num(m['rows']))} rows")
    if m.get("format"):
        bits.append(e(m["format"]))
    bits.append(f"sha256 <code class=\"hash\">{e(m.get('sha256') or '—')}</code>")
    return " · ".join(bits)


def _ci(ci: Mapping[str, Any]) -> str:
    """Return the CI run as a link; only http(s) addresses become links (no ``javascript:``)."""
    url = str(ci.get("url") or "")
    platform = e(ci.get("platform") or "")
    if url.startswith(("https://", "http://")):
        return f'{platform} <a href="{e(url)}" rel="noopener noreferrer">{e(url)}</a>'
    return f"{platform} {e(url)}".strip() or "—"


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""

STYLE = """
:root{--fg:#1b1f24;--muted:#5f6b76;--line:#d8dee4;--bg:#f6f8fa;--card:#fff;--pass:#2e7d32;--fail:#c62828;
--inconclusive:#ad1457;--error:#6a1b9a;--warn:#e65100;--waived:#00838f;--skipped:#757575}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"DejaVu Sans",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:12px}
section,header{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:0 0 14px}
h1{font-size:1.35rem;margin:.2rem 0;overflow-wrap:anywhere}
h2{font-size:1.15rem;margin:.2rem 0 .6rem}
h3{font-size:1rem;margin:1rem 0 .4rem;overflow-wrap:anywhere}
h4{font-size:.9rem;margin:.8rem 0 .3rem}
code{font:.86em/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;overflow-wrap:break-word}
code.hash{word-break:break-all}
a{color:#0b5cad}
.banner{border-width:0 0 0 8px;border-style:solid}
.banner-pass{border-color:var(--pass);background:#edf7ee}
.banner-fail{border-color:var(--fail);background:#fdeeee}
.banner-incomplete{border-color:var(--warn);background:#fff3e0}
.verdict{font-weight:800;letter-spacing:.06em;margin:0;font-size:1.6rem}
.banner-pass .verdict{color:var(--pass)}
.banner-fail .verdict{color:var(--fail)}
.banner-incomplete .verdict{color:var(--warn)}
.chips,.plain{list-style:none;padding:0;margin:.4rem 0}
.chips li{display:inline-block;margin:0 .6rem .3rem 0}
.plain li{margin:.25rem 0;overflow-wrap:anywhere}
#blocking.failing{border-left:6px solid var(--fail)}
.blocking li{margin:.45rem 0}
.st{display:inline-block;min-width:4.6em;text-align:center;border-radius:4px;padding:0 .35em;color:#fff;
font-size:.75rem;font-weight:700;letter-spacing:.03em;line-height:1.6;vertical-align:.08em}
.st-pass{background:var(--pass)}.st-fail{background:var(--fail)}.st-inconclusive{background:var(--inconclusive)}
.st-error{background:var(--error)}.st-warn{background:var(--warn)}.st-waived{background:var(--waived)}
.st-skipped{background:var(--skipped)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.3rem 0}
table{border-collapse:collapse;font-size:.86rem;min-width:100%}
th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
table.num td{font-variant-numeric:tabular-nums}
table.checks td:nth-child(2){min-width:18rem}
table.checks td:nth-child(n+3){font-variant-numeric:tabular-nums}
table.checks td:nth-child(-n+5){white-space:nowrap}
table.checks td:nth-child(2){white-space:normal}
table.kv th{width:9rem;background:none;vertical-align:top}
.msg{color:var(--muted);font-size:.82rem;overflow-wrap:anywhere}
.muted{color:var(--muted);font-size:.82rem}
.better{color:var(--pass)}.worse{color:var(--fail)}
figure.chart{margin:.6rem auto;text-align:center;max-width:640px}
figure.chart svg{width:100%;height:auto;display:block}
.perf{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr));gap:14px 26px}
.perf figure.chart{margin:0;max-width:none;text-align:left}
.perf figure.wide{grid-column:1/-1}
.perf h3{margin:.2rem 0 .3rem}
.cells{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,380px),1fr));gap:10px 18px}
.cell{min-width:0}
.panel figure.chart{margin:.3rem 0}
figcaption{color:var(--muted);font-size:.82rem;text-align:left;margin-top:.3rem}
article+article{border-top:1px solid var(--line);padding-top:.4rem}
@media (min-width:900px){body{font-size:16px}main{padding:24px}section,header{padding:18px 24px}}
@media (min-width:1180px){.panel{display:grid;grid-template-columns:minmax(0,600px) minmax(0,1fr);gap:20px;
align-items:start}}
@media (max-width:640px){main{padding:6px}section,header{padding:10px;border-radius:6px}.verdict{font-size:1.35rem}
table.checks thead{display:none}
table.checks,table.checks tbody,table.checks tr,table.checks td{display:block;min-width:0}
table.checks tr{border-bottom:1px solid var(--line);padding:.45rem 0}
table.checks td{border:0;padding:.1rem 0;white-space:normal!important}
table.checks td[data-label]{display:inline-block;margin-right:.9rem}
table.checks td[data-label]::before{content:attr(data-label) " ";color:var(--muted);font-size:.78rem}
table.checks td.empty{display:none}
table.checks td:first-child{float:right;margin-left:.5rem}
table.kv th{width:auto;padding-left:0}
th{white-space:normal}th,td{padding:.3rem .3rem}}
"""
