"""How much report.html and the Mermaid charts add to a run: CPU seconds, sizes.

    python bench/bench_reports.py

Measures CPU time (``time.process_time``; the development machine is shared, so wall time is
noisy) of importing matplotlib in a fresh interpreter, rendering the hand-written all-gates
fixture, and rendering a large synthetic report (many interval checks, fairness intersections,
perturbations), against the cost of matplotlib's own ``savefig`` for the same figures.
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


def cold_import_seconds() -> float:
    code = "import time; t = time.process_time(); import matplotlib.figure; print(time.process_time() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def savefig_share(report: dict[str, Any]) -> float:
    """Return the CPU seconds spent inside matplotlib's savefig while rendering ``report``."""
    from matplotlib.figure import Figure

    spent = 0.0
    original = Figure.savefig

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal spent
        start = time.process_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent += time.process_time() - start

    Figure.savefig = timed  # type: ignore[method-assign]
    try:
        from gates.reporters.html import render_html

        render_html(report)
    finally:
        Figure.savefig = original  # type: ignore[method-assign]
    return spent


def main() -> None:
    from gates.reporters.html import render_html
    from gates.reporters.markdown import render_markdown

    render_html(FIXTURE)  # warm: imports, font cache
    big = big_report()
    rows = [("matplotlib import, fresh interpreter", f"{cold_import_seconds():.2f} s")]
    for name, report in (("fixture", FIXTURE), ("large", big)):
        html = render_html(report)
        charts = html.count("<svg")
        seconds, share = cpu(render_html, report), savefig_share(report)
        rows.append((f"render_html, {name}: {len(report['checks'])} checks, {charts} charts",
                     f"{seconds:.2f} s CPU, {len(html) / 1024:.0f} KiB, savefig {share:.2f} s of it"))
        md = render_markdown(report)
        md_ms = cpu(render_markdown, report) * 1000
        rows.append((f"render_markdown with Mermaid, {name}", f"{md_ms:.1f} ms, {len(md) / 1024:.1f} KiB"))
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
