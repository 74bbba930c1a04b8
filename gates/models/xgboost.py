"""XGBoost models saved with ``save_model`` (``.ubj`` or ``.json``), read by xgboost's own loader.

The file is parsed as a model, never unpickled. The objective saved with the booster says what
it predicts: ``binary:logistic`` a positive-class probability, ``multi:softprob`` a probability
matrix, ``multi:softmax``/``binary:hinge`` labels, ``binary:logitraw`` a margin, anything else
(``reg:*``, ``count:*``, ``survival:*``) values. Classes are ``0 .. num_class-1``, the labels
xgboost trains on.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gates.errors import UserError, first_line
from gates.models.base import ModelAdapter, Output, two_columns, wrong_kind
from gates.models.reads import Reads
from gates.models.trust import Trust

MSG_NOT_A_MODEL = "'{path}' is not an xgboost model file (xgboost says: {problem})"
PROBA = ("binary:logistic", "multi:softprob")
LABELS = ("multi:softmax", "binary:hinge")
MARGIN = ("binary:logitraw",)


def load(path: Path, *, trust: Trust, where: str, reads: Reads, outputs: object = None) -> ModelAdapter:
    import xgboost

    booster = xgboost.Booster()
    try:
        booster.load_model(bytearray(reads.read(path)))
        config = json.loads(booster.save_config())
        objective = str(config["learner"]["objective"]["name"])
        num_class = int(config["learner"]["learner_model_param"].get("num_class", "0") or 0)
    except (xgboost.core.XGBoostError, KeyError, ValueError, TypeError) as exc:
        raise UserError(MSG_NOT_A_MODEL.format(path=path.name, problem=_problem(exc)), location=where) from None
    best = booster.attr("best_iteration")
    return XGBoostAdapter(booster, objective, max(num_class, 2 if objective.startswith("binary:") else 0),
                          None if best is None else int(best) + 1)


@dataclass(frozen=True)
class XGBoostAdapter:
    native: Any
    objective: str
    num_class: int
    iterations: int | None
    format: str = "xgboost"

    @property
    def is_classifier(self) -> bool:
        return self.objective in PROBA + LABELS + MARGIN

    def feature_names(self, columns: Sequence[str]) -> tuple[str, ...] | None:
        names = self.native.feature_names
        return None if not names else tuple(names)

    def classes(self) -> tuple[Any, ...] | None:
        return tuple(range(self.num_class)) if self.is_classifier else None

    def predict(self, X: pd.DataFrame, task: str) -> Output:
        import xgboost

        if (task == "regression") == self.is_classifier:
            kind = "classifier" if self.is_classifier else "regressor"
            raise wrong_kind(kind, f"objective {self.objective}", task)
        names = self.native.feature_names
        data = X.set_axis(list(names), axis=1) if names and len(names) == X.shape[1] else X.to_numpy()
        dm = xgboost.DMatrix(data, enable_categorical=True)
        kwargs = {"iteration_range": (0, self.iterations)} if self.iterations else {}
        raw = np.asarray(self.native.predict(dm, **kwargs), dtype=float)
        if task == "regression":
            return Output(labels=raw.reshape(-1))
        if self.objective == "binary:logistic":
            return Output(proba=two_columns(raw))
        if self.objective == "multi:softprob":
            return Output(proba=raw.reshape(len(X), -1))
        if self.objective in MARGIN:
            return Output(labels=(raw > 0).astype(int), decision=raw)
        return Output(labels=raw.astype(int))


def _problem(exc: BaseException) -> str:
    """Return xgboost's error line without the ``[time] file:line:`` prefix its messages start with."""
    line = first_line(exc)
    return line.split(": ", 1)[-1] if line.startswith("[") else line
