"""Mermaid charts in the Markdown report: they parse, show the right numbers, and yield to size limits.

Two checks of syntax: a structural parser of the ``xychart-beta`` subset we emit (always runs),
and Mermaid's own parser through ``mmdc`` (``@mermaid-js/mermaid-cli``) when it is installed:

    PUPPETEER_SKIP_DOWNLOAD=1 npm install -g @mermaid-js/mermaid-cli   # uses the system chromium

``mmdc`` is looked up as ``$MMDC`` or on PATH; the test is skipped with that hint otherwise.
Refresh the golden file on purpose with ``MODEL_GATES_UPDATE_GOLDEN=1 pytest tests/gates/reporters``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gates.reporters.markdown import render_markdown
from gates.reporters.mermaid import mermaid_charts, number, quoted

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
REPORT = json.loads((GOLDEN / "report_all_gates.json").read_text())
SAMPLE = json.loads((GOLDEN / "report_sample.json").read_text())
BLOCK = re.compile(r"```mermaid\n(.*?)\n```", re.DOTALL)
#: Mermaid's xychart lexer: a quoted string has no double quote; numbers have no exponent
STRING = r'"[^"\n]*"'
NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"


def parse_xychart(block: str) -> dict[str, Any]:
    """Parse the xychart-beta subset we emit; raise AssertionError on anything else."""
    lines = block.splitlines()
    init = re.fullmatch(r"%%\{init: (.*)\}%%", lines[0])
    assert init, lines[0]
    config = json.loads(init[1])
    assert lines[1] == "xychart-beta"
    chart: dict[str, Any] = {"config": config, "series": []}
    for line in lines[2:]:
        assert line.startswith("  "), line
        line = line.strip()
        if m := re.fullmatch(rf"title ({STRING})", line):
            chart["title"] = m[1][1:-1]
        elif m := re.fullmatch(rf"x-axis(?: ({STRING}))? \[((?:{STRING})(?:, {STRING})*)\]", line):
            chart["x"] = [s[1:-1] for s in re.findall(STRING, m[2])]
        elif m := re.fullmatch(rf"y-axis ({STRING}) ({NUMBER}) --> ({NUMBER})", line):
            chart["y"] = (m[1][1:-1], float(m[2]), float(m[3]))
        elif m := re.fullmatch(rf"(bar|line) \[((?:{NUMBER})(?:, {NUMBER})*)\]", line):
            chart["series"].append((m[1], [float(v) for v in m[2].split(", ")]))
        else:
            raise AssertionError(f"not xychart-beta as we emit it: {line!r}")
    assert {"title", "x", "y"} <= set(chart) and chart["series"]
    lo, hi = chart["y"][1:]
    for _, values in chart["series"]:
        assert len(values) == len(chart["x"])
        assert all(lo <= v <= hi for v in values), (values, lo, hi)
    palette = config["themeVariables"]["xyChart"]["plotColorPalette"].split(", ")
    assert len(palette) == len(chart["series"])
    return chart


@pytest.fixture(scope="module")
def charts() -> list[dict[str, Any]]:
    return [parse_xychart(b) for b in BLOCK.findall(mermaid_charts(REPORT))]


def test_roc_curve_of_both_models_read_at_fixed_false_positive_rates(charts):
    roc = charts[0]
    assert roc["title"] == "ROC curve" and roc["x"][0] == "0" and roc["x"][-1] == "1" and len(roc["x"]) == 21
    assert roc["y"] == ("true positive rate", 0.0, 1.0)
    (_, cand), (_, base), (_, chance) = roc["series"]
    grid = [float(x) for x in roc["x"]]
    for values, role in ((cand, "candidate"), (base, "baseline")):
        curve = REPORT["curves"]["roc"][0][role]
        # independent reading: the highest true positive rate at or left of each grid rate
        expected = [max(t for f, t in zip(curve["fpr"], curve["tpr"]) if f <= g + 1e-12) for g in grid]
        assert values == pytest.approx(expected, abs=1e-4)
    assert chance == grid
    md = render_markdown(REPORT)
    auc = REPORT["curves"]["roc"][0]["candidate"]["auc"]
    assert f"blue = candidate (AUC {auc:.3f})" in md


def test_regression_reports_draw_residual_bars():
    from gates.curves import residual_histograms

    rng = np.random.default_rng(0)
    y = rng.normal(size=2000)
    curves = {"residuals": json.loads(json.dumps(residual_histograms(y, {"candidate": y + rng.normal(0, .3, 2000),
                                                                        "baseline": y + rng.normal(0, .5, 2000)})))}
    [chart] = [parse_xychart(b) for b in BLOCK.findall(mermaid_charts({"checks": [], "curves": curves}))]
    (kind_c, bars), (kind_b, line) = chart["series"]
    assert (kind_c, kind_b) == ("bar", "line") and sum(bars) == sum(line) == 2000
    assert chart["title"].startswith("Residuals")


def test_worst_fairness_check_as_bars(charts):
    bars = charts[1]
    # the failing eod check on sex: tpr has the widest gap (0.8 - 0.66); group X's tpr is undefined
    assert bars["title"] == "tpr by sex"
    assert bars["x"] == ["F n=512", "M n=600"]
    assert bars["series"] == [("bar", [0.66, 0.8])]
    assert bars["y"] == ("tpr", 0.0, 1.0)


def test_worst_robustness_curve_as_lines(charts):
    curve = charts[2]
    assert curve["title"] == "accuracy under gaussian_noise on age, income"
    assert curve["x"] == ["0", "0.05", "0.1", "0.2"]
    candidate, production, limit = (values for _, values in curve["series"])
    assert candidate == [0.86, 0.84, 0.82, 0.77]  # clean metric, then each severity
    assert production == pytest.approx([0.85 + 0.01, 0.85, 0.845, 0.83])  # clean = value + drop
    assert limit == pytest.approx([0.86 - 0.05] * 4)  # max_drop 0.05 below the clean metric


def test_markdown_carries_the_charts_before_the_footer():
    md = render_markdown(REPORT)
    assert md.count("```mermaid") == 3
    assert md.index("```mermaid") > md.index("<details>")
    assert md.index("```mermaid") < md.index("**Waivers**") < md.index("<sub>model-gates")
    assert "sex=&lt;X &amp; \"Y\"&gt;" in md  # group text in prose is escaped for GitHub


def test_charts_are_dropped_before_failing_rows():
    full = render_markdown(REPORT)
    failing = [c["id"] for c in REPORT["checks"] if c["status"] != "pass"]
    without_passing = render_markdown(REPORT, max_chars=len(full) - 1)
    assert "```mermaid" in without_passing  # passing rows go first
    limit = len(without_passing) - 1
    short = render_markdown(REPORT, max_chars=limit)
    assert len(short) <= limit and "```mermaid" not in short and "**Charts**" not in short
    assert all(f"`{cid}`" in short for cid in failing)
    assert "<details>" in short  # details outlive the charts


def test_no_charts_without_fairness_groups_or_curves():
    checks = [c for c in REPORT["checks"] if c["gate"] in ("data", "regression")]
    assert mermaid_charts({**REPORT, "checks": checks, "curves": {}}) == ""


def test_labels_and_numbers_stay_inside_the_grammar():
    assert quoted('a "b"\nc %% d') == "\"a 'b' c % d\""
    assert quoted("x" * 40) == '"' + "x" * 21 + '…"'
    assert [number(v) for v in (1e-05, -0.0, 0.8, 2.0, -1.5e-7)] == ["0.00001", "0", "0.8", "2", "0"]


def test_golden():
    text = mermaid_charts(REPORT)
    path = GOLDEN / "report_all_gates.charts.md"
    if os.environ.get("MODEL_GATES_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), "refresh on purpose if intended"


# ---------------------------------------------------------------- Mermaid's own parser


def _mmdc() -> str | None:
    """Find mmdc: $MMDC, PATH, or the test-tool cache that scripts/test-tools.sh fills."""
    from tests.contracts.node_tools import node_dir

    cached = node_dir() / "node_modules" / ".bin" / "mmdc"
    return os.environ.get("MMDC") or shutil.which("mmdc") or (str(cached) if cached.exists() else None)


def _chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


needs_mmdc = pytest.mark.skipif(
    _mmdc() is None or _chromium() is None,
    reason="mermaid-cli or chromium missing: run scripts/test-tools.sh (or set $MMDC)")


def _run_mmdc(markdown: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "puppeteer.json"
    config.write_text(json.dumps({"executablePath": _chromium(),
                                  "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}))
    (tmp_path / "in.md").write_text(markdown, encoding="utf-8")
    (tmp_path / "out").mkdir()
    return subprocess.run([_mmdc(), "-p", str(config), "-i", str(tmp_path / "in.md"), "-o", str(tmp_path / "out" / "out.md")],
                          capture_output=True, text=True, timeout=180, check=False)


@needs_mmdc
def test_mermaid_cli_renders_every_block(tmp_path: Path):
    md = render_markdown(REPORT) + render_markdown(SAMPLE)
    result = _run_mmdc(md, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    svgs = sorted((tmp_path / "out").glob("*.svg"))
    assert len(svgs) == md.count("```mermaid") == 5
    assert all("<svg" in p.read_text() for p in svgs)


@needs_mmdc
def test_mermaid_cli_rejects_a_broken_chart(tmp_path: Path):
    broken = mermaid_charts(REPORT).replace("bar [0.66, 0.8]", "bar [0.66, oops]")
    assert _run_mmdc(broken, tmp_path).returncode != 0


def test_among_equal_statuses_the_widest_gap_wins_and_intersections_show_values():
    checks = [{**c, "status": "fail"} if c["gate"] == "fairness" else c for c in REPORT["checks"]]
    [bars] = [parse_xychart(b) for b in BLOCK.findall(mermaid_charts({**REPORT, "checks": checks}))][1:2]
    # race&sex selection rates spread 0.41 - 0.18 = 0.23 over included groups; sex's tpr only 0.14
    assert bars["title"] == "selection_rate by race · sex"
    assert bars["x"][0] == "asian·F n=240"
    assert "other $50k·F n=22 (excl.)" in bars["x"]
    assert bars["series"] == [("bar", [0.41, 0.22, 0.35, 0.18, 0.38, 0.29, 0.5, 0.33])]
