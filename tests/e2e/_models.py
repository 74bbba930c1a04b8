"""Tiny model classes the e2e tests pickle (importable as ``tests.e2e._models`` in the CLI's subprocess)."""
from __future__ import annotations

from typing import Any

import numpy as np


class Threshold:
    """Predicts 1 when x > 0; knows classes 0 and 1."""

    classes_ = np.array([0, 1])
    feature_names_in_ = np.array(["x", "region"], dtype=object)

    def predict_proba(self, X: Any) -> np.ndarray:
        p = (np.asarray(X["x"], dtype=float) > 0).astype(float)
        return np.column_stack([1 - p, p])


class Crashing(Threshold):
    """Raises as a model whose backing service is down would."""

    def predict_proba(self, X: Any) -> np.ndarray:
        raise RuntimeError("scorer offline")
