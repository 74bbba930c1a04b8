"""Backend construction: one place, the MLflow client imported only when asked for."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gates.errors import EnvironmentProblem, UserError, missing_extra
from gates.registry import MSG_EMPTY_URI, MSG_UNKNOWN_BACKEND, open_backend
from gates.registry.local import LocalRegistry


def test_local_takes_a_folder_and_creates_nothing(tmp_path):
    backend = open_backend("local", str(tmp_path / "reg"))
    assert isinstance(backend, LocalRegistry) and backend.uri == str(tmp_path / "reg")
    assert not (tmp_path / "reg").exists()


def test_mlflow_without_the_extra_is_a_one_line_environment_problem(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(EnvironmentProblem) as err:
        open_backend("mlflow", "sqlite:///registry.db")
    assert str(err.value) == str(missing_extra("mlflow", "the mlflow registry backend"))
    assert "pip install 'model-gates[mlflow]'" in str(err.value)


def test_unknown_backends_and_empty_locations_are_user_errors():
    with pytest.raises(UserError) as err:
        open_backend("s3", "bucket")
    assert str(err.value) == MSG_UNKNOWN_BACKEND.format(backend="s3")
    with pytest.raises(UserError) as err:
        open_backend("local", "  ")
    assert str(err.value) == MSG_EMPTY_URI


def test_importing_the_registry_does_not_import_mlflow():
    code = "import sys, gates.registry, gates.registrar; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
