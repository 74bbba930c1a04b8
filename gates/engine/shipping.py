"""Model files sent to workers as bytes, checked by sha256 on the worker before they are loaded.

The client reads each model file once, records its sha256 and hands the bytes to the engine,
which sends them to every worker once. A worker recomputes the sha256 of what arrived and
refuses to load bytes that differ; then it loads them under the same trust rules as the client
(skops' audit against ``trusted_types``, pickle only with ``trust_pickle``), through the same
:func:`gates.loading.load_model`. Loaded models are kept per worker process, keyed by sha256, so
the partitions a worker computes load each model once.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.errors import UserError
from gates.loading import LoadedModel, load_model

if TYPE_CHECKING:
    from gates.engine import Engine

MSG_SHA_MISMATCH = ("the {role} model's bytes on this worker have sha256 {got}, not {want} as sent by the "
                    "client: refusing to load them")

#: models loaded in this (worker) process, by sha256
_LOADED: dict[str, LoadedModel] = {}


@dataclass(frozen=True)
class ShippedModel:
    """What a worker needs to load one model besides its bytes: name, sha256 and trust rules."""

    role: str
    name: str
    sha256: str
    trusted_types: tuple[str, ...] = ()
    trust_pickle: bool = False


def ship(engine: Engine, role: str, path: Path, sha256: str, *, trusted_types: tuple[str, ...],
         trust_pickle: bool) -> tuple[ShippedModel, Any]:
    """Read a model file once and send its bytes to the workers; ``sha256`` is what the client loaded.

    Returns the model's description and the engine's handle to its bytes (a task argument that
    arrives on the worker as the bytes themselves).
    """
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:  # the file changed between the client's load and now
        raise UserError(MSG_SHA_MISMATCH.format(role=role, got=got, want=sha256), location=str(path))
    return ShippedModel(role, path.name, sha256, tuple(trusted_types), trust_pickle), engine.share(data)


def load_shipped(model: ShippedModel, data: bytes) -> LoadedModel:
    """Return the model a worker received as ``data``, after checking its sha256 (runs on a worker)."""
    got = hashlib.sha256(data).hexdigest()
    if got != model.sha256:
        raise UserError(MSG_SHA_MISMATCH.format(role=model.role, got=got, want=model.sha256), location=model.name)
    if got not in _LOADED:
        with tempfile.TemporaryDirectory(prefix="model-gates-") as folder:
            path = Path(folder) / model.name  # the suffix tells load_model the format, as on the client
            path.write_bytes(data)
            _LOADED[got] = load_model(path, trusted_types=model.trusted_types, trust_pickle=model.trust_pickle,
                                      location=model.name)
    return _LOADED[got]
