"""Load a model fetched from a registry, under the reading policy's trust (a registry grants none).

A registry stores a version's bytes with their format. Multi-file models (an ONNX graph with its
external data, an MLflow model folder) are stored as their deterministic archive
(:mod:`gates.models.bundle`) and unpacked into a private temporary folder before loading.
"""
from __future__ import annotations

import tarfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from gates.errors import UserError, first_line as _first_line
from gates.models import FORMATS, LoadedModel, Trust, load_model
from gates.models.bundle import extract_archive, is_archive, scratch_folder

#: formats older registrations recorded as the file's suffix
LEGACY = {"pkl": "pickle", "joblib": "pickle"}
MSG_UNKNOWN_FORMAT = "the registry holds this model as {format!r}, a format model-gates cannot load"
MSG_BAD_ARCHIVE = "the {role} model's archive from the registry ({uri}) is refused: {problem}"


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
        try:
            target = extract_archive(path, scratch_folder("model-gates-model-") / "model")
        except (ValueError, tarfile.TarError, OSError) as exc:  # a hostile or broken archive: nothing runs
            raise UserError(MSG_BAD_ARCHIVE.format(role=role, uri=uri, problem=_first_line(exc)), location=where) from None
        if fmt == "onnx":
            target = next(iter(sorted(target.glob("*.onnx"))), target / "model.onnx")
    loaded = load_model(target, fmt, trust=trust, role=role, where=where, outputs=outputs, uri=uri)
    return replace(loaded, version=version)
