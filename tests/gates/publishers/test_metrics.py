"""metrics.txt: parsed back with prometheus_client's OpenMetrics parser (an independent reader)."""
from __future__ import annotations

import pytest

from gates.publishers.metrics import METRICS_FILE, render_metrics, write_metrics
from tests.gates.publishers.reports import check, report

parser = pytest.importorskip("prometheus_client.openmetrics.parser")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in parser.text_string_to_metric_families(text):
        assert family.type == "gauge"
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_number_of_the_report_is_a_sample():
    checks = [check("regression.roc_auc.max_drop", "fail", observed=0.8125),
              check('fairness.tpr_difference.max[sex&"odd"\\name]', "pass", observed=0.03),
              check("data.row_count.min", "pass", observed=12000),
              check("robustness.flip_rate.max[missing=0.1]", "error", observed=None)]
    checks[0]["delta"] = -0.0105
    rep = report(checks)
    got = samples(render_metrics(rep))
    model = ("model", "credit-risk")
    assert got[("model_gates_verdict", (model,))] == 0.0
    assert got[("model_gates_checks", (model, ("status", "fail")))] == 1
    assert got[("model_gates_checks", (model, ("status", "pass")))] == 2
    assert got[("model_gates_checks", (model, ("status", "waived")))] == 0
    assert got[("model_gates_observed", (("check", "regression.roc_auc.max_drop"), model))] == 0.8125
    assert got[("model_gates_observed", (("check", 'fairness.tpr_difference.max[sex&"odd"\\name]'), model))] == 0.03
    assert got[("model_gates_observed", (("check", "data.row_count.min"), model))] == 12000
    assert got[("model_gates_delta", (("check", "regression.roc_auc.max_drop"), model))] == -0.0105
    assert ("model_gates_observed", (("check", "robustness.flip_rate.max[missing=0.1]"), model)) not in got
    assert sum(1 for k in got if k[0] == "model_gates_baseline") == 4  # every check has a baseline value


def test_a_passing_report_and_the_file():
    rep = report([check("regression.accuracy.min", "pass")])
    assert samples(render_metrics(rep))[("model_gates_verdict", (("model", "credit-risk"),))] == 1.0


def test_write_metrics_creates_the_folder(tmp_path):
    path = write_metrics(report(), tmp_path / "out")
    assert path == tmp_path / "out" / METRICS_FILE and path.read_text().endswith("# EOF\n")
