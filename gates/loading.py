"""Read eval/reference tables and model files; hash their bytes."""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gates.datasets import is_many, read_many
from gates.errors import UserError, first_line as _first_line
from gates.models.trust import MSG_PICKLE

MSG_TABLE_FORMAT = "unsupported data file: expected .csv or .parquet"
MSG_TABLE_READ = "cannot read data file: {problem}"
MSG_MODEL_READ = "cannot load model file: {problem}"
MSG_NOT_A_FILE = "model path is not a regular file: {path}"
MSG_MODEL_FORMAT = "unsupported model file '{path}': expected .skops, .joblib or .pkl"
MSG_REGISTRY_PICKLE = (
    "the baseline {uri} is a {format} file, which can run arbitrary code when loaded; a registry "
    "grants no trust: set model.trust_pickle: true in this policy only if you trust how it got there"
)


def read_table(path: Path, location: str | None = None) -> pd.DataFrame:
    """Return a CSV or Parquet file, or a folder or glob of Parquet files, as a DataFrame.

    Raises a UserError naming the file on anything unreadable.
    """
    where = location or str(path)
    if is_many(path):
        return read_many(path, where)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError, ImportError) as exc:
        raise UserError(MSG_TABLE_READ.format(problem=_first_line(exc)), location=where) from None
    raise UserError(MSG_TABLE_FORMAT, location=where)


@dataclass(frozen=True)
class LoadedModel:
    """A model object with the facts lineage needs about the bytes it came from."""

    estimator: Any
    path: Path
    format: str
    sha256: str


def load_model(path: Path, *, trusted_types: tuple[str, ...] = (), trust_pickle: bool = False,
               location: str | None = None) -> LoadedModel:
    """Load a ``.skops`` model safely, or a pickle-based one only when ``trust_pickle``.

    A ``.skops`` file loads when every type skops' own audit lists is in ``trusted_types``
    (:func:`gates.models.trust.audit_skops`); nothing else is trusted, whatever module a type is from.
    """
    where = location or str(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise UserError(MSG_NOT_A_FILE.format(path=path), location=where)
    if suffix not in (".skops", ".joblib", ".pkl", ".pickle"):
        raise UserError(MSG_MODEL_FORMAT.format(path=path.name), location=where)
    if suffix != ".skops" and not trust_pickle:
        raise UserError(MSG_PICKLE.format(path=path.name), location=where)
    try:
        data = path.read_bytes()  # read once: these bytes are both hashed and loaded
        sha = hashlib.sha256(data).hexdigest()
        if suffix == ".skops":
            from gates.models.trust import load_skops

            return LoadedModel(load_skops(data, trusted_types, where), path, "skops", sha)
        import joblib

        return LoadedModel(joblib.load(io.BytesIO(data)), path, suffix.lstrip("."), sha)
    except UserError:
        raise
    except Exception as exc:  # a model file is user input: any failure to read it is theirs to fix
        raise UserError(MSG_MODEL_READ.format(problem=_first_line(exc)), location=where) from None
