"""The CLI end to end, in a subprocess, as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import scored_frame


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gates", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "CI": "true"})


def without_run(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "run"}


def test_better_candidate_passes(write_policy):
    path = write_policy("accuracy: {min: 0.6, max_drop: 0.02}\nroc_auc: {max_drop: 0.01}",
                        frame=scored_frame(4000, cand_shift=0.4))
    res = cli("run", "-c", str(path), "--no-register", cwd=path.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verdict: PASS" in res.stdout
    report = json.loads((path.parent / "model-gates-report" / "report.json").read_text())
    assert report["verdict"] == "pass"
    ids = {c["id"] for c in report["checks"]}
    assert {"regression.accuracy.min", "regression.accuracy.max_drop", "regression.roc_auc.max_drop"} <= ids


def test_breached_threshold_fails_and_is_named_everywhere(write_policy):
    path = write_policy("accuracy: {min: 0.99}", frame=scored_frame(2000))
    res = cli("run", "-c", str(path), "--no-register", "--report-dir", "out", cwd=path.parent)
    assert res.returncode == 1, res.stdout + res.stderr
    check = "regression.accuracy.min"
    assert check in res.stdout and "FAIL" in res.stdout
    out = path.parent / "out"
    report = json.loads((out / "report.json").read_text())
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert [c["id"] for c in failed] == [check]
    junit = ET.parse(out / "report.xml").getroot()
    case = next(tc for tc in junit.iter("testcase") if tc.get("name") == check)
    assert case.find("failure") is not None and "threshold min 0.99" in case.find("failure").text
    md = (out / "report.md").read_text()
    assert f"`{check}`" in md and "❌" in md.splitlines()[0]


def test_same_inputs_give_identical_reports(write_policy):
    path = write_policy("accuracy: {min: 0.5, max_drop: 0.05}\nroc_auc: {max_drop: 0.01}\nf1: {max_drop: 0.05}")
    reports = []
    for out in ("a", "b"):
        assert cli("run", "-c", str(path), "--no-register", "--report-dir", out, cwd=path.parent).returncode in (0, 1)
        reports.append(json.loads((path.parent / out / "report.json").read_text()))
    assert reports[0]["run"]["id"] != reports[1]["run"]["id"]
    assert json.dumps(without_run(reports[0]), sort_keys=True) == json.dumps(without_run(reports[1]), sort_keys=True)


@pytest.mark.parametrize("edit, needle", [
    (lambda t: t.replace("max_drop: 0.05", "max_drop: abc"), "expected a number, got 'abc'"),
    (lambda t: t.replace("max_drop: 0.05", "max_dorp: 0.05"), "did you mean 'max_drop'"),
    (lambda t: t.replace("task: binary_classification", "task: [oops"), "invalid YAML"),
    (lambda t: t.replace("eval: eval.csv", "eval: missing.csv"), "file not found: missing.csv"),
    (lambda t: t.replace("accuracy:", "acuracy:"), "unknown metric"),
    (lambda t: t.replace("{min: 0.5, max_drop: 0.05}", "{min: 0.5, severity: warn}"), "no blocking check"),
])
def test_config_errors_exit_2_with_one_line(write_policy, edit, needle):
    path = write_policy()
    path.write_text(edit(path.read_text()))
    res = cli("run", "-c", str(path), cwd=path.parent)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("model-gates: error: gates.yaml:") and needle in lines[0]
    assert "Traceback" not in res.stderr
    assert not (path.parent / "model-gates-report").exists()


def test_validate_and_schema(write_policy):
    path = write_policy()
    ok = cli("validate", "-c", str(path), cwd=path.parent)
    assert ok.returncode == 0 and "valid" in ok.stdout
    schema = json.loads(cli("schema", cwd=path.parent).stdout)
    assert schema["properties"]["version"] == {"const": 1, "description": "Policy format version."}


def test_report_rerenders_from_json(write_policy):
    path = write_policy("accuracy: {min: 0.99}")
    cli("run", "-c", str(path), "--no-register", cwd=path.parent)
    report = path.parent / "model-gates-report" / "report.json"
    md = cli("report", str(report), "--format", "md", cwd=path.parent)
    assert md.returncode == 0 and md.stdout == (report.parent / "report.md").read_text()
    junit = cli("report", str(report), "--format", "junit", "-o", "j.xml", cwd=path.parent)
    assert junit.returncode == 0
    assert (path.parent / "j.xml").read_text() == (report.parent / "report.xml").read_text()
    bad = cli("report", str(path), "--format", "md", cwd=path.parent)
    assert bad.returncode == 2 and "not a model-gates report.json" in bad.stderr


def test_waiver_from_command_line_turns_failure_into_waived(write_policy):
    path = write_policy("accuracy: {min: 0.99}")
    res = cli("run", "-c", str(path), "--no-register", "--waive", "regression.accuracy.min",
              "--reason", "threshold being recalibrated", cwd=path.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((path.parent / "model-gates-report" / "report.json").read_text())
    check = next(c for c in report["checks"] if c["id"] == "regression.accuracy.min")
    assert check["status"] == "waived"
    assert check["waiver"]["reason"] == "threshold being recalibrated"
    assert check["waiver"]["original_status"] == "fail"
    assert "threshold being recalibrated" in (path.parent / "model-gates-report" / "report.md").read_text()
    assert cli("run", "-c", str(path), "--waive", "x", cwd=path.parent).returncode == 2


def test_init_writes_a_starter_that_parses(tmp_path):
    res = cli("init", "-d", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0 and (tmp_path / "gates.yaml").exists()
    again = cli("init", "-d", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    # the starter names files the user has yet to provide: validation says which one, with its line
    val = cli("validate", "-c", str(tmp_path / "gates.yaml"), cwd=tmp_path)
    assert val.returncode == 2 and "model.candidate: file not found: models/candidate.skops" in val.stderr


def test_internal_error_is_one_line_exit_3_and_debug_shows_traceback(write_policy):
    path = write_policy()
    (path.parent / "eval.csv").write_bytes(b"\x00\x01garbage")
    res = cli("run", "-c", str(path), "--no-register", cwd=path.parent)
    assert res.returncode in (2, 3)
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_registry_failure_still_writes_reports_and_exits_3(write_policy):
    path = write_policy()
    blocker = path.parent / "not-a-folder"
    blocker.write_text("a file where the registry folder should be")
    path.write_text(path.read_text().replace("seed: 7", f"seed: 7\nregistry: {{uri: {blocker.name}/registry}}"))
    res = cli("run", "-c", str(path), cwd=path.parent)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    report = json.loads((path.parent / "model-gates-report" / "report.json").read_text())
    assert report["registration"]["registered"] is False
    assert report["registration"]["reason"].startswith("registry error:")


def test_model_that_rejects_nan_gives_an_error_check_and_every_report(write_policy):
    """A `missing` perturbation on a model without NaN support: an error check, not a crashed run."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    frame = scored_frame(600)
    path = write_policy(frame=frame)
    model = LogisticRegression().fit(frame[["x"]], frame["label"])
    skops.io.dump(model, path.parent / "model.skops")
    text = path.read_text().replace("candidate: {predictions: cand_pred, scores: cand_score}",
                                    "candidate: model.skops")
    text += "  robustness:\n    perturbations:\n      missing: {rate: 0.1}\n    metrics:\n      flip_rate: {max: 0.05}\n"
    path.write_text(text)
    res = cli("run", "-c", str(path), "--no-register", cwd=path.parent)
    assert res.returncode == 1, res.stdout + res.stderr
    out = path.parent / "model-gates-report"
    report = json.loads((out / "report.json").read_text())
    errors = [c for c in report["checks"] if c["gate"] == "robustness" and c["status"] == "error"]
    assert errors and "impute" in errors[0]["message"]
    if __import__("gates.reporters", fromlist=["x"]).html_available():
        assert errors[0]["id"] in (out / "report.html").read_text()


