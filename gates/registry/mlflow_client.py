"""The MLflow client as the ``mlflow`` registry backend uses it: imported late, quiet, errors named.

``mlflow`` takes seconds to import, so nothing here imports it at module level: the client is made
on a backend's first call. MLflow's failures (an unreachable server, a refused request) become one
:class:`~gates.errors.EnvironmentProblem` line naming the registry, with any password in the URI
hidden. The tracking URI also serves as the registry URI unless ``MLFLOW_REGISTRY_URI`` says
otherwise (Databricks Unity Catalog, for instance).
"""
from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gates.errors import EnvironmentProblem, GateError, first_line

#: the experiment holding registration runs; its audit log lives in ``<name>-audit``
DEFAULT_EXPERIMENT = "model-gates"
EXPERIMENT_ENV = "MODEL_GATES_MLFLOW_EXPERIMENT"
#: set (unless the user set them) before mlflow is first imported: no progress bars, run links on stdout
#: (which would corrupt ``--json`` output) nor INFO lines in CI logs
QUIET_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
             "MLFLOW_LOGGING_LEVEL": "WARNING"}

_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")

MISSING = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
INVALID = "INVALID_PARAMETER_VALUE"

MSG_MLFLOW_FAILED = "the MLflow registry at {uri} failed: {problem}"
MSG_ARTIFACTS_FAILED = "cannot store or read MLflow artifacts for the registry at {uri}: {problem}"
MSG_DELETED_EXPERIMENT = (
    "the MLflow experiment {name!r} at {uri} is deleted: restore it (mlflow experiments restore) or set "
    "MODEL_GATES_MLFLOW_EXPERIMENT to another name"
)


def make_client(tracking_uri: str) -> Any:
    """Return an ``MlflowClient`` on ``tracking_uri`` (and on it as registry, unless MLFLOW_REGISTRY_URI is set)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri(tracking_uri))


def registry_uri(tracking_uri: str) -> str:
    """Return the registry URI that goes with ``tracking_uri``."""
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri


def experiment_name() -> str:
    """Return the experiment registration runs go to (``MODEL_GATES_MLFLOW_EXPERIMENT``, else model-gates)."""
    return os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT


def sqlite_path(uri: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` tracking URI, None for any other URI."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def artifact_root(uri: str) -> str | None:
    """Return where new experiments keep artifacts: beside a SQLite database, else the server's choice.

    A client on a SQLite URI would otherwise write artifacts to ``./mlruns`` in whatever folder it
    runs from; a tracking server (http, databricks) has its own artifact root.
    """
    db = sqlite_path(uri)
    return None if db is None else (db.resolve().parent / "mlartifacts").as_uri()


def redact(text: str) -> str:
    """Return ``text`` with every URL password hidden (``https://user:secret@host`` -> ``https://user:***@host``)."""
    return _PASSWORD.sub(r"\1***@", text)


def error_code(exc: BaseException) -> str | None:
    """Return an MlflowException's error code (``RESOURCE_DOES_NOT_EXIST`` ...), None for other errors."""
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else None


def is_mlflow_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("mlflow") and error_code(exc) is not None


@contextmanager
def named_errors(uri: str) -> Iterator[None]:
    """Turn MLflow, SQLite and file-system failures into one line naming the registry."""
    try:
        yield
    except GateError:
        raise
    except OSError as exc:
        raise EnvironmentProblem(MSG_ARTIFACTS_FAILED.format(uri=redact(uri), problem=redact(first_line(exc, 300)))) from exc
    except Exception as exc:
        if is_mlflow_error(exc) or isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("sqlalchemy"):
            raise EnvironmentProblem(MSG_MLFLOW_FAILED.format(uri=redact(uri), problem=redact(first_line(exc, 300)))) from exc
        raise



class Experiments:
    """The two experiments a registry uses: ``<name>`` (registration runs) and ``<name>-audit`` (audit logs).

    Either is created on the first write that needs it, with its artifacts beside a SQLite
    database (see :func:`artifact_root`); one that already exists is used as it is.
    """

    def __init__(self, client: Any, uri: str) -> None:
        self._client = client
        self._uri = uri
        self.name = experiment_name()
        self.audit_name = f"{self.name}-audit"
        self._main_id: str | None = None

    def main_id(self, *, create: bool) -> str | None:
        """Return the id of the registration runs' experiment (None if absent and not ``create``)."""
        if self._main_id is None:
            exp = self._client.get_experiment_by_name(self.name)
            if exp is None and create:
                try:
                    self._client.create_experiment(self.name, artifact_location=self.artifact_location(self.name))
                except Exception as exc:
                    if error_code(exc) != EXISTS:
                        raise
                exp = self._client.get_experiment_by_name(self.name)
            if exp is not None and exp.lifecycle_stage == "deleted":
                raise EnvironmentProblem(MSG_DELETED_EXPERIMENT.format(name=self.name, uri=redact(self._uri)))
            self._main_id = None if exp is None else str(exp.experiment_id)
        return self._main_id

    def artifact_location(self, name: str) -> str | None:
        """Return where a new experiment ``name`` keeps artifacts (None: the server decides)."""
        root = artifact_root(self._uri)
        return None if root is None else f"{root}/{name}"
