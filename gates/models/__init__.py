"""Model formats: one module per format, each turning a file into a :class:`ModelAdapter`.

=========  ==========================================  =====================================
format     files                                       loaded by
=========  ==========================================  =====================================
skops      ``.skops``                                  skops, types audited against the policy
pickle     ``.pkl``, ``.joblib``, ``.pickle``          joblib, only with ``trust_pickle``
xgboost    ``.ubj``, ``.json`` (format said)           ``xgboost.Booster.load_model``
lightgbm   text model file (``.txt``, format said)     ``lightgbm.Booster``
onnx       ``.onnx`` (+ external data beside it)       onnxruntime, CPU provider only
mlflow     an MLflow model folder or ``models:/...``   the flavour's file, by the formats above
=========  ==========================================  =====================================

This module imports no model library: a format's library is imported when a model of that
format is loaded, and a missing one is a config error naming the pip command.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

from gates.errors import UserError, first_line as _first_line
from gates.models.base import LoadedModel, ModelAdapter, Output, check_adapter
from gates.models.reads import Reads
from gates.models.trust import Trust

__all__ = ["FORMATS", "LoadedModel", "ModelAdapter", "Output", "Trust", "default_format", "extra_problem",
           "load_model", "MODEL_URI"]

FORMATS = ("skops", "pickle", "xgboost", "lightgbm", "onnx", "mlflow")
#: file extensions whose format is known without being said
EXTENSIONS = {".skops": "skops", ".pkl": "pickle", ".joblib": "pickle", ".pickle": "pickle",
              ".ubj": "xgboost", ".onnx": "onnx"}
#: extensions several formats use: the policy must say which
AMBIGUOUS = {".json": "xgboost", ".txt": "lightgbm"}
#: the extra and the modules each format needs
EXTRAS = {"xgboost": ("xgboost", ("xgboost",)), "lightgbm": ("lightgbm", ("lightgbm",)),
          "onnx": ("onnx", ("onnxruntime", "onnx")), "mlflow": ("mlflow", ("mlflow",))}
MODEL_URI = re.compile(r"models:/[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[A-Za-z][A-Za-z0-9_-]{0,63}|/[1-9][0-9]*)"
                       r"|runs:/[0-9A-Za-z]+/[^\s]+")

MSG_AMBIGUOUS = ("a {ext} file can be more than one model format: say which, e.g. "
                 "{{path: {name}, format: {example}}}")
MSG_UNKNOWN_EXTENSION = ("unsupported model file '{name}': expected .skops, .pkl, .joblib, .ubj or .onnx, "
                         "an MLflow model folder, or a format (one of " + ", ".join(FORMATS) + ")")
MSG_EXTRA = "the {format} format needs the '{extra}' extra: pip install 'model-gates[{extra}]'"
MSG_BAD_URI = "expected an MLflow model URI models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/PATH, got {got!r}"
MSG_MODULE_MISSING = (
    "cannot load the {role} model ({name}): it needs the module '{module}', which is missing from the "
    "environment that loads the model (install the package that defines it)"
)
MSG_LOAD_FAILED = "the {role} model ({name}) could not be loaded as {format}: {problem}"


def default_format(path: Path) -> str:
    """Return the format a model path's extension (or an MLmodel file in a folder) says.

    Raises ValueError with the message to show when the extension is ambiguous or unknown.
    """
    if path.is_dir() and (path / "MLmodel").is_file():
        return "mlflow"
    ext = path.suffix.lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if ext in AMBIGUOUS:
        raise ValueError(MSG_AMBIGUOUS.format(ext=ext, name=path.name, example=AMBIGUOUS[ext]))
    raise ValueError(MSG_UNKNOWN_EXTENSION.format(name=path.name))


def extra_problem(format: str) -> str | None:
    """Return the message for a format whose library is not installed, or None."""
    if format not in EXTRAS:
        return None
    extra, modules = EXTRAS[format]
    if all(find_spec(m) is not None for m in modules):
        return None
    return MSG_EXTRA.format(format=format, extra=extra)


def load_model(path: Path, format: str, *, trust: Trust, role: str, where: str,
               outputs: Mapping[str, str] | None = None, uri: str | None = None) -> LoadedModel:
    """Load the ``format`` model at ``path`` under ``trust``; every failure is a UserError naming
    ``role`` and the file.

    The sha256 is the file's, or for a model of several files (an ONNX graph with external data,
    an MLflow folder) their deterministic archive's, computed from the very bytes the model was built
    from (:class:`gates.models.reads.Reads`: each file is read once), so a file replaced while it is
    loaded is never reported under a digest it does not have.
    """
    problem = extra_problem(format)
    if problem:
        raise UserError(problem, location=where)
    module = import_module(f"gates.models.{format}")
    reads = Reads()
    source = path  # what is loaded: the file, or a private copy of a model folder's files
    try:
        if path.is_dir():
            from gates.models.bundle import private_copy

            source = private_copy(path)
        adapter = module.load(source, trust=trust, where=where, outputs=outputs, reads=reads)
    except UserError as exc:
        raise UserError(_named(exc.message, role, path), location=exc.location or where) from None
    except ModuleNotFoundError as exc:  # a pickled class whose package this environment lacks
        raise UserError(MSG_MODULE_MISSING.format(role=role, name=path.name, module=exc.name or _first_line(exc)),
                        location=where) from None
    except Exception as exc:  # a model file is user input: any failure to read it is theirs to fix
        raise UserError(MSG_LOAD_FAILED.format(role=role, name=path.name, format=format, problem=_first_line(exc)),
                        location=where) from None
    check_adapter(adapter, format)
    files = tuple(getattr(adapter, "files", ()) or ((source.name, source),))
    return LoadedModel(adapter=adapter, path=source, format=format, sha256=model_sha256(files, reads, source),
                       files=files, uri=uri or str(path))


def model_sha256(files: tuple[tuple[str, Path], ...], reads: Reads, path: Path) -> str:
    """Return the sha256 of the bytes the model at ``path`` was loaded from: its file's, its files' deterministic
    archive's (an ONNX graph and its external data), or for a model folder the archive of its private copy."""
    if path.is_dir():
        from gates.models.bundle import archive_sha256

        return archive_sha256(files)
    return reads.sha256(files)


def _named(message: str, role: str, path: Path) -> str:
    prefix = f"the {role} model ({path.name}): "
    return message if message.startswith("the ") and f"({path.name})" in message else prefix + message
