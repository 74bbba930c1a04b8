"""The fixtures: the engine's own policy, data, models and context, shared with the user's tests."""
from __future__ import annotations


def test_fixtures_give_the_engines_objects_and_predictions_computed_once(pytester, model_project):
    pytester.makepyfile(test_user="""
        import numpy as np
        import pandas as pd
        import skops.io
        from sklearn.linear_model import LogisticRegression

        def test_policy_and_data(gate_policy, eval_data):
            assert gate_policy.model.name == "demo" and gate_policy.seed == 7
            pd.testing.assert_frame_equal(eval_data, pd.read_csv("eval.csv"))

        def test_candidate_is_the_model_file(candidate_model, eval_data):
            assert isinstance(candidate_model, LogisticRegression)
            on_disk = skops.io.load("model.skops", trusted=skops.io.get_untrusted_types(file="model.skops"))
            np.testing.assert_array_equal(candidate_model.coef_, on_disk.coef_)

        def test_no_baseline(baseline_model):
            assert baseline_model is None

        def test_context_is_the_engines(request, gate_context, candidate_model, eval_data):
            engine = request.config.pluginmanager.get_plugin("model-gates-session").result().context
            assert gate_context is engine
            first = gate_context.predictions("candidate")
            assert gate_context.predictions("candidate") is first
            np.testing.assert_allclose(first.scores, candidate_model.predict_proba(eval_data[["x", "z"]])[:, 1])
    """)
    pytester.runpytest("--model-gates").assert_outcomes(passed=7)


def test_prediction_column_candidates_have_no_model_object(pytester, gate_project):
    gate_project()
    pytester.makepyfile(test_user="""
        def test_columns(candidate_model, baseline_model, gate_context):
            assert candidate_model is None and baseline_model is None
            assert gate_context.has_baseline
            assert (gate_context.predictions("baseline").scores == gate_context.frame["base_score"]).all()
    """)
    pytester.runpytest("--model-gates").assert_outcomes(passed=5)


def test_a_data_mistake_fails_a_fixture_user_in_one_line(pytester, gate_project):
    path = gate_project()
    path.write_text(path.read_text().replace("target: label", "target: outcome"))
    pytester.makepyfile(test_user="def test_rows(eval_data):\n    pass\n")
    result = pytester.runpytest("--model-gates", "test_user.py", "--continue-on-collection-errors")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_rows*", "gates.yaml:*: data.target: column 'outcome'*"])


def test_on_parquet_the_gates_run_in_batches_and_user_tests_still_get_the_whole_frame(pytester, model_project):
    import pandas as pd

    from tests.conftest import write_parquet_parts
    from tests.pytest_plugin.conftest import read_report

    frame = pd.read_csv(pytester.path / "eval.csv")
    write_parquet_parts(pytester.path / "eval", frame, 3, 100)
    model_project.write_text(model_project.read_text().replace("eval: eval.csv", "eval: eval"), encoding="utf-8")
    pytester.makepyfile(test_user="""
        import numpy as np
        import pandas as pd
        from gates.engine.context import BatchedContext

        def test_the_gates_ran_on_batches(request):
            result = request.config.pluginmanager.get_plugin("model-gates-session").result()
            assert isinstance(result.context, BatchedContext)
            assert result.engine == {"kind": "local", "address": None, "workers": 1, "partitions": 3}
            assert "eval_frame" not in result.context.__dict__  # the gates never read the data whole

        def test_the_frame_is_read_whole_on_first_use(eval_data, gate_context, candidate_model):
            pd.testing.assert_frame_equal(eval_data, pd.read_csv("eval.csv"))
            assert gate_context.frame is eval_data
            scores = gate_context.predictions("candidate").scores
            np.testing.assert_allclose(scores, candidate_model.predict_proba(eval_data[["x", "z"]])[:, 1])
    """)
    pytester.runpytest("--model-gates", "--model-gates-register").assert_outcomes(passed=5)  # 3 gate checks, 2 tests
    report = read_report(pytester.path / "model-gates-report")
    assert report["run"]["engine"]["partitions"] == 3
    assert report["registration"]["registered"] is True  # its signature from one partition's features