def test_waiving_an_unknown_check_is_a_usage_error_and_writes_nothing(write_policy):
    path = write_policy("accuracy: {min: 0.99}")
    res = cli("run", "-c", str(path), "--no-register", "--waive", "regression.accuracy.mni",
              "--reason", "typo", cwd=path.parent)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == ("model-gates: error: --waive regression.accuracy.mni: no check has this id "
                                  "(did you mean 'regression.accuracy.min'?)")
    assert not (path.parent / "model-gates-report").exists()


def test_a_waiver_on_a_passing_check_changes_nothing_and_says_so(write_policy):
    path = write_policy("accuracy: {min: 0.5, max_drop: 0.5}")
    res = cli("run", "-c", str(path), "--no-register", "--waive", "regression.accuracy.min",
              "--reason", "not failing", cwd=path.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    out = path.parent / "model-gates-report"
    report = json.loads((out / "report.json").read_text())
    check = next(c for c in report["checks"] if c["id"] == "regression.accuracy.min")
    assert check["status"] == "pass" and "waiver" not in check
    assert report["waivers"][0]["used"] is False and report["waivers"][0]["matched"] is True
    assert "not needed: the check did not fail" in (out / "report.md").read_text()


def test_debug_is_accepted_after_the_subcommand_and_shows_the_traceback(write_policy):
    path = write_policy()
    (path.parent / "eval.csv").write_text("label\n")  # an eval file with no rows
    quiet = cli("run", "-c", str(path), "--no-register", cwd=path.parent)
    loud = cli("run", "-c", str(path), "--no-register", "--debug", cwd=path.parent)
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1] == quiet.stderr.strip()


