"""Model files sent to workers as bytes, checked by sha256 on the worker before they are loaded.

The client loads each model once (its trust rules and identity), reads the file's bytes, checks
they are the bytes it loaded and hands them to the engine, which sends them to every worker once.
A worker recomputes the sha256 of what arrived and refuses to load bytes that differ; then it
loads them under the same trust rules as the client (skops' audit against ``trusted_types``,
pickle only with ``trust_pickle``), through the same :func:`gates.models.load_model`. Loaded
models are kept per worker process, keyed by sha256, so a worker loads each model once however
many partitions it computes. A model of several files (ONNX with external data, an MLflow
folder) is not shipped yet.
"""
from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.errors import UserError
from gates.models import LoadedModel, Trust, load_model

if TYPE_CHECKING:
    from gates.engine import Engine

MSG_SHA_MISMATCH = ("the {role} model's bytes on this worker have sha256 {got}, not {want} as sent by the "
                    "client: refusing to load them")
MSG_BUNDLE = "the {role} model is several files ({name}); only single-file models are shipped to workers"

#: models loaded in this (worker) process, by sha256
_LOADED: dict[str, LoadedModel] = {}


class NotShippable(Exception):
    """A model the engine cannot send to workers; the message says why."""


@dataclass(frozen=True)
class ShippedModel:
    """What a worker needs to load one model besides its bytes: name, format, sha256 and trust rules."""

    role: str
    name: str
    format: str
    sha256: str
    trust: Trust
    outputs: Mapping[str, str] | None = None


def ship(engine: Engine, role: str, loaded: LoadedModel, trust: Trust,
         outputs: Mapping[str, str] | None = None) -> tuple[ShippedModel, Any]:
    """Send a loaded model's file to the workers; return its description and the engine's handle
    to its bytes (a task argument that arrives on the worker as the bytes themselves)."""
    if loaded.is_bundle:
        raise NotShippable(MSG_BUNDLE.format(role=role, name=loaded.path.name))
    data = loaded.path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != loaded.sha256:  # the file changed between the client's load and now
        raise UserError(MSG_SHA_MISMATCH.format(role=role, got=got, want=loaded.sha256), location=str(loaded.path))
    shipped = ShippedModel(role, loaded.path.name, loaded.format, loaded.sha256, trust,
                           dict(outputs) if outputs else None)
    return shipped, engine.share(data)


def load_shipped(model: ShippedModel, data: bytes) -> LoadedModel:
    """Return the model a worker received as ``data``, after checking its sha256 (runs on a worker)."""
    got = hashlib.sha256(data).hexdigest()
    if got != model.sha256:
        raise UserError(MSG_SHA_MISMATCH.format(role=model.role, got=got, want=model.sha256), location=model.name)
    if got not in _LOADED:
        with tempfile.TemporaryDirectory(prefix="model-gates-") as folder:
            path = Path(folder) / model.name
            path.write_bytes(data)
            _LOADED[got] = load_model(path, model.format, trust=model.trust, role=model.role, where=model.name,
                                      outputs=model.outputs)
    return _LOADED[got]
