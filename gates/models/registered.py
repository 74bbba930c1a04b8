"""Load a model fetched from a registry, under the reading policy's trust (a registry grants none).

A registry stores a version's bytes with their format. Multi-file models (an ONNX graph with its
external data, an MLflow model folder) are stored as their deterministic archive
(:mod:`gates.models.bundle`) and unpacked into a private temporary folder before loading.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from gates.errors import UserError
from gates.models import FORMATS, LoadedModel, Trust, load_model
from gates.models.bundle import is_archive, scratch_folder, unpack_model

#: formats older registrations recorded as the file's suffix
LEGACY = {"pkl": "pickle", "joblib": "pickle"}
MSG_UNKNOWN_FORMAT = "the registry holds this model as {format!r}, a format model-gates cannot load"


def format_name(stored: str) -> str:
    """Return the model format of a registry's stored format (``joblib`` and ``pkl`` are pickle)."""
    return LEGACY.get(stored, stored)


def load_registered(path: Path, stored_format: str, *, trust: Trust, role: str, where: str, uri: str,
                    version: int | None, outputs: Mapping[str, str] | None = None) -> LoadedModel:
    """Load a registry's copy of a model (a file, or the archive of a multi-file model)."""
    fmt = format_name(stored_format)
    if fmt not in FORMATS:
        raise UserError(MSG_UNKNOWN_FORMAT.format(format=stored_format), location=where)
    target = path
    if is_archive(path):
        target = unpack_model(path, scratch_folder("model-gates-model-") / "model", role=role,
                              source=f"from the registry ({uri})", where=where)
        if fmt == "onnx":
            target = next(iter(sorted(target.glob("*.onnx"))), target / "model.onnx")
    loaded = load_model(target, fmt, trust=trust, role=role, where=where, outputs=outputs, uri=uri)
    return replace(loaded, version=version)
