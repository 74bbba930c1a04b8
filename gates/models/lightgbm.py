"""LightGBM model files (what ``Booster.save_model`` writes), read by ``lightgbm.Booster``.

The objective saved in the file says what the booster predicts: ``binary`` (and
``cross_entropy``) a positive-class probability, ``multiclass``/``multiclassova`` a probability
matrix, anything else values. Classes are ``0 .. num_class-1``. LightGBM saves feature names with
spaces as ``_``; they are matched back to the eval data's columns.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gates.errors import UserError
from gates.models.base import ModelAdapter, Output, match_names, two_columns, wrong_kind
from gates.models.reads import Reads
from gates.models.trust import Trust

MSG_NOT_A_MODEL = "'{path}' is not a LightGBM model file (LightGBM says: {problem})"
BINARY = ("binary", "cross_entropy", "xentropy")
MULTICLASS = ("multiclass", "multiclassova", "softmax", "ova", "multiclass_ova", "ovr")
_AUTO_NAME = re.compile(r"Column_\d+")


def load(path: Path, *, trust: Trust, where: str, reads: Reads, outputs: object = None) -> ModelAdapter:
    import lightgbm

    try:
        booster = lightgbm.Booster(model_str=reads.read(path).decode("utf-8"))
    except (lightgbm.basic.LightGBMError, ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        raise UserError(MSG_NOT_A_MODEL.format(path=path.name, problem=str(exc).strip() or type(exc).__name__),
                        location=where) from None
    objective = str(booster.params.get("objective", "regression")).split()[0]
    return LightGBMAdapter(booster, objective, int(booster.num_model_per_iteration()))


@dataclass(frozen=True)
class LightGBMAdapter:
    native: Any
    objective: str
    num_class: int
    format: str = "lightgbm"

    @property
    def is_classifier(self) -> bool:
        return self.objective in BINARY + MULTICLASS

    def feature_names(self, columns: Sequence[str]) -> tuple[str, ...] | None:
        names = list(self.native.feature_name())
        if not names or all(_AUTO_NAME.fullmatch(n) for n in names):
            return None  # trained on an array: LightGBM made the names up
        return match_names(names, columns, lambda c: re.sub(r"\s", "_", str(c)))

    def classes(self) -> tuple[Any, ...] | None:
        if not self.is_classifier:
            return None
        return (0, 1) if self.objective in BINARY else tuple(range(self.num_class))

    def predict(self, X: pd.DataFrame, task: str) -> Output:
        if (task == "regression") == self.is_classifier:
            kind = "classifier" if self.is_classifier else "regressor"
            raise wrong_kind(kind, f"objective {self.objective}", task)
        raw = np.asarray(self.native.predict(X), dtype=float)
        if task == "regression":
            return Output(labels=raw.reshape(-1))
        if self.objective in BINARY:
            return Output(proba=two_columns(raw))
        return Output(proba=raw.reshape(len(X), -1))
