"""``model-gates calibrate`` through the command line: table, JSON, agreement with ``run``, errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gates.calibration import MSG_NO_BASELINE
from gates.cli import main
from gates.commands.calibrate import (
    COLUMNS,
    MSG_NO_RUNS,
    MSG_NOTHING,
    MSG_REGISTRY_WITHOUT_HISTORY,
)
from tests.conftest import scored_frame

METRICS = "roc_auc: {min: 0.6, max_drop: 0.01}\naccuracy: {max_drop: 0.03}\nf1: {max_relative_drop: 0.05, severity: warn}"


@pytest.fixture
def policy(write_policy) -> Path:
    return write_policy(METRICS, frame=scored_frame(3000, seed=4))


def calibrate(path: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["calibrate", "-c", str(path), "--simulations", "400", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_table_lists_every_baseline_relative_check_with_advice(policy, capsys):
    code, out, err = calibrate(policy, capsys=capsys)
    assert code == 0, err
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("check "))
    assert all(col in header for col in COLUMNS)
    for cid in ("regression.roc_auc.max_drop", "regression.accuracy.max_drop", "regression.f1.max_relative_drop"):
        row = next(i for i, line in enumerate(lines) if line.startswith(cid + " "))
        assert lines[row + 1].startswith("  -> ")
    assert not any(line.startswith("regression.roc_auc.min") for line in lines)  # floors are not baseline-relative
    assert any(line.startswith("policy: the policy blocks an equally good candidate") for line in lines)


def test_json_half_widths_equal_the_reports_and_repeat_across_processes(policy, capsys):
    code, out, _ = calibrate(policy, "--json", capsys=capsys)
    assert code == 0
    result = json.loads(out)
    assert main(["run", "-c", str(policy), "--no-register", "--ci", "none", "-q",
                 "--report-dir", str(policy.parent / "out")]) in (0, 1)
    report = json.loads((policy.parent / "out" / "report.json").read_text())
    reported = {c["id"]: c for c in report["checks"]}
    assert [c["id"] for c in result["checks"]] == [
        "regression.roc_auc.max_drop", "regression.accuracy.max_drop", "regression.f1.max_relative_drop"]
    for check in result["checks"]:
        assert check["half_width"] == pytest.approx(reported[check["id"]]["half_width"], rel=1e-12)
        assert check["min_margin"] == check["half_width"]
        assert set(check["rates"]) == {"as_good", "worse_1x", "worse_2x"}
        assert sum(check["rates"]["as_good"][k] for k in ("pass", "inconclusive", "fail")) == pytest.approx(1.0)
        assert set(check["rows_needed"]) == {"0.8", "0.95"}
        assert check["recommendation"]
    assert result["families"][0]["multiple_testing"] == "holm" and result["families"][0]["checks"] == 3
    assert 0.0 <= result["false_fail"] <= 1.0 and result["policy"]["sha256"] == report["policy"]["sha256"]
    again = subprocess.run([sys.executable, "-m", "gates", "calibrate", "-c", str(policy), "--simulations", "400",
                            "--json"], check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "CI": "true"})
    assert again.returncode == 0, again.stderr
    assert again.stdout == out  # seeded: byte-identical in another process


def test_nothing_to_calibrate_without_baseline_relative_checks(write_policy, capsys):
    code, out, _ = calibrate(write_policy("roc_auc: {min: 0.6}"), capsys=capsys)
    assert code == 0 and MSG_NOTHING in out


def test_no_baseline_is_a_one_line_user_error(write_policy, capsys):
    path = write_policy(METRICS)
    path.write_text(path.read_text().replace("baseline: {predictions: base_pred, scores: base_score}",
                                             "baseline: none"))
    code, _, err = calibrate(path, capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert MSG_NO_BASELINE.split("(")[0].strip() in err


@pytest.mark.parametrize("args, needle", [
    (("--registry", "somewhere"), MSG_REGISTRY_WITHOUT_HISTORY),
    (("--history", "nobody"), MSG_NO_RUNS.split("{")[0]),
])
def test_usage_errors_exit_2(policy, capsys, args, needle):
    code, _, err = calibrate(policy, *args, capsys=capsys)
    assert code == 2 and needle in err


def test_too_few_simulations_is_refused(policy, capsys):
    assert main(["calibrate", "-c", str(policy), "--simulations", "10"]) == 2
    assert "--simulations" in capsys.readouterr().err
