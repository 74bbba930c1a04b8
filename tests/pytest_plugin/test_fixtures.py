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
