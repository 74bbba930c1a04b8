"""The adapter of scikit-learn-API objects (``predict``, ``predict_proba``, ``classes_``).

skops files, pickles and MLflow's sklearn flavour all load into such an object.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gates.models.base import Output


@dataclass(frozen=True)
class EstimatorAdapter:
    """A scikit-learn estimator (or anything with its predict API)."""

    native: Any
    format: str

    def feature_names(self, columns: Sequence[str]) -> tuple[str, ...] | None:
        names = getattr(self.native, "feature_names_in_", None)
        return None if names is None else tuple(str(n) for n in names)

    def classes(self) -> tuple[Any, ...] | None:
        classes = getattr(self.native, "classes_", None)
        return None if classes is None else tuple(np.asarray(classes).tolist())

    def predict(self, X: pd.DataFrame, task: str) -> Output:
        est = self.native
        if task == "regression":
            return Output(labels=np.asarray(est.predict(X), dtype=float))
        if hasattr(est, "predict_proba"):
            return Output(proba=np.asarray(est.predict_proba(X), dtype=float))
        labels = np.asarray(est.predict(X))
        decision = None
        if task == "binary_classification" and hasattr(est, "decision_function"):
            decision = np.asarray(est.decision_function(X), dtype=float)
        return Output(labels=labels, decision=decision)
