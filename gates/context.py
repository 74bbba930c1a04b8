"""EvalContext: the eval data loaded once and each model's predictions computed once.

Every gate reads data and predictions from here; robustness asks for predictions on perturbed
copies through :meth:`EvalContext.predict`, the only extra inference a run does.
"""
from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from gates.artifacts import Artifact, describe
from gates.clusters import ClusterIndex, cluster_index
from gates.errors import UserError, first_line as _first_line
from gates.datasets import data_sha256
from gates.loading import MSG_REGISTRY_PICKLE, read_table
from gates.models import LoadedModel, Trust, load_model
from gates.models.registered import format_name, load_registered
from gates.policy import ModelSource, Policy

Role = Literal["candidate", "baseline"]

MSG_MISSING_COLUMN = "column '{col}' is not in {what} ({path})"
MSG_NO_FEATURES = (
    "cannot tell which columns the {role} model ({name}) takes: it names none; list them as "
    "model.{role}.features ({{path: ..., features: [...]}}) or data.features"
)
MSG_MISSING_FEATURES = (
    "the {role} model ({name}) takes {n} column(s) the eval data ({path}) does not have: {cols} "
    "(from {origin})"
)
MSG_POSITIVE_LABEL = "positive_label {label!r} is not one of the model's classes {classes}"
MSG_PREDICT_FAILED = "the {role} model ({name}) raised on predict: {problem}"
MSG_EMPTY_EVAL = "the eval data has no rows"
MSG_NO_TARGET = "no eval row has a target: column '{col}' is empty in all {n} rows"
#: example row labels kept of the rows without a target (for data.target.not_null's details)
MAX_MISSING_KEPT = 100
MSG_SCORE_NOT_NUMERIC = "score column '{col}' is not numeric (dtype {dtype})"
PER_EXAMPLE = "per_example"


@dataclass(frozen=True)
class Predictions:
    """One model's output on a frame.

    ``labels`` are predicted labels (regression: predicted values). ``scores`` is the positive
    class's probability for binary tasks (shape ``(n,)``), class probabilities in ``classes``
    order for multiclass (``(n, k)``), or None when the model gives no scores.
    """

    labels: np.ndarray
    scores: np.ndarray | None
    classes: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """A baseline found in the registry: a verified local copy of its bytes and its identity."""

    path: Path
    format: str
    uri: str
    sha256: str
    version: int | None = None
    #: what is loaded inside a multi-file model's archive, as its lineage records it
    entry: str | None = None


#: resolves ``registry:<ref>`` (an alias or a version) to a model, or None when nothing is there
BaselineResolver = Callable[[str], ResolvedModel | None]


@dataclass(frozen=True)
class ModelInfo:
    """What the report and lineage say about one model."""

    uri: str
    sha256: str | None
    format: str
    version: int | None = None
    scores: dict[str, str] | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class ScoredRows:
    """Which eval rows have a target. ``mask`` is True for each scored row, in eval order."""

    mask: np.ndarray
    missing_index: tuple[Any, ...] = ()

    @property
    def n_rows(self) -> int:
        return int(self.mask.size)

    @property
    def n_scored(self) -> int:
        return int(self.mask.sum())

    @property
    def n_unscored(self) -> int:
        return self.n_rows - self.n_scored


class PredictFailed(RuntimeError):
    """A model raised on predict; the message names the model (candidate/baseline) and its file."""


