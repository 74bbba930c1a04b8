"""What every model format gives the gates: the :class:`ModelAdapter` protocol and :class:`LoadedModel`.

An adapter wraps one library's model object (a scikit-learn estimator, an xgboost Booster, an
onnxruntime session ...) behind three questions the gates ask: which columns it takes, which
classes its scores are in, and what it predicts for a frame. Every loader's result is checked
against the protocol before a gate sees it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

MSG_NOT_AN_ADAPTER = "internal error: the {format} loader returned {got}, which is not a ModelAdapter"
MSG_WRONG_KIND = "the model is a {kind} ({detail}) but model.task is {task}"


@dataclass(frozen=True)
class Output:
    """One predict call's raw result.

    ``labels``: predicted labels (regression: predicted values); ``proba``: class probabilities
    ``(n, k)`` in the adapter's ``classes()`` order; ``decision``: a binary margin when a model
    has no probabilities. A classifier gives ``proba`` or ``labels`` (or both).
    """

    labels: np.ndarray | None = None
    proba: np.ndarray | None = None
    decision: np.ndarray | None = None


@runtime_checkable
class ModelAdapter(Protocol):
    """One loaded model, whatever library it is in."""

    #: the format name (skops, pickle, xgboost, lightgbm, onnx, mlflow)
    format: str
    #: the library's own model object (what the MLflow backend logs as a flavour)
    native: Any

    def feature_names(self, columns: Sequence[str]) -> tuple[str, ...] | None:
        """Return the columns the model takes, in order, or None when the model does not know them.

        ``columns`` are the eval data's columns, for libraries that rename features on save
        (LightGBM writes spaces as ``_``): the answer uses the data's spelling where one matches.
        """

    def classes(self) -> tuple[Any, ...] | None:
        """Return the class labels in score order (None for regressors)."""

    def predict(self, X: pd.DataFrame, task: str) -> Output:
        """Score ``X`` (the model's feature columns, in order) for ``task``."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model with the facts the report and lineage need about the bytes it came from.

    ``path`` is the file (or the folder of a multi-file model) that was loaded; ``files`` every
    file the model is made of, as (name inside the model, path); ``sha256`` is the file's digest,
    or for several files the digest of their deterministic archive (:mod:`gates.models.bundle`).
    ``uri`` is what the policy named (a path or an MLflow URI) and ``version`` the registry or
    MLflow version it resolved to.
    """

    adapter: ModelAdapter
    path: Path
    format: str
    sha256: str
    files: tuple[tuple[str, Path], ...] = ()
    uri: str | None = None
    version: int | None = None
    run_id: str | None = None

    @property
    def estimator(self) -> Any:
        """The library's own model object."""
        return self.adapter.native

    @property
    def is_bundle(self) -> bool:
        """True when the model is several files (registered as one deterministic archive)."""
        return len(self.files) > 1 or self.path.is_dir()

    @property
    def entry(self) -> str | None:
        """What is loaded inside the model's archive: the graph's name among ``files``, ``"."`` for a
        model folder, None for a model of one file."""
        if not self.is_bundle:
            return None
        return "." if self.path.is_dir() else next(n for n, p in self.files if p == self.path)


def check_adapter(adapter: Any, format: str) -> ModelAdapter:
    """Return ``adapter`` if it satisfies :class:`ModelAdapter`; a loader that breaks it is a bug."""
    if not isinstance(adapter, ModelAdapter):
        raise TypeError(MSG_NOT_AN_ADAPTER.format(format=format, got=type(adapter).__name__))
    return adapter


def wrong_kind(kind: str, detail: str, task: str) -> ValueError:
    """Return the error for a model whose kind (classifier, regressor) does not fit ``task``."""
    return ValueError(MSG_WRONG_KIND.format(kind=kind, detail=detail, task=task))


def two_columns(p: np.ndarray) -> np.ndarray:
    """Return the ``(n, 2)`` probability matrix of a positive-class probability vector."""
    p = np.asarray(p, dtype=float).reshape(-1)
    return np.column_stack([1.0 - p, p])


def match_names(names: Sequence[str], columns: Sequence[str], spell: Any = None) -> tuple[str, ...]:
    """Return ``names`` in the data's spelling: a name not in ``columns`` takes the column that
    ``spell`` turns into it (when exactly one does), else stays as it is."""
    have = set(columns)
    out = []
    for name in names:
        if name in have or spell is None:
            out.append(name)
            continue
        found = [c for c in columns if spell(c) == name]
        out.append(found[0] if len(found) == 1 else name)
    return tuple(out)
