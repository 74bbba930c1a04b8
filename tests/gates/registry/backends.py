"""The backends every registry test runs against: one factory per backend, extendable.

A factory takes a folder of the test's own and returns a backend storing everything there;
calling it again with the same folder must reopen the same registry. The MLflow backend joins
the list automatically when its module and the mlflow extra are installed.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from gates.registry import open_backend
from gates.registry.base import RegistryBackend

BackendFactory = Callable[[Path], RegistryBackend]


def _local(folder: Path) -> RegistryBackend:
    return open_backend("local", str(folder / "registry"))


def _mlflow(folder: Path) -> RegistryBackend:
    db = folder / "mlflow.db"
    if not db.exists():
        shutil.copyfile(migrated_mlflow_db(), db)
    return open_backend("mlflow", f"sqlite:///{db}")


@lru_cache(maxsize=1)
def migrated_mlflow_db() -> Path:
    """Return an empty MLflow database with its schema made, once per session (migrations take seconds)."""
    from mlflow import MlflowClient

    folder = Path(tempfile.mkdtemp(prefix="model-gates-mlflow-template-"))
    atexit.register(shutil.rmtree, folder, True)
    MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


BACKENDS: dict[str, BackendFactory] = {"local": _local}
if find_spec("mlflow") is not None and find_spec("gates.registry.mlflow_backend") is not None:
    BACKENDS["mlflow"] = _mlflow
