"""The entry-point module: options, ini settings, and being inert without --model-gates."""
from __future__ import annotations

from pathlib import Path

import pytest
from pytest_model_gates.fixtures import MSG_NOT_ENABLED
from pytest_model_gates.plugin import DEFAULT_REPORT_DIR, MSG_NO_DEFAULT_CONFIG

from tests.pytest_plugin.conftest import read_report, statuses

PLAIN_TEST = """
def test_plain():
    assert 1 + 1 == 2
"""

#: a checkout's pyproject.toml with pytest settings: it makes the checkout the rootdir
CHECKOUT_PYPROJECT = """
    [tool.pytest.ini_options]
    addopts = "-p no:cacheprovider"
"""

#: the target checks every policy has
TARGET_CHECKS = ("data.target.not_null", "data.target.labels")


def move_into(pytester: pytest.Pytester, folder: str) -> Path:
    """Move the project's gates.yaml and eval.csv into a subfolder of the checkout; return the subfolder."""
    sub = pytester.path / folder
    sub.mkdir()
    for name in ("gates.yaml", "eval.csv"):
        (pytester.path / name).rename(sub / name)
    return sub


def test_without_the_flag_nothing_is_collected_imported_or_written(pytester, gate_project):
    gate_project()
    pytester.makepyfile(test_modules="""
        import sys

        def test_no_engine_was_imported():
            loaded = [m for m in sys.modules if m == "gates" or m.startswith(("gates.", "pandas", "numpy"))]
            assert loaded == []
            assert "pytest_model_gates.session" not in sys.modules
            assert "pytest_model_gates.plugin" in sys.modules
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=1)
    assert "model-gates:" not in result.stdout.str()
    assert not (pytester.path / DEFAULT_REPORT_DIR).exists()
    assert not (pytester.path / ".model-gates").exists()


def test_without_the_flag_the_marker_is_known_and_fixtures_skip(pytester, gate_project):
    gate_project()
    pytester.makepyfile("""
        import pytest

        @pytest.mark.model_gate(blocking=True)
        def test_marked():
            pass

        def test_wants_data(eval_data):
            pass
    """)
    result = pytester.runpytest("--strict-markers", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"*{MSG_NOT_ENABLED}*"])


def test_ini_options_switch_the_gate_on_with_paths_relative_to_the_ini_file(pytester, gate_project):
    path = gate_project()
    (pytester.path / "ml").mkdir()
    path.rename(pytester.path / "ml" / "gates.yaml")
    (pytester.path / "eval.csv").rename(pytester.path / "ml" / "eval.csv")
    pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        model_gates = true
        model_gates_config = "ml/gates.yaml"
        model_gates_report_dir = "out/gates"
    """)
    pytester.makepyfile(PLAIN_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["model-gates: policy ml/gates.yaml sha256 *, seed 7, mode enforce, register no"])
    report = read_report(pytester.path / "out" / "gates")
    assert set(statuses(report)) == {*TARGET_CHECKS, "regression.accuracy.min", "regression.accuracy.max_drop"}


def test_command_line_options_win_over_the_ini_file(pytester, gate_project):
    gate_project()
    pytester.makeini("""
        [pytest]
        model_gates_report_dir = from-ini
    """)
    result = pytester.runpytest("--model-gates", "--model-gates-config", "gates.yaml",
                                "--model-gates-report-dir", "from-cli")
    result.assert_outcomes(passed=4)
    assert (pytester.path / "from-cli" / "report.json").is_file()
    assert not (pytester.path / "from-ini").exists()


def test_a_config_error_is_one_usage_line_and_writes_nothing(pytester, gate_project):
    path = gate_project()
    path.write_text(path.read_text().replace("max_drop: 0.05", "max_dorp: 0.05"))
    result = pytester.runpytest("--model-gates")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: gates.yaml:*: gates.regression.metrics.accuracy*did you mean 'max_drop'*"])
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / DEFAULT_REPORT_DIR).exists()


def test_a_missing_policy_file_is_a_usage_error(pytester):
    pytester.makepyfile(PLAIN_TEST)
    result = pytester.runpytest("--model-gates", "--model-gates-config", "nowhere.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *nowhere.yaml*not found*"])


def test_run_from_a_subfolder_the_gates_yaml_there_wins_over_the_rootdirs(pytester, gate_project, monkeypatch):
    gate_project("accuracy: {min: 0.5}")
    demo = move_into(pytester, "demo")
    gate_project("accuracy: {min: 0.5, max_drop: 0.05}")  # the checkout's own policy, two checks
    pytester.makepyprojecttoml(CHECKOUT_PYPROJECT)
    monkeypatch.chdir(demo)
    result = pytester.runpytest("--model-gates")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["model-gates: policy demo/gates.yaml sha256 *", f"rootdir: {pytester.path}"])
    assert set(statuses(read_report(demo / DEFAULT_REPORT_DIR))) == {*TARGET_CHECKS, "regression.accuracy.min"}
    assert not (pytester.path / DEFAULT_REPORT_DIR).exists()


def test_run_from_a_subfolder_without_gates_yaml_the_rootdirs_is_used(pytester, gate_project, monkeypatch):
    gate_project()
    pytester.makepyprojecttoml(CHECKOUT_PYPROJECT)
    (pytester.path / "sub").mkdir()
    monkeypatch.chdir(pytester.path / "sub")
    result = pytester.runpytest("--model-gates")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["model-gates: policy gates.yaml sha256 *"])
    assert (pytester.path / "sub" / DEFAULT_REPORT_DIR / "report.json").is_file()


def test_no_gates_yaml_here_or_in_the_rootdir_names_both_paths(pytester, monkeypatch):
    pytester.makepyprojecttoml(CHECKOUT_PYPROJECT)
    (pytester.path / "sub").mkdir()
    monkeypatch.chdir(pytester.path / "sub")
    result = pytester.runpytest("--model-gates")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    here, root = pytester.path / "sub" / "gates.yaml", pytester.path / "gates.yaml"
    assert MSG_NO_DEFAULT_CONFIG.format(here=here, root=root) in result.stderr.str()


def test_a_relative_config_option_is_relative_to_where_pytest_runs(pytester, gate_project, monkeypatch):
    gate_project("accuracy: {min: 0.5}")
    demo = move_into(pytester, "demo")
    (demo / "gates.yaml").rename(demo / "policy.yaml")
    pytester.makepyprojecttoml(CHECKOUT_PYPROJECT)
    monkeypatch.chdir(demo)
    result = pytester.runpytest("--model-gates", "--model-gates-config", "policy.yaml")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["model-gates: policy demo/policy.yaml sha256 *"])


def test_the_ini_config_stays_relative_to_the_ini_file_when_run_from_a_subfolder(pytester, gate_project,
                                                                                  monkeypatch):
    gate_project("accuracy: {min: 0.5}")
    move_into(pytester, "ml")
    gate_project("accuracy: {min: 0.5, max_drop: 0.05}")
    (pytester.path / "gates.yaml").rename(pytester.path / "sub.yaml")  # only the ini's path may be used
    pytester.makepyprojecttoml("""
        [tool.pytest.ini_options]
        model_gates_config = "ml/gates.yaml"
    """)
    (pytester.path / "sub").mkdir()
    (pytester.path / "sub" / "gates.yaml").write_text("not: a policy\n")
    monkeypatch.chdir(pytester.path / "sub")
    result = pytester.runpytest("--model-gates")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["model-gates: policy ml/gates.yaml sha256 *"])
