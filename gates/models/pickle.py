"""Pickle-based files (``.pkl``, ``.joblib``): they can run any code, so only with ``trust_pickle``."""
from __future__ import annotations

import io
from pathlib import Path

from gates.errors import UserError
from gates.models.base import ModelAdapter
from gates.models.estimator import EstimatorAdapter
from gates.models.reads import Reads
from gates.models.trust import Trust, pickle_refused


def load(path: Path, *, trust: Trust, where: str, reads: Reads, outputs: object = None) -> ModelAdapter:
    if not trust.trust_pickle:
        raise UserError(pickle_refused(path.name), location=where)
    import joblib

    return EstimatorAdapter(joblib.load(io.BytesIO(reads.read(path))), "pickle")
