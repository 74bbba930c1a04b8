"""Fixtures giving a user's tests the gate's policy, data, models and shared context.

They are session-scoped and read from the one :class:`~gates.context.EvalContext` the engine
uses, so predictions are computed once per session and shared by every gate and test. Without
``--model-gates`` a test that asks for one is skipped, saying how to switch the gate on. This
module is loaded in every pytest run, so it imports only pytest until a fixture is used.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from pytest_model_gates.plugin import SESSION_PLUGIN

if TYPE_CHECKING:
    import pandas as pd
    from pytest_model_gates.session import GateSession

    from gates.context import EvalContext
    from gates.policy import Policy

MSG_NOT_ENABLED = "needs the model-gates plugin switched on: run pytest --model-gates"
T = TypeVar("T")


def _gate(request: pytest.FixtureRequest) -> GateSession:
    plugin = request.config.pluginmanager.get_plugin(SESSION_PLUGIN)
    if plugin is None:
        pytest.skip(MSG_NOT_ENABLED)
    return plugin  # type: ignore[no-any-return]


def _user_errors_as_failures(get: Callable[[], T]) -> T:
    """Return ``get()``; a mistake in the policy or data fails the test in one line, no traceback."""
    from gates.errors import GateError

    try:
        return get()
    except GateError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def gate_policy(request: pytest.FixtureRequest) -> Policy:
    """The loaded policy (``gates.yaml``)."""
    return _gate(request).policy


@pytest.fixture(scope="session")
def gate_context(request: pytest.FixtureRequest) -> EvalContext:
    """The EvalContext shared with the gates: ``.frame``, ``.y_true``, ``.predictions(role)``, ..."""
    return _gate(request).context


@pytest.fixture(scope="session")
def eval_data(gate_context: EvalContext) -> pd.DataFrame:
    """The eval rows the gates score, as a DataFrame: loaded once, checked, rows without a target left out."""
    return _user_errors_as_failures(lambda: gate_context.frame)


@pytest.fixture(scope="session")
def candidate_model(gate_context: EvalContext) -> Any:
    """The candidate's estimator, or None when the candidate is given as prediction columns."""
    loaded = _user_errors_as_failures(lambda: gate_context.candidate_model)
    return None if loaded is None else loaded.estimator


@pytest.fixture(scope="session")
def baseline_model(gate_context: EvalContext) -> Any:
    """The baseline's estimator (from a file or the registry), or None when there is none or it is columns."""
    loaded = _user_errors_as_failures(lambda: gate_context.baseline_model)
    return None if loaded is None else loaded.estimator
