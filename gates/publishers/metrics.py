"""The GitLab metrics report (``metrics.txt``): a report's numbers in the OpenMetrics text format.

GitLab shows these in the merge-request widget next to the target branch's values, so a
reviewer sees how the candidate's metrics moved (docs.gitlab.com, "Metrics reports").
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gates.reporters._format import STATUS_ORDER

METRICS_FILE = "metrics.txt"
#: (family, help) in the order written; each check value family holds one sample per check
FAMILIES = (
    ("model_gates_verdict", "1 when every blocking check passed, 0 otherwise."),
    ("model_gates_checks", "Number of checks with each status."),
    ("model_gates_observed", "The candidate's value of each check."),
    ("model_gates_baseline", "The baseline's value of each check."),
    ("model_gates_delta", "Candidate minus baseline, for baseline-relative checks."),
)


def render_metrics(report: Mapping[str, Any]) -> str:
    """Return ``report`` as OpenMetrics text: verdict, status counts and every check's numbers."""
    model = str(report["model"]["name"])
    lines: list[str] = []
    for family, help_text in FAMILIES:
        samples = list(_samples(family, report, model))
        if not samples:
            continue
        lines += [f"# TYPE {family} gauge", f"# HELP {family} {help_text}"]
        lines += [f"{family}{{{_labels(labels)}}} {_value(value)}" for labels, value in samples]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def write_metrics(report: Mapping[str, Any], folder: Path) -> Path:
    """Write ``metrics.txt`` into ``folder`` (atomically) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / METRICS_FILE
    tmp = folder / f".{METRICS_FILE}.tmp"
    tmp.write_text(render_metrics(report), encoding="utf-8")
    tmp.replace(path)
    return path


def _samples(family: str, report: Mapping[str, Any], model: str) -> Iterator[tuple[dict[str, str], float]]:
    if family == "model_gates_verdict":
        yield {"model": model}, 1.0 if report["verdict"] == "pass" else 0.0
    elif family == "model_gates_checks":
        counts = {s: 0 for s in STATUS_ORDER}
        for check in report.get("checks", []):
            counts[check["status"]] = counts.get(check["status"], 0) + 1
        for status, n in counts.items():
            yield {"model": model, "status": status}, float(n)
    else:
        key = family.removeprefix("model_gates_")
        for check in report.get("checks", []):
            value = check.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                yield {"model": model, "check": check["id"]}, float(value)


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


def _escape(text: str) -> str:
    """Escape a label value as OpenMetrics requires: backslash, double quote, line feed."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)
