"""The pytest plugin (import name ``pytest_model_gates``): ``pytest --model-gates``, see docs/pytest.md."""
