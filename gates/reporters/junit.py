"""JUnit XML: one testcase per check, grouped in one testsuite per gate."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from gates.reporters._format import interval, num, threshold


def render_junit(report: Mapping[str, Any]) -> str:
    """Return JUnit XML; fail/inconclusive are failures, error is an error, skipped is skipped.

    ``warn`` and ``waived`` checks pass, with the reason in ``system-out``.
    """
    root = ET.Element("testsuites", name="model-gates", tests=str(len(report["checks"])))
    suites: dict[str, ET.Element] = {}
    totals: dict[str, dict[str, int]] = {}
    for c in report["checks"]:
        gate = c["gate"]
        if gate not in suites:
            suites[gate] = ET.SubElement(root, "testsuite", name=f"model-gates.{gate}")
            totals[gate] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        _testcase(suites[gate], c, totals[gate])
    for gate, suite in suites.items():
        for k, v in totals[gate].items():
            suite.set(k, str(v))
    props = ET.SubElement(root, "properties")
    ET.SubElement(props, "property", name="verdict", value=report["verdict"])
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _testcase(suite: ET.Element, c: Mapping[str, Any], totals: dict[str, int]) -> None:
    case = ET.SubElement(suite, "testcase", classname=f"model-gates.{c['gate']}", name=c["id"])
    totals["tests"] += 1
    status = c["status"]
    text = failure_text(c)
    if status in ("fail", "inconclusive"):
        totals["failures"] += 1
        ET.SubElement(case, "failure", message=c["message"], type=status).text = text
    elif status == "error":
        totals["errors"] += 1
        ET.SubElement(case, "error", message=c["message"], type="error").text = text
    elif status == "skipped":
        totals["skipped"] += 1
        ET.SubElement(case, "skipped", message=c["message"])
    elif status in ("warn", "waived"):
        ET.SubElement(case, "system-out").text = f"{status.upper()}: {text}"


def failure_text(c: Mapping[str, Any]) -> str:
    """Return 'observed X vs threshold Y (interval ...)' plus the message, for any renderer."""
    parts = [f"observed {num(c.get('observed'))}"]
    if c.get("baseline") is not None:
        parts.append(f"baseline {num(c.get('baseline'))}")
    if c.get("delta") is not None:
        parts.append(f"delta {num(c.get('delta'))}")
    parts.append(f"threshold {threshold(c.get('threshold', {}))}")
    if c.get("ci"):
        parts.append(f"interval {interval(c.get('ci'))} ({c.get('ci_method', '')})")
    return "; ".join(parts) + f"\n{c['message']}"
