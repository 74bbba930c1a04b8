"""Model files sent to workers as bytes, checked by sha256 on the worker before they are loaded.

The client loads each model once (its trust rules and identity), reads the file's bytes, checks
they are the bytes it loaded and hands them to the engine, which sends them to every worker once.
A worker recomputes the sha256 of what arrived and refuses to load bytes that differ; then it
loads them under the same trust rules as the client (skops' audit against ``trusted_types``,
pickle only with ``trust_pickle``), through the same :func:`gates.models.load_model`. Loaded
models are kept per worker process, keyed by sha256, so a worker loads each model once however
many partitions it computes. The local engine computes in the client's process: it is handed the
model the client loaded, never bytes to load a second time.

A model of several files (an ONNX graph with external data, an MLflow model folder) travels as
its deterministic archive (:mod:`gates.models.bundle`, the bytes the registry stores and whose
sha256 the report names). The worker checks the archive's sha256, unpacks it into a private
temporary folder, refusing any member that is not a plain file inside it, and loads the model
from there.
"""
from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from gates.errors import UserError
from gates.models import LoadedModel, Trust, load_model
from gates.models.bundle import scratch_folder, unpack_model, write_archive

if TYPE_CHECKING:
    from gates.engine import Engine

MSG_SHA_MISMATCH = ("the {role} model's bytes on this worker have sha256 {got}, not {want} as sent by the "
                    "client: refusing to load them")

#: what a partition task receives for a model: its file's bytes (checked, then loaded, on a worker) or, with
#: the local engine, the model the client loaded
ModelHandle: TypeAlias = bytes | LoadedModel

#: models loaded in this (worker) process, by sha256 and the trust, outputs and entry they were loaded with
_LOADED: dict[tuple[str, ...], LoadedModel] = {}


@dataclass(frozen=True)
class ShippedModel:
    """What a worker needs to load one model besides its bytes: name, format, sha256 and trust rules.

    ``entry`` is set for a model of several files: what to load inside the unpacked archive (the
    graph's file name, or ``"."`` for a model folder).
    """

    role: str
    name: str
    format: str
    sha256: str
    trust: Trust
    outputs: Mapping[str, str] | None = None
    entry: str | None = None


def ship(engine: Engine, role: str, loaded: LoadedModel, trust: Trust,
         outputs: Mapping[str, str] | None = None) -> tuple[ShippedModel, Any]:
    """Send a loaded model's file (or its files' archive) to the workers; return its description
    and the engine's handle to a :data:`ModelHandle` (a task argument that arrives on the worker as
    the bytes, or with the local engine the loaded model itself)."""
    shipped = ShippedModel(role, loaded.path.name, loaded.format, loaded.sha256, trust,
                           dict(outputs) if outputs else None, loaded.entry)
    if engine.kind == "local":  # the tasks run in this process: the client's model is the one they would load
        return shipped, engine.share(loaded)
    return shipped, engine.share(_model_bytes(role, loaded))


def _model_bytes(role: str, loaded: LoadedModel) -> bytes:
    """Return the bytes a loaded model was built from: its file's, or its files' deterministic archive."""
    if loaded.is_bundle:
        out = io.BytesIO()
        write_archive(loaded.files, out)
        data = out.getvalue()
    else:
        data = loaded.path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != loaded.sha256:  # the file changed between the client's load and now
        raise UserError(MSG_SHA_MISMATCH.format(role=role, got=got, want=loaded.sha256), location=str(loaded.path))
    return data


def load_shipped(model: ShippedModel, data: ModelHandle) -> LoadedModel:
    """Return the model a task received as ``data``: the client's loaded model as is, or bytes loaded
    after checking their sha256 (on a worker)."""
    if isinstance(data, LoadedModel):
        return data
    got = hashlib.sha256(data).hexdigest()
    if got != model.sha256:
        raise UserError(MSG_SHA_MISMATCH.format(role=model.role, got=got, want=model.sha256), location=model.name)
    # a worker outlives runs: a model loaded under one policy's trust is never reused under another's
    key = (got, model.format, repr(model.trust), repr(sorted((model.outputs or {}).items())), model.entry)
    if key in _LOADED:
        return _LOADED[key]
    if model.entry is None:
        with tempfile.TemporaryDirectory(prefix="model-gates-") as folder:
            path = Path(folder) / model.name
            path.write_bytes(data)
            _LOADED[key] = _load(model, path)
    else:  # the unpacked files stay while the worker lives: a loader may read them lazily
        _LOADED[key] = _load(model, _unpack(model, data) / model.entry)
    return _LOADED[key]


def _load(model: ShippedModel, path: Path) -> LoadedModel:
    return load_model(path, model.format, trust=model.trust, role=model.role, where=model.name,
                      outputs=model.outputs)


def _unpack(model: ShippedModel, data: bytes) -> Path:
    """Unpack a model's archive into a new private folder and return that folder; nothing unsafe is written."""
    folder = scratch_folder("model-gates-model-")
    archive = folder / "model.tar"
    archive.write_bytes(data)
    try:
        return unpack_model(archive, folder / "model", role=model.role, source="on this worker", where=model.name)
    finally:
        archive.unlink()
