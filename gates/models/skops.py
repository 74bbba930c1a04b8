"""``.skops`` files: loaded only when skops' own audit finds no type the policy does not trust."""
from __future__ import annotations

from pathlib import Path

from gates.models.base import ModelAdapter
from gates.models.estimator import EstimatorAdapter
from gates.models.reads import Reads
from gates.models.trust import Trust, load_skops


def load(path: Path, *, trust: Trust, where: str, reads: Reads, outputs: object = None) -> ModelAdapter:
    return EstimatorAdapter(load_skops(reads.read(path), trust.trusted_types, where), "skops")
