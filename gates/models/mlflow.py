"""MLflow models: a model folder (with its MLmodel file) or a ``models:/`` / ``runs:/`` URI.

A URI is resolved once against the tracking server (``registry.uri`` when the registry backend
is mlflow, else ``MLFLOW_TRACKING_URI``): ``models:/NAME@ALIAS`` to the version the alias holds
now, and that exact version's artifacts are downloaded, so the report records the URI, the
resolved version and the sha256 of the artifacts (their deterministic archive).

The MLmodel file says which flavours the folder holds; it never says what may run. Flavours whose
files are data are preferred (sklearn saved with skops, xgboost, a LightGBM Booster, onnx) and
are loaded by this package's own loaders under the policy's trust: a skops file's types must be
trusted by the policy (the MLmodel's ``skops_trusted_types`` is ignored). Pickle-based flavours
(sklearn or LightGBM with pickle/cloudpickle, python_function models) load only with
``trust_pickle: true``.
"""
from __future__ import annotations

import os
from importlib import import_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gates.errors import EnvironmentProblem, UserError, first_line as _first_line
from gates.models.base import LoadedModel, ModelAdapter, Output
from gates.models.bundle import folder_files, scratch_folder
from gates.models.estimator import EstimatorAdapter
from gates.models.reads import Reads
from gates.models.trust import Trust

MSG_NO_MLMODEL = "'{path}' is not an MLflow model folder: it has no MLmodel file"
MSG_BAD_MLMODEL = "the MLmodel file of '{path}' cannot be read: {problem}"
MSG_NO_FLAVOUR = ("the MLflow model '{path}' has no flavour model-gates can load (it has: {have}); "
                  "log it with the sklearn (skops), xgboost, lightgbm or onnx flavour")
MSG_PICKLE_FLAVOUR = ("the MLflow model '{path}' is stored with pickle ({flavour} flavour, {how}), which can run "
                      "arbitrary code when loaded; set model.trust_pickle: true if you trust its origin, or log "
                      "it with skops (serialization_format='skops') or the model library's own format")
MSG_NO_TRACKING = ("{uri} needs an MLflow tracking server: set MLFLOW_TRACKING_URI (or registry.backend: mlflow "
                   "with registry.uri)")
MSG_RESOLVE = "{uri} cannot be resolved against {tracking}: {problem}"
MSG_DOWNLOAD = "the artifacts of {uri} cannot be downloaded from {tracking}: {problem}"
SAFE_SKLEARN = ("skops",)


