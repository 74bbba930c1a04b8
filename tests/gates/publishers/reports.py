"""Hand-made report dicts (valid per gates/schemas/report.schema.json) for publisher tests."""
from __future__ import annotations

from typing import Any

import jsonschema

from gates.reporters.json_report import report_schema

POLICY_YAML = """\
version: 1
model:
  name: credit-risk
  task: binary_classification
  candidate: {predictions: cand_pred, scores: cand_score}
  baseline: {predictions: base_pred, scores: base_score}
data:
  eval: eval.csv
  target: label
gates:
  regression:
    metrics:
      roc_auc:
        min: 0.8
        max_drop: 0.005
      accuracy: {min: 0.7}
  fairness:
    groups: [sex]
    metrics:
      demographic_parity_ratio: {min: 0.8}
"""
#: 1-based lines of keys in POLICY_YAML, counted by hand
LINE_REGRESSION = 11
LINE_ROC_AUC_MAX_DROP = 15
LINE_ACCURACY = 16
LINE_DP_RATIO = 20


def check(cid: str, status: str, *, blocking: bool = True, observed: float | None = 0.81,
          message: str = "measured") -> dict[str, Any]:
    return {"id": cid, "gate": cid.split(".")[0], "status": status, "blocking": blocking,
            "observed": observed, "baseline": 0.82, "threshold": {"min": 0.8}, "message": message,
            "details": {}}


def report(checks: list[dict[str, Any]] | None = None, *, verdict: str | None = None, model: str = "credit-risk",
           mode: str = "enforce", registered_version: int | None = None) -> dict[str, Any]:
    """Return a report; the verdict follows the checks unless given."""
    checks = checks if checks is not None else [
        check("regression.roc_auc.max_drop", "fail", message="AUC dropped by 0.02 (> 0.005)"),
        check("regression.accuracy.min", "pass"),
        check("fairness.demographic_parity_ratio.min[sex]", "warn", blocking=False),
    ]
    failed = any(c["status"] in ("fail", "inconclusive") or (c["status"] == "error" and c["blocking"])
                 for c in checks)
    summary: dict[str, int] = {}
    for c in checks:
        summary[c["status"]] = summary.get(c["status"], 0) + 1
    registration: dict[str, Any] = {"registered": False, "reason": "gates failed"}
    if registered_version is not None:
        registration = {"registered": True, "backend": "local", "version": registered_version, "aliases": ["staging"]}
    out = {
        "schema_version": 1, "tool": {"name": "model-gates", "version": "0.1.0"},
        "run": {"id": "r1", "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:05+00:00",
                "git_sha": "abc", "ci": {}},
        "policy": {"path": "gates.yaml", "sha256": "f" * 64, "mode": mode, "seed": 7},
        "model": {"name": model, "task": "binary_classification",
                  "candidate": {"uri": "cand.skops", "sha256": "a" * 64, "format": "skops"},
                  "baseline": {"uri": "registry:production", "version": 3, "sha256": "b" * 64}},
        "data": {"eval": {"uri": "eval.csv", "sha256": "c" * 64, "rows": 5000}},
        "verdict": verdict or ("fail" if failed else "pass"),
        "summary": summary,
        "checks": checks,
        "waivers": [],
        "registration": registration,
    }
    jsonschema.Draft7Validator(report_schema()).validate(out)
    return out


def many_failures(n: int) -> dict[str, Any]:
    """Return a failing report with ``n`` failed checks (to exceed per-request limits)."""
    return report([check(f"regression.roc_auc.min[slice={i}]", "fail", message=f"slice {i} too low")
                   for i in range(n)])


#: values as real slices and groups hold them: Greek, CJK, Hangul, a flag, an emoji with a skin tone and
#: joiners, a combining accent, the minus sign (3 bytes in UTF-8)
WORLD = ["Ελλάδα", "北京市", "東京都", "서울", "🇬🇷", "👩🏽‍💻", "São Paulo", "Ⅻ−Ⅸ", "e\u0301cole"]


def multibyte_report(n: int, groups: int = 12) -> dict[str, Any]:
    """Return a failing report of ``n`` fairness checks whose ids, messages and group values are
    mostly multi-byte text (each UTF-8 character 2 to 4 bytes)."""
    checks = []
    for i in range(n):
        value = WORLD[i % len(WORLD)]
        c = check(f"fairness.selection_rate.max[περιοχή={value.replace(' ', '_')}{i}]", "fail",
                  message=f"selection rate − baseline = −0.{i:03d} in «{value}» (区域 {i}，低于基线) 📉")
        c["details"] = {"groups": [{"group": {"περιοχή": "·".join(WORLD[(i + j + k) % len(WORLD)]
                                                              for k in range(4))},
                                    "size": 100 + j,
                                    "metrics": {"selection_rate": 0.5}} for j in range(groups)]}
        checks.append(c)
    return report(checks)
