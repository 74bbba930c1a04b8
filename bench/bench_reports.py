"""How much report.html and the Mermaid charts add to a run: CPU seconds, sizes.

    python bench/bench_reports.py

Measures CPU time (``time.process_time``; the development machine is shared, so wall time is
noisy) of rendering the hand-written all-gates fixture (performance, drift, interval, fairness and
robustness charts, all SVG written directly by ``gates.reporters.svg``) and a large synthetic report
(many interval checks, fairness intersections, perturbations). For comparison, when matplotlib is
installed: its import in a fresh interpreter, and the same ROC chart drawn with matplotlib's
``Figure`` and ``backend_svg`` (no pyplot), the cheapest way it offers.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIXTURE = json.loads((REPO / "tests" / "golden" / "report_all_gates.json").read_text())


def big_report(copies: int = 6) -> dict[str, Any]:
    """Return the fixture with every chartable check repeated ``copies`` times under new scopes."""
    report = copy.deepcopy(FIXTURE)
    extra = []
    for i in range(1, copies):
        for c in FIXTURE["checks"]:
            c2 = copy.deepcopy(c)
            c2["id"] = c["id"].replace("[", f"[s{i}:") if "[" in c["id"] else f"{c['id']}[s{i}]"
            if c2["details"].get("perturbation"):
                c2["details"]["perturbation"] += f"_{i}"
            extra.append(c2)
    report["checks"] += extra
    return report


def cpu(fn: Any, *args: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - start)
    return best


def cold_import_seconds() -> float | None:
    code = ("import time; t = time.process_time(); import matplotlib.figure, matplotlib.backends.backend_svg; "
            "print(time.process_time() - t)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return float(done.stdout) if done.returncode == 0 else None


def matplotlib_roc_seconds(curves: dict[str, Any]) -> float:
    """CPU seconds of drawing the fixture's ROC chart (two lines, legend, diagonal) with Figure + backend_svg."""
    import io

    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    roc = curves["roc"][0]

    def draw() -> None:
        fig = Figure(figsize=(4.2, 3.0))
        FigureCanvasSVG(fig)
        ax = fig.subplots()
        for role, style in (("candidate", "-"), ("baseline", "--")):
            ax.plot(roc[role]["fpr"], roc[role]["tpr"], style, label=role)
        ax.plot([0, 1], [0, 1], ":")
        ax.legend()
        fig.savefig(io.StringIO(), format="svg")

    return cpu(draw)


def main() -> None:
    from gates.reporters import _chartdata as cd
    from gates.reporters import charts
    from gates.reporters.html import render_html
    from gates.reporters.markdown import render_markdown

    render_html(FIXTURE)  # warm
    big = big_report()
    rows = []
    for name, report in (("fixture", FIXTURE), ("large", big)):
        html = render_html(report)
        seconds = cpu(render_html, report)
        rows.append((f"render_html, {name}: {len(report['checks'])} checks, {html.count('<svg')} SVG charts",
                     f"{seconds * 1000:.1f} ms CPU, {len(html) / 1024:.0f} KiB"))
        md = render_markdown(report)
        md_ms = cpu(render_markdown, report) * 1000
        rows.append((f"render_markdown with Mermaid, {name}", f"{md_ms:.1f} ms, {len(md) / 1024:.1f} KiB"))
    roc = cd.curve_charts(FIXTURE["curves"], "roc")[0]
    rows.append(("one ROC chart, direct SVG", f"{cpu(charts.roc_chart, roc, 'r') * 1000:.2f} ms CPU"))
    imported = cold_import_seconds()
    if imported is None:
        rows.append(("matplotlib (for comparison)", "not installed"))
    else:
        rows.append(("matplotlib.figure + backend_svg import, fresh interpreter (for comparison)", f"{imported:.2f} s CPU"))
        rows.append(("the same ROC chart with matplotlib Figure + backend_svg, no pyplot (for comparison)",
                     f"{matplotlib_roc_seconds(FIXTURE['curves']) * 1000:.0f} ms CPU"))
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
