"""``.skops`` files: loaded only when skops' own audit finds no type the policy does not trust."""
from __future__ import annotations

from pathlib import Path

from gates.models.base import ModelAdapter
from gates.models.estimator import EstimatorAdapter
from gates.models.trust import Trust


def load(path: Path, *, trust: Trust, where: str, outputs: object = None) -> ModelAdapter:
    from gates.loading import load_skops_file

    return EstimatorAdapter(load_skops_file(path, trust.trusted_types, where), "skops")
