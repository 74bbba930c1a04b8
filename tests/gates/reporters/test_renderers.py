"""Markdown, JUnit and terminal renderings of a fixed report, compared with golden files.

Refresh the golden files on purpose with: ``MODEL_GATES_UPDATE_GOLDEN=1 pytest tests/gates/reporters``.
"""
from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from gates.reporters import renderer
from gates.reporters.json_report import report_schema
from gates.reporters.markdown import render_markdown
from gates.reporters.terminal import render_terminal

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
SAMPLE = json.loads((GOLDEN / "report_sample.json").read_text())


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MODEL_GATES_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; refresh on purpose if intended"


def test_sample_is_a_valid_report():
    jsonschema.Draft7Validator(report_schema()).validate(SAMPLE)


@pytest.mark.parametrize("fmt, name", [("md", "report_sample.md"), ("junit", "report_sample.xml")])
def test_golden(fmt, name):
    golden(name, renderer(fmt)(SAMPLE))


def test_terminal_golden():
    golden("report_sample.txt", render_terminal(SAMPLE, width=160))


def test_markdown_opens_with_the_blocking_failures_then_checks_by_gate():
    import re

    md = render_markdown(SAMPLE)
    # the blocking list: exactly the blocking checks whose status fails the verdict, worst first
    expected = [c["id"] for c in SAMPLE["checks"] if c["blocking"] and c["status"] in ("fail", "inconclusive", "error")]
    listed = re.findall(r"^- \S+ \w+ \[`([^`]+)`\]\(#([\w-]+)\): (.*)$", md, flags=re.M)
    assert sorted(i for i, _, _ in listed) == sorted(expected) and listed[0][0].startswith("fairness")
    assert md.index("**Blocking checks that fail (2)**") < md.index("| | check |")
    # each link lands on its row, and every anchor is unique
    anchors = re.findall(r'<a id="([\w-]+)"></a>`([^`]+)`', md)
    assert len({a for a, _ in anchors}) == len(anchors) == len(SAMPLE["checks"])
    row_of = {cid: a for a, cid in anchors}
    messages = {c["id"]: c["message"] for c in SAMPLE["checks"]}
    for cid, anchor, message in listed:
        assert row_of[cid] == anchor and message == messages[cid]
    # then one table per gate, in gate order, each gate's checks worst first
    heads = re.findall(r"^#### (\w+) · ", md, flags=re.M)
    assert heads == ["data", "regression", "fairness", "robustness"]
    regression = md.split("#### regression")[1].split("####")[0]
    assert regression.index("INCONCLUSIVE") < regression.index("WARN") < regression.index("SKIP") < regression.index("PASS")
    assert "| sex=X | 12 |" in md and "size 12 < min_group_size 30" in md
    assert "upstream backfill pending" in md


def test_markdown_of_a_passing_run_says_nothing_blocks():
    passing = {**SAMPLE, "verdict": "pass",
               "checks": [c for c in SAMPLE["checks"] if c["status"] not in ("fail", "inconclusive")]}
    md = render_markdown(passing)
    assert "**No blocking check fails.**" in md and "Blocking checks that fail" not in md


def _skipped(n: int, reason: str, gate: str = "regression") -> list[dict]:
    return [{"id": f"{gate}.roc_auc.max_drop[region=r{i}]", "gate": gate, "status": "skipped", "blocking": True,
             "observed": None, "baseline": None, "threshold": {"max_drop": 0.01}, "reason": reason,
             "message": f"{reason} for r{i}", "details": {}} for i in range(n)]


def test_terminal_folds_skipped_checks_by_gate_and_reason_unless_verbose():
    checks = [*SAMPLE["checks"], *_skipped(5, "no_baseline"), *_skipped(3, "no_baseline", "robustness"),
              *_skipped(2, "too_few_rows")]
    report = {**SAMPLE, "checks": checks}
    short = render_terminal(report, width=160)
    skip_lines = [line for line in short.splitlines() if line.startswith("SKIP")]
    # one line per (gate, reason): the sample's own slice_too_small, then the three added groups
    assert len(skip_lines) == 4
    assert "regression: 5 checks (no_baseline), e.g. regression.roc_auc.max_drop[region=r0]" in short
    assert "robustness: 3 checks (no_baseline)" in short and "regression: 2 checks (too_few_rows)" in short
    assert "no_baseline for r3" not in short
    assert "11 skipped checks are folded by gate and reason; --verbose lists each" in short
    full = render_terminal(report, width=160, verbose=True)
    assert sum(1 for line in full.splitlines() if line.startswith("SKIP")) == 11
    assert all(f"no_baseline for r{i}" in full for i in range(5)) and "--verbose" not in full
    # folded or not, the order is failures first and the verdict line is the same
    assert short.splitlines()[-1] == full.splitlines()[-1]
    assert short.index("FAIL") < short.index("SKIP") < short.index("PASS")


def test_markdown_truncates_passing_rows_first():
    full = render_markdown(SAMPLE)
    short = render_markdown(SAMPLE, max_chars=len(full) - 50)
    assert len(short) <= len(full) - 50
    assert "fairness.equalized_odds_difference.max[sex]" in short
    assert "more passing checks are in report.json" in short


def test_junit_counts_and_mapping():
    root = ET.fromstring(renderer("junit")(SAMPLE).split("\n", 1)[1])
    cases = {tc.get("name"): tc for tc in root.iter("testcase")}
    assert len(cases) == len(SAMPLE["checks"])
    assert cases["fairness.equalized_odds_difference.max[sex]"].find("failure") is not None
    assert cases["regression.roc_auc.max_drop"].find("failure").get("type") == "inconclusive"
    assert cases["regression.accuracy.max_drop[region=EU]"].find("skipped") is not None
    assert cases["data.not_null[income]"].find("system-out").text.startswith("WAIVED")
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["model-gates.regression"].get("failures") == "1"
    assert suites["model-gates.regression"].get("skipped") == "1"
