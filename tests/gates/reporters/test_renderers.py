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


def test_markdown_lists_failures_first_and_group_table():
    md = render_markdown(SAMPLE)
    rows = [line for line in md.splitlines() if line.startswith("| ") and "`" in line]
    assert "regression.roc_auc.max_drop" in rows[1] or "fairness" in rows[0]
    assert rows[0].startswith("| ❌ FAIL")
    assert "| sex=X | 12 |" in md and "size 12 < min_group_size 30" in md
    assert "upstream backfill pending" in md


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
