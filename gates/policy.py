"""The loaded policy: frozen dataclasses built from a validated gates.yaml."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["binary_classification", "multiclass_classification", "regression", "per_example"]
KeyPath = tuple[str | int, ...]

DEFAULT_SEED = 20261122
DEFAULT_REGISTRY_URI = ".model-gates/registry"
#: the alias a registration on pass points at unless ``registry.on_pass.alias`` says otherwise
DEFAULT_ALIAS_ON_PASS = "staging"


@dataclass(frozen=True)
class ModelSource:
    """Where a model's predictions come from.

    ``kind`` is ``file`` (a model file or MLflow model folder at ``path``), ``mlflow`` (an MLflow
    model URI ``model_uri``), ``columns`` (prediction and/or score columns of the eval data),
    ``registry`` (``ref`` is an alias or a version number) or ``none``. ``format`` is the model
    format (given, or from the file's extension), ``features`` the columns this model takes when
    the policy names them, ``outputs`` an ONNX graph's output names (``label``, ``probabilities``).
    ``named_scores`` holds a ``per_example`` model's ``(metric name, column)`` pairs; with ``ref``
    set too, those columns are the scores of the registered version ``ref`` names.
    """

    kind: Literal["file", "mlflow", "columns", "registry", "none"]
    path: Path | None = None
    predictions: str | None = None
    scores: str | tuple[str, ...] | None = None
    ref: str | None = None
    named_scores: tuple[tuple[str, str], ...] = ()
    format: str | None = None
    features: tuple[str, ...] | None = None
    outputs: Mapping[str, str] | None = None
    model_uri: str | None = None

    @property
    def registry_ref(self) -> str | None:
        """Return the registry alias or version this source names (its scores' owner), if any."""
        return self.ref if self.kind in ("registry", "columns") else None

    @property
    def score_columns(self) -> dict[str, str]:
        """Return a per_example model's metric name -> score column."""
        return dict(self.named_scores)

    @property
    def uri(self) -> str:
        if self.named_scores:
            columns = "columns:" + ",".join(col for _, col in self.named_scores)
            return f"registry:{self.ref} {columns}" if self.ref else columns
        if self.kind == "file":
            return str(self.path)
        if self.kind == "mlflow":
            return str(self.model_uri)
        if self.kind == "registry":
            return f"registry:{self.ref}"
        if self.kind == "columns":
            cols = [c for c in (self.predictions, self.scores) if c]
            return "columns:" + ",".join(c if isinstance(c, str) else "+".join(c) for c in cols)
        return "none"

    @property
    def is_model(self) -> bool:
        """True when predictions come from a model object (a file or an MLflow URI)."""
        return self.kind in ("file", "mlflow")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: Task
    candidate: ModelSource
    baseline: ModelSource
    positive_label: Any = 1
    threshold: float = 0.5
    trust_pickle: bool = False
    trusted_types: tuple[str, ...] = ()
    #: per_example: the evaluated version's prompt/config/model bundle (a local path or a URI), if any
    artifact: str | None = None


@dataclass(frozen=True)
class DataSpec:
    """The ``data`` section. ``target`` is None only for ``per_example`` (scores need no target);
    ``cluster`` names the column whose rows are resampled together."""

    eval: Path
    target: str | None
    reference: Path | None = None
    features: tuple[str, ...] | None = None
    sensitive: tuple[str, ...] = ()
    cluster: str | None = None


@dataclass(frozen=True)
class RegistrySpec:
    backend: Literal["local", "mlflow"] = "local"
    uri: str = DEFAULT_REGISTRY_URI
    register_on_pass: bool = True
    alias_on_pass: str | None = DEFAULT_ALIAS_ON_PASS


@dataclass(frozen=True)
class EngineSpec:
    """Where the gates compute: ``local`` (embedded; Parquet read in ``batches`` when every gate of the
    run has a partitioned form) or ``dask`` (a scheduler at ``address``, else a LocalCluster of
    ``workers`` processes, default the machine's cores)."""

    kind: Literal["local", "dask"] = "local"
    address: str | None = None
    workers: int | None = None
    #: local only: read Parquet data in batches when every gate of the run can (False: always whole)
    batches: bool = True


@dataclass(frozen=True)
class Waiver:
    """A request to turn one check's failure into ``waived``; ``by`` says who or what asked."""

    check: str
    reason: str
    by: str
    expires: dt.date | None = None
    source: str = "config"


@dataclass(frozen=True)
class Policy:
    """A validated gates.yaml.

    ``gates`` keeps the sections as written; ``plans`` holds each one parsed once, at load, by its
    gate (:meth:`plan` reads it). ``lines`` maps key paths to line numbers so later errors can
    still point into the file.
    """

    path: Path
    sha256: str
    model: ModelSpec
    data: DataSpec
    registry: RegistrySpec
    seed: int = DEFAULT_SEED
    mode: Literal["enforce", "shadow"] = "enforce"
    gates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    waivers: tuple[Waiver, ...] = ()
    engine: EngineSpec = EngineSpec()
    lines: Mapping[KeyPath, int] = field(default_factory=dict, compare=False, repr=False)
    #: the eval columns the gate sections name, by key path (``("gates", gate, ...)``), read at load
    named_columns: tuple[tuple[KeyPath, str], ...] = field(default=(), compare=False, repr=False)
    #: the columns the gate sections read from ``data.reference``, by key path
    reference_columns: tuple[tuple[KeyPath, str], ...] = field(default=(), compare=False, repr=False)
    #: each gate section's plan (``GateKind.make_plan``), by gate name, made at load
    plans: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def plan(self, gate: str) -> Any:
        """Return ``gate``'s plan made at load; its section as written on a Policy built without plans."""
        return self.plans.get(gate, self.gates[gate])

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def is_shadow(self) -> bool:
        return self.mode == "shadow"

    def where(self, *keypath: str | int) -> str:
        """Return ``file:line`` of the deepest known key on ``keypath`` (``file`` if none)."""
        for end in range(len(keypath), 0, -1):
            line = self.lines.get(tuple(keypath[:end]))
            if line is not None:
                return f"{self.path.name}:{line}"
        return self.path.name