def test_require_baseline_turns_skipped_comparisons_into_failures(write_policy):
    path = write_policy("accuracy: {min: 0.5, max_drop: 0.05}")
    path.write_text(path.read_text().replace("baseline: {predictions: base_pred, scores: base_score}",
                                             "baseline: none"))
    lenient = cli("run", "-c", str(path), "--no-register", "--report-dir", "a", cwd=path.parent)
    strict = cli("run", "-c", str(path), "--no-register", "--report-dir", "b", "--require-baseline",
                 cwd=path.parent)
    assert (lenient.returncode, strict.returncode) == (0, 1), lenient.stdout + strict.stdout

    def drop(folder: str) -> dict:
        report = json.loads((path.parent / folder / "report.json").read_text())
        return next(c for c in report["checks"] if c["id"] == "regression.accuracy.max_drop")

    assert (drop("a")["status"], drop("a")["reason"]) == ("skipped", "no_baseline")
    assert (drop("b")["status"], drop("b")["reason"]) == ("fail", "baseline_required")


def test_skipped_checks_fold_to_one_line_per_gate_and_reason_unless_verbose(write_policy):
    path = write_policy("accuracy: {min: 0.5, max_drop: 0.05}\nroc_auc: {max_drop: 0.01}\nf1: {max_drop: 0.05}")
    path.write_text(path.read_text().replace("baseline: {predictions: base_pred, scores: base_score}",
                                             "baseline: none"))
    short = cli("run", "-c", str(path), "--no-register", "--report-dir", "a", cwd=path.parent)
    full = cli("run", "-c", str(path), "--no-register", "--report-dir", "b", "--verbose", cwd=path.parent)
    assert short.returncode == full.returncode == 0, short.stdout + short.stderr
    report = json.loads((path.parent / "a" / "report.json").read_text())
    skipped = [c["id"] for c in report["checks"] if c["status"] == "skipped"]
    assert len(skipped) == 3
    skip_lines = [line for line in short.stdout.splitlines() if line.startswith("SKIP")]
    assert skip_lines == [f"SKIP          regression: 3 checks (no_baseline), e.g. {skipped[0]}"]
    assert "--verbose lists each" in short.stdout
    assert [line.split()[1] for line in full.stdout.splitlines() if line.startswith("SKIP")] == skipped
