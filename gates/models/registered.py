"""Load a model fetched from a registry, under the reading policy's trust (a registry grants none).

A registry stores a version's bytes with their format. Multi-file models (an ONNX graph with its
external data, an MLflow model folder) are stored as their deterministic archive
(:mod:`gates.models.bundle`) and unpacked into a private temporary folder before loading. The model
is loaded at the entry its lineage records (the graph's file), and must use every file of the archive:
one holding a second graph, or any file the loaded model does not read, is refused.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from gates.errors import UserError
from gates.models import FORMATS, LoadedModel, Trust, load_model
from gates.hashing import file_sha256
from gates.models.bundle import MSG_BAD_ARCHIVE, folder_files, is_archive, scratch_folder, unpack_model

#: formats older registrations recorded as the file's suffix
LEGACY = {"pkl": "pickle", "joblib": "pickle"}
MSG_UNKNOWN_FORMAT = "the registry holds this model as {format!r}, a format model-gates cannot load"
MSG_NO_ENTRY = "its lineage names '{entry}' as the model, which is not a file in the archive"
MSG_UNUSED_FILES = "it holds {names}, which the model loaded from it does not use"
MSG_WHICH_GRAPH = "it holds {n} ONNX graphs ({names}) and its lineage does not record which one is the model"


def format_name(stored: str) -> str:
    """Return the model format of a registry's stored format (``joblib`` and ``pkl`` are pickle)."""
    return LEGACY.get(stored, stored)


def load_registered(path: Path, stored_format: str, *, trust: Trust, role: str, where: str, uri: str,
                    version: int | None, outputs: Mapping[str, str] | None = None,
                    entry: str | None = None) -> LoadedModel:
    """Load a registry's copy of a model (a file, or the archive of a multi-file model, loaded at the
    ``entry`` its lineage records: :func:`entry_path`)."""
    fmt = format_name(stored_format)
    if fmt not in FORMATS:
        raise UserError(MSG_UNKNOWN_FORMAT.format(format=stored_format), location=where)
    if not is_archive(path):
        return replace(load_model(path, fmt, trust=trust, role=role, where=where, outputs=outputs, uri=uri),
                       version=version)
    source = f"from the registry ({uri})"
    folder = unpack_model(path, scratch_folder("model-gates-model-") / "model", role=role, source=source, where=where)
    try:
        loaded = load_model(entry_path(folder, fmt, entry), fmt, trust=trust, role=role, where=where,
                            outputs=outputs, uri=uri)
        unused = sorted({n for n, _ in folder_files(folder)} - {n for n, _ in loaded.files})
        if unused or loaded.sha256 != file_sha256(path):
            raise ValueError(MSG_UNUSED_FILES.format(names=", ".join(unused) or "other bytes"))
    except ValueError as exc:
        raise UserError(MSG_BAD_ARCHIVE.format(role=role, source=source, problem=exc), location=where) from None
    return replace(loaded, version=version)


def recorded_entry(lineage: Mapping[str, Any]) -> str | None:
    """Return the entry a version's lineage records (``model.entry``: what to load inside its archive)."""
    model = lineage.get("model") if isinstance(lineage, Mapping) else None
    entry = model.get("entry") if isinstance(model, Mapping) else None
    return entry if isinstance(entry, str) else None


def entry_path(folder: Path, fmt: str, entry: str | None) -> Path:
    """Return what to load inside an unpacked model archive: the folder itself for an MLflow model, else
    the file ``entry`` names (from the lineage); with none recorded, the archive's only ONNX graph.

    Never "the first graph": an archive with a second graph never has it loaded in place of the one
    that was gated. Raises ValueError saying why when ``entry`` is not a file in ``folder`` or the
    graph is ambiguous.
    """
    if fmt == "mlflow" or entry == ".":
        return folder
    if entry is not None:
        parts = PurePosixPath(entry).parts
        target = folder / entry
        if not parts or PurePosixPath(entry).is_absolute() or ".." in parts or not target.is_file():
            raise ValueError(MSG_NO_ENTRY.format(entry=entry))
        return target
    graphs = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.onnx") if p.is_file())
    if len(graphs) != 1:
        raise ValueError(MSG_WHICH_GRAPH.format(n=len(graphs), names=", ".join(graphs) or "none"))
    return folder / graphs[0]