def load(path: Path, *, trust: Trust, where: str, reads: Reads,
         outputs: Mapping[str, str] | None = None) -> ModelAdapter:
    """Load the MLflow model folder ``path`` (a private copy: :func:`gates.models.load_model`) by its safest
    flavour, under ``trust``."""
    mlmodel = path / "MLmodel"
    if not path.is_dir() or not mlmodel.is_file():
        raise UserError(MSG_NO_MLMODEL.format(path=path.name), location=where)
    try:
        doc = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
        flavours = dict(doc["flavors"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(MSG_BAD_MLMODEL.format(path=path.name, problem=str(exc).splitlines()[0]),
                        location=where) from None
    files = folder_files(path)
    inner = _load_flavour(path, flavours, trust, where, outputs, reads)
    return MlflowAdapter(inner, files, _flavour_name(flavours))


def _load_flavour(path: Path, flavours: dict[str, Any], trust: Trust, where: str,
                  outputs: Mapping[str, str] | None, reads: Reads) -> ModelAdapter:
    def data(conf: Mapping[str, Any], key: str = "data") -> Path:
        return _inside(path, str(conf[key]), where)

    def by(fmt: str, file: Path) -> ModelAdapter:
        from gates.models import extra_problem

        problem = extra_problem(fmt)
        if problem:
            raise UserError(problem, location=where)
        adapter: ModelAdapter = import_module(f"gates.models.{fmt}").load(file, trust=trust, where=where,
                                                                          reads=reads, outputs=outputs)
        return adapter

    sk = flavours.get("sklearn")
    if sk and sk.get("serialization_format") in SAFE_SKLEARN:
        return by("skops", data(sk, "pickled_model"))
    if flavours.get("xgboost"):
        return by("xgboost", data(flavours["xgboost"]))
    lg = flavours.get("lightgbm")
    if lg and str(lg.get("model_class", "")).endswith("Booster"):
        return by("lightgbm", data(lg))
    if lg and lg.get("serialization_format") in SAFE_SKLEARN:
        return by("skops", data(lg))
    if flavours.get("onnx"):
        return by("onnx", data(flavours["onnx"]))
    for name in ("sklearn", "lightgbm"):
        conf = flavours.get(name)
        if conf:
            how = str(conf.get("serialization_format", "cloudpickle"))
            _require_pickle(path, trust, where, name, how)
            key = "pickled_model" if name == "sklearn" else "data"
            return EstimatorAdapter(_unpickle(reads.read(data(conf, key))), "mlflow")
    pyfunc = flavours.get("python_function")
    if pyfunc:
        _require_pickle(path, trust, where, "python_function", str(pyfunc.get("loader_module", "a Python loader")))
        import mlflow.pyfunc

        return PyfuncAdapter(mlflow.pyfunc.load_model(str(path)))
    raise UserError(MSG_NO_FLAVOUR.format(path=path.name, have=", ".join(sorted(flavours)) or "none"), location=where)


def _flavour_name(flavours: Mapping[str, Any]) -> str:
    for name in ("sklearn", "xgboost", "lightgbm", "onnx", "python_function"):
        if name in flavours:
            return name
    return "none"


def _require_pickle(path: Path, trust: Trust, where: str, flavour: str, how: str) -> None:
    if not trust.trust_pickle:
        raise UserError(MSG_PICKLE_FLAVOUR.format(path=path.name, flavour=flavour, how=how), location=where)


def _unpickle(data: bytes) -> Any:
    import cloudpickle

    return cloudpickle.loads(data)


def _inside(folder: Path, name: str, where: str) -> Path:
    """Return the flavour's file ``name`` if it is inside ``folder`` (the MLmodel file is user input)."""
    target = folder / name
    if Path(name).is_absolute() or ".." in Path(name).parts or not target.resolve().is_relative_to(folder.resolve()):
        raise UserError(MSG_BAD_MLMODEL.format(path=folder.name, problem=f"'{name}' is outside the model folder"),
                        location=where)
    return target


@dataclass(frozen=True)
class MlflowAdapter:
    """An MLflow model folder: the flavour's adapter and every file of the folder."""

    inner: ModelAdapter
    files: tuple[tuple[str, Path], ...]
    flavour: str
    format: str = "mlflow"

    @property
    def native(self) -> Any:
        return self.inner.native

    def feature_names(self, columns: Sequence[str]) -> tuple[str, ...] | None:
        return self.inner.feature_names(columns)

    def classes(self) -> tuple[Any, ...] | None:
        return self.inner.classes()

    def predict(self, X: pd.DataFrame, task: str) -> Output:
        return self.inner.predict(X, task)


@dataclass(frozen=True)
class PyfuncAdapter:
    """A python_function model (trusted pickle): labels or values from its ``predict``."""

    native: Any
    format: str = "mlflow"

    def feature_names(self, columns: Sequence[str]) -> tuple[str, ...] | None:
        schema = self.native.metadata.get_input_schema()
        names = schema.input_names() if schema is not None else None
        return tuple(str(n) for n in names) if names and all(isinstance(n, str) for n in names) else None

    def classes(self) -> tuple[Any, ...] | None:
        return None

    def predict(self, X: pd.DataFrame, task: str) -> Output:
        out = self.native.predict(X)
        values = out.to_numpy() if hasattr(out, "to_numpy") else np.asarray(out)
        return Output(labels=values.reshape(len(X), -1)[:, 0])


# ---------------------------------------------------------------- models:/ and runs:/ URIs


@dataclass(frozen=True)
class Resolved:
    """An MLflow URI pinned to what it named when it was resolved."""

    download_uri: str
    version: int | None
    run_id: str | None


def tracking_uri(registry: Any) -> str | None:
    """Return the tracking URI a policy resolves MLflow URIs against."""
    if registry is not None and getattr(registry, "backend", None) == "mlflow" and registry.uri:
        return str(registry.uri)
    return os.environ.get("MLFLOW_TRACKING_URI") or None


def resolve(uri: str, tracking: str) -> Resolved:
    """Pin ``uri`` to a version (``models:/``) or a run (``runs:/``), asking the server once."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if uri.startswith("runs:/"):
        run_id = uri[len("runs:/"):].split("/", 1)[0]
        return Resolved(uri, None, run_id)
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    rest = uri[len("models:/"):]
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, version = rest.split("/", 1)
            mv = client.get_model_version(name, version)
        source = client.get_model_version_download_uri(name, mv.version)
    except MlflowException as exc:
        raise UserError(MSG_RESOLVE.format(uri=uri, tracking=_redact(tracking), problem=_first_line(exc))) from None
    return Resolved(source, int(mv.version), mv.run_id or None)


def load_uri(uri: str, *, trust: Trust, role: str, where: str, outputs: Mapping[str, str] | None = None,
             registry: Any = None) -> LoadedModel:
    """Resolve an MLflow model URI once, download its artifacts and load them under ``trust``."""
    from gates.models import load_model

    tracking = tracking_uri(registry)
    if not tracking:
        raise UserError(MSG_NO_TRACKING.format(uri=uri), location=where)
    try:
        pinned = resolve(uri, tracking)
    except UserError as exc:
        raise UserError(f"model.{role}: {exc.message}", location=where) from None
    folder = _download(pinned, uri, tracking, where)
    loaded = load_model(folder, "mlflow", trust=trust, role=role, where=where, outputs=outputs, uri=uri)
    return replace(loaded, version=pinned.version, run_id=pinned.run_id)


def _download(pinned: Resolved, uri: str, tracking: str, where: str) -> Path:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    dest = scratch_folder("model-gates-mlflow-")
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=pinned.download_uri, dst_path=str(dest),
                                                    tracking_uri=tracking)
    except MlflowException as exc:
        raise UserError(MSG_DOWNLOAD.format(uri=uri, tracking=_redact(tracking), problem=_first_line(exc)),
                        location=where) from None
    except OSError as exc:
        raise EnvironmentProblem(MSG_DOWNLOAD.format(uri=uri, tracking=_redact(tracking),
                                                     problem=exc.strerror or exc)) from None
    return Path(local)


def _redact(uri: str) -> str:
    from gates.registry.mlflow_client import redact

    return redact(uri)