class EvalContext:
    """Data and cached predictions for one gate run.

    Parameters
    ----------
    policy : the loaded policy.
    resolve_baseline : turns ``registry:<ref>`` into a model; None means no registry is consulted
        (a registry baseline is then absent).
    require_baseline : baseline-relative checks fail (instead of being skipped) when there is no
        baseline (``--require-baseline``).
    """

    def __init__(self, policy: Policy, resolve_baseline: BaselineResolver | None = None, *,
                 require_baseline: bool = False) -> None:
        self.policy = policy
        self.require_baseline = require_baseline
        self._resolve = resolve_baseline
        self._predictions: dict[Role, Predictions] = {}
        self._resolved_baseline: ResolvedModel | None = None
        self._features: dict[Role, list[str]] = {}

    # ------------------------------------------------------------------ data

    @cached_property
    def eval_frame(self) -> pd.DataFrame:
        """Every row of the eval data, with the target and every referenced column checked.

        The data gate checks these rows; the other gates score :attr:`frame`, the rows with a target.
        """
        spec = self.policy.data
        df = read_table(spec.eval, self.policy.where("data", "eval"))
        if len(df) == 0:
            raise UserError(MSG_EMPTY_EVAL, location=self.policy.where("data", "eval"))
        if spec.target is not None:
            self._require(df, [spec.target], ("data", "target"), "the eval data")
        self._require(df, list(spec.sensitive), ("data", "sensitive"), "the eval data")
        if spec.cluster is not None:
            self._require(df, [spec.cluster], ("data", "cluster"), "the eval data")
        for role in ("candidate", "baseline"):
            src: ModelSource = getattr(self.policy.model, role)
            if src.kind == "columns":
                cols = [src.predictions] if src.predictions else []
                cols += [src.scores] if isinstance(src.scores, str) else list(src.scores or ())
                cols += [c for _, c in src.named_scores]
                self._require(df, cols, ("model", role), "the eval data")
        self._require_named_columns(df, lambda: self.reference)
        return df

    def _require_named_columns(self, df: pd.DataFrame, reference: Callable[[], pd.DataFrame | None]) -> None:
        """Raise a located UserError for the first column a gate section names that the eval data lacks,
        then for the first one it reads from ``data.reference`` that the reference lacks (``reference()``
        gives the reference's rows or schema; it is called only when some section names such a column).
        The columns are the policy's, read from the sections at load (:attr:`Policy.named_columns`)."""
        for keypath, col in self.policy.named_columns:
            self._require(df, [col], keypath, "the eval data")
        ref_path = self.policy.data.reference
        named = self.policy.reference_columns
        if ref_path is None or not named:
            return
        ref = reference()
        if ref is not None:
            for keypath, col in named:
                self._require(ref, [col], keypath, "the reference data", ref_path.name)

    @cached_property
    def scored(self) -> ScoredRows:
        """Which eval rows have a target: the only rows any gate scores (computed once)."""
        if self.policy.data.target is None:
            return ScoredRows(mask=np.ones(len(self.eval_frame), dtype=bool))
        missing = target_missing(self.eval_frame[self.policy.data.target])
        mask = ~missing
        if not mask.any():
            raise UserError(MSG_NO_TARGET.format(col=self.policy.data.target, n=len(mask)),
                            location=self.policy.where("data", "target"))
        return ScoredRows(mask=mask, missing_index=tuple(self.eval_frame.index[missing][:MAX_MISSING_KEPT]))

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The scored rows: the eval rows that have a target (their index is the eval data's)."""
        rows = self.scored
        return self.eval_frame if rows.n_unscored == 0 else self.eval_frame[rows.mask]

    @property
    def is_per_example(self) -> bool:
        return self.policy.model.task == PER_EXAMPLE

    @cached_property
    def clusters(self) -> ClusterIndex | None:
        """The eval rows' clusters (``data.cluster``), or None when rows are independent."""
        column = self.policy.data.cluster
        return None if column is None else cluster_index(self.frame, column)

    @cached_property
    def artifact(self) -> Artifact:
        """What a per_example run evaluated (``model.artifact``: a file, folder, URI, or none)."""
        return describe(self.policy.model.artifact)

    @cached_property
    def reference(self) -> pd.DataFrame | None:
        """The reference (training) snapshot, or None when the policy has none."""
        ref = self.policy.data.reference
        return None if ref is None else read_table(ref, self.policy.where("data", "reference"))

    @cached_property
    def y_true(self) -> np.ndarray:
        """The target column; per_example has none, and its metrics read only scores (zeros stand in)."""
        if self.policy.data.target is None:
            return np.zeros(self.n_rows)
        return as_labels(self.frame[self.policy.data.target].to_numpy(), self.policy.model.task)

    @property
    def n_rows(self) -> int:
        """The number of scored rows."""
        return len(self.frame)

    @cached_property
    def data_info(self) -> dict[str, dict[str, Any]]:
        """sha256 and row counts of the eval and reference data (for the report and lineage)."""
        out: dict[str, dict[str, Any]] = {"eval": {"uri": str(self.policy.data.eval),
                                                   "sha256": data_sha256(self.policy.data.eval),
                                                   "rows": len(self.eval_frame)}}
        if self.clusters is not None:
            out["eval"].update(cluster=self.clusters.column, clusters=self.clusters.n_clusters)
        if self.policy.data.reference is not None:
            ref = self.reference
            out["reference"] = {"uri": str(self.policy.data.reference),
                                "sha256": data_sha256(self.policy.data.reference),
                                "rows": 0 if ref is None else len(ref)}
        return out

    def _require(self, df: pd.DataFrame, cols: list[str], keypath: tuple[str | int, ...], what: str,
                 path: str | None = None) -> None:
        """Raise a located UserError naming the first of ``cols`` that ``df`` (``path``, else the eval data) lacks."""
        for col in cols:
            if col not in df.columns:
                path = path or self.policy.data.eval.name
                close = difflib.get_close_matches(str(col), [str(c) for c in df.columns], n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                dotted = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keypath).lstrip(".")
                raise UserError(f"{dotted}: " + MSG_MISSING_COLUMN.format(col=col, what=what, path=path) + hint,
                                location=self.policy.where(*keypath))

    # ------------------------------------------------------------------ models

    @cached_property
    def candidate_model(self) -> LoadedModel | None:
        return self._load("candidate")

    @cached_property
    def baseline_model(self) -> LoadedModel | None:
        return self._load("baseline")

    def model(self, role: Role) -> LoadedModel | None:
        """Return the loaded model object of ``role``, or None for prediction columns / no baseline."""
        return self.candidate_model if role == "candidate" else self.baseline_model

    def _load(self, role: Role) -> LoadedModel | None:
        """Load ``role``'s model under the policy's trust (a registry or an MLmodel file adds none)."""
        src: ModelSource = getattr(self.policy.model, role)
        spec = self.policy.model
        trust = Trust(trust_pickle=spec.trust_pickle, trusted_types=spec.trusted_types)
        where = self.policy.where("model", role)
        if src.kind == "file" and src.path is not None:
            return load_model(src.path, src.format or "skops", trust=trust, role=role, where=where,
                              outputs=src.outputs)
        if src.kind == "mlflow" and src.model_uri is not None:
            from gates.models.mlflow import load_uri

            return load_uri(src.model_uri, trust=trust, role=role, where=where, outputs=src.outputs,
                            registry=self.policy.registry)
        if src.kind == "registry" and self.resolved_baseline is not None:
            found = self.resolved_baseline  # a registry grants no trust: this policy's rules apply
            if format_name(found.format) == "pickle" and not spec.trust_pickle:
                raise UserError(MSG_REGISTRY_PICKLE.format(uri=found.uri, format=found.format), location=where)
            return load_registered(found.path, found.format, trust=trust, role=role, where=found.uri,
                                   uri=found.uri, version=found.version, entry=found.entry)
        return None

    @cached_property
    def resolved_baseline(self) -> ResolvedModel | None:
        ref = self.policy.model.baseline.registry_ref
        if ref is None or self._resolve is None:
            return None
        return self._resolve(ref)

    @property
    def has_baseline(self) -> bool:
        """True when a baseline exists (a model, prediction columns, or a registry version)."""
        src = self.policy.model.baseline
        if src.kind in ("file", "mlflow") or (src.kind == "columns" and src.registry_ref is None):
            return True
        return src.registry_ref is not None and self.resolved_baseline is not None

    def model_info(self, role: Role) -> ModelInfo | None:
        """Return uri, sha256, format and registry version of ``role``'s model (None if absent)."""
        if role == "baseline" and not self.has_baseline:
            return None
        src: ModelSource = getattr(self.policy.model, role)
        if role == "candidate" and self.is_per_example:
            art = self.artifact
            return ModelInfo(uri=art.uri or src.uri, sha256=art.sha256, format=art.format,
                             scores=src.score_columns)
        named = src.score_columns or None
        if src.kind == "columns" and src.registry_ref is not None and self.resolved_baseline is not None:
            r = self.resolved_baseline
            columns = "columns:" + ",".join(src.score_columns.values())
            return ModelInfo(uri=f"{r.uri} {columns}", sha256=r.sha256, format="columns", version=r.version,
                             scores=named)
        if src.kind == "columns":
            return ModelInfo(uri=src.uri, sha256=None, format="columns", scores=named)
        if src.kind == "registry" and self.resolved_baseline is not None:
            r = self.resolved_baseline
            return ModelInfo(uri=r.uri, sha256=r.sha256, format=r.format, version=r.version)
        loaded = self.model(role)
        assert loaded is not None
        return ModelInfo(uri=loaded.uri or str(loaded.path), sha256=loaded.sha256, format=loaded.format,
                         version=loaded.version, run_id=loaded.run_id)

    def features_of(self, role: Role) -> list[str]:
        """The columns ``role``'s model takes: its ``features`` in the policy, else the model's own
        feature names, else ``data.features``; each checked against the eval data."""
        if role not in self._features:
            self._features[role] = self._find_features(role)
        return self._features[role]

    def _find_features(self, role: Role) -> list[str]:
        src: ModelSource = getattr(self.policy.model, role)
        loaded = self.model(role)
        name = _shown_name(loaded) if loaded is not None else src.uri
        columns = [str(c) for c in self.frame.columns]
        if src.features:
            names, keypath, origin = list(src.features), ("model", role, "features"), "its features"
        else:
            own = loaded.adapter.feature_names(columns) if loaded is not None else None
            if own:
                names, keypath, origin = list(own), ("model", role), "the model's own feature names"
            elif self.policy.data.features:
                names, keypath, origin = list(self.policy.data.features), ("data", "features"), "data.features"
            else:
                raise UserError(MSG_NO_FEATURES.format(role=role, name=name), location=self.policy.where("model", role))
        missing = [c for c in names if c not in self.frame.columns]
        if missing:
            raise UserError(MSG_MISSING_FEATURES.format(role=role, name=name, n=len(missing), cols=", ".join(missing),
                                                        origin=origin, path=self.policy.data.eval.name),
                            location=self.policy.where(*keypath))
        return names

    @cached_property
    def features(self) -> list[str]:
        """Every column some model takes: the candidate's, then the baseline's others (in order)."""
        out: list[str] = []
        for role in ("candidate", "baseline"):
            if self.model(role) is not None:  # type: ignore[arg-type]
                out += [c for c in self.features_of(role) if c not in out]  # type: ignore[arg-type]
        if out:
            return out
        if self.policy.data.features:
            self._require(self.frame, list(self.policy.data.features), ("data", "features"), "the eval data")
            return list(self.policy.data.features)
        raise UserError(MSG_NO_FEATURES.format(role="candidate", name=self.policy.model.candidate.uri),
                        location=self.policy.where("data"))

    # ------------------------------------------------------------------ predictions

    def predictions(self, role: Role) -> Predictions | None:
        """Return ``role``'s predictions on the eval data, computed once; None if there is no such model."""
        if role not in self._predictions:
            if role == "baseline" and not self.has_baseline:
                return None
            src: ModelSource = getattr(self.policy.model, role)
            if src.kind == "columns":
                self._predictions[role] = self._from_columns(src)
            else:
                self._predictions[role] = self._predict_eval(role)
        return self._predictions[role]

    def computed_predictions(self, role: Role) -> Predictions | None:
        """Return ``role``'s eval predictions if a gate already asked for them (never runs a model)."""
        return self._predictions.get(role)

    def _predict_eval(self, role: Role) -> Predictions:
        try:
            return self.predict(role, self.frame)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 -- said with the model's name and file
            loaded = self.model(role)
            name = _shown_name(loaded) if loaded is not None else role
            raise PredictFailed(MSG_PREDICT_FAILED.format(role=role, name=name, problem=_first_line(exc))) from exc

    def predict(self, role: Role, frame: pd.DataFrame) -> Predictions:
        """Run ``role``'s model on ``frame`` (one batched call); raises UserError if it has none.

        What the model raises passes through (robustness reads it as a finding); on the eval data,
        :meth:`predictions` turns it into :class:`PredictFailed` naming the model and its file.
        """
        loaded = self.model(role)
        if loaded is None:
            raise UserError(f"the {role} is given as prediction columns, so it cannot be re-scored",
                            location=self.policy.where("model", role))
        X = frame[self.features_of(role)]
        task = self.policy.model.task
        out = loaded.adapter.predict(X, task)
        if task == "regression":
            return Predictions(labels=np.asarray(out.labels, dtype=float).reshape(-1), scores=None)
        classes = loaded.adapter.classes()
        if out.proba is not None and classes is not None:
            return self._from_proba(out.proba, classes)
        return Predictions(labels=np.asarray(out.labels), scores=out.decision, classes=classes or None)

    def _from_proba(self, proba: np.ndarray, classes: tuple[Any, ...]) -> Predictions:
        if self.policy.model.task == "binary_classification":
            pos = self.policy.model.positive_label
            if pos not in classes:
                raise UserError(MSG_POSITIVE_LABEL.format(label=pos, classes=list(classes)),
                                location=self.policy.where("model", "positive_label"))
            idx = classes.index(pos)
            neg = classes[1 - idx] if len(classes) == 2 else self.negative_label
            scores = proba[:, idx]
            labels = np.where(scores >= self.policy.model.threshold, pos, neg)
            return Predictions(labels=labels, scores=scores, classes=classes)
        labels = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        return Predictions(labels=_tighten(labels), scores=proba, classes=classes)

    def _from_columns(self, src: ModelSource) -> Predictions:
        if src.named_scores:
            return self._from_named_scores(src)
        df = self.frame
        task = self.policy.model.task
        scores: np.ndarray | None = None
        if isinstance(src.scores, str):
            scores = df[src.scores].to_numpy(dtype=float)
        elif src.scores:
            scores = df[list(src.scores)].to_numpy(dtype=float)
        classes = self.classes if task != "regression" else None
        if src.predictions:
            labels = df[src.predictions].to_numpy()
        elif task == "binary_classification" and scores is not None:
            labels = np.where(scores >= self.policy.model.threshold, self.policy.model.positive_label,
                              self.negative_label)
        elif scores is not None and classes is not None:
            labels = np.asarray(classes, dtype=object)[np.argmax(scores, axis=1)]
        else:
            labels = df[src.scores].to_numpy()  # type: ignore[index]
        return Predictions(labels=_tighten(labels), scores=scores, classes=classes)

    def _from_named_scores(self, src: ModelSource) -> Predictions:
        """Return a per_example model's scores: an ``(n, k)`` matrix, ``classes`` naming its columns."""
        role = "candidate" if src is self.policy.model.candidate else "baseline"
        columns = []
        for name, col in src.named_scores:
            series = self.frame[col]
            if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
                raise UserError(f"model.{role}.scores.{name}: "
                                + MSG_SCORE_NOT_NUMERIC.format(col=col, dtype=series.dtype),
                                location=self.policy.where("model", role, "scores", name))
            columns.append(series.to_numpy(dtype=np.float64, na_value=np.nan))
        scores = np.column_stack(columns)
        return Predictions(labels=scores, scores=scores, classes=tuple(n for n, _ in src.named_scores))

    @cached_property
    def classes(self) -> tuple[Any, ...]:
        """The sorted labels seen in the target (the class order of score columns)."""
        return tuple(sorted(pd.unique(self.y_true).tolist()))

    @cached_property
    def negative_label(self) -> Any:
        """For binary tasks: the target's label that is not ``positive_label``."""
        pos = self.policy.model.positive_label
        others = [c for c in self.classes if c != pos]
        return others[0] if others else (0 if pos != 0 else 1)

    # ------------------------------------------------------------------ randomness

    def rng(self, *names: str) -> np.random.Generator:
        """Return a generator seeded by the policy's seed and a stable hash of ``names``."""
        return make_rng(self.policy.seed, *names)


def target_missing(target: pd.Series) -> np.ndarray:
    """Return True for each row without a target: null, or a number that is not finite (never scored)."""
    missing = target.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target):
        missing = missing | ~np.isfinite(target.to_numpy(dtype=float, na_value=np.nan))
    return missing


def as_labels(y: np.ndarray, task: str) -> np.ndarray:
    """Return a classification target's whole floats as integers (a 0/1 column with gaps reads as floats)."""
    if task in ("binary_classification", "multiclass_classification") and y.dtype.kind == "f" \
            and np.all(y == np.round(y)):
        return y.astype(np.int64)
    return y


def make_rng(seed: int, *names: str) -> np.random.Generator:
    """Return a generator derived from ``seed`` and ``names`` (stable across processes)."""
    key = hashlib.sha256("\x1f".join(names).encode()).digest()
    words = [int.from_bytes(key[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def _tighten(values: np.ndarray) -> np.ndarray:
    """Give an object array of uniform numbers a numeric dtype, so comparisons with y are exact."""
    if values.dtype == object:
        try:
            return np.asarray(values.tolist())
        except (ValueError, TypeError):
            return values
    return values



def _shown_name(loaded: LoadedModel) -> str:
    """Return how messages name a model: its file, or for a registry's copy (a blob named by its sha256)
    the reference it was resolved from (``registry:production (v3)``)."""
    if loaded.uri and loaded.uri.startswith("registry:"):
        return loaded.uri
    return loaded.path.name
