"""Eval and reference data as files: one file, a folder of Parquet files, or a glob.

A data source names its files in a fixed order (sorted relative names), so its identity (one
sha256 over the names and bytes), its batches and its partitions are the same on every machine.
Parquet sources are read through ``pyarrow.dataset``: in batches for the embedded engine, and as
``(file, row range)`` partitions that dask workers read themselves.
"""
from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.errors import UserError, first_line as _first_line
from gates.hashing import BLOCK, file_sha256

MSG_EMPTY_FOLDER = "the folder {path} holds no Parquet files (*.parquet, *.pq)"
MSG_EMPTY_GLOB = "the pattern {path} matches no files"
MSG_NOT_PARQUET = "a folder or glob of data must hold Parquet files; {name} is not one"
MSG_SCHEMAS_DIFFER = "the Parquet files of {path} do not share one schema: {problem}"
MSG_READ = "cannot read data file: {problem}"

PARQUET_SUFFIXES = (".parquet", ".pq")
GLOB_CHARS = frozenset("*?[")


def is_glob(value: str | Path) -> bool:
    """Return True when a data path is a glob pattern (has ``*``, ``?`` or ``[``)."""
    return any(c in GLOB_CHARS for c in str(value))


def is_many(path: Path) -> bool:
    """Return True when ``path`` names several files (a folder or a glob), not one file."""
    return is_glob(path) or path.is_dir()


def data_files(path: Path, location: str | None = None) -> tuple[Path, ...]:
    """Return the files of a data source in their fixed order; raise a UserError when there are none."""
    where = location or str(path)
    if is_glob(path):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not files:
            raise UserError(MSG_EMPTY_GLOB.format(path=path), location=where)
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES
                       and not _hidden(p.relative_to(path)))
        if not files:
            raise UserError(MSG_EMPTY_FOLDER.format(path=path), location=where)
    else:
        return (path,)
    for f in files:
        if f.suffix.lower() not in PARQUET_SUFFIXES:
            raise UserError(MSG_NOT_PARQUET.format(name=f.name), location=where)
    return tuple(files)


def root_of(path: Path) -> Path:
    """Return the folder file names of a source are relative to (a glob's non-pattern prefix)."""
    if path.is_dir():
        return path
    parts: list[str] = []
    for part in path.parts:
        if is_glob(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _hidden(rel: Path) -> bool:
    """Files under ``_`` or ``.`` names (``_SUCCESS``, ``.crc``, ``_temporary``) are not data, as in Spark."""
    return any(p.startswith(("_", ".")) for p in rel.parts)


def data_sha256(path: Path, location: str | None = None) -> str:
    """Return the sha256 of a data source.

    One file: the sha256 of its bytes. A folder or glob: one sha256 over each file, in order, as
    its name relative to the source's root, a NUL, its size as 8 bytes and its bytes; so renaming,
    adding or editing any file changes it, and moving the whole folder does not.
    """
    if not is_many(path):
        return file_sha256(path)
    root = root_of(path)
    digest = hashlib.sha256()
    for f in data_files(path, location):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.stat().st_size.to_bytes(8, "little"))
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()


def dataset(path: Path, location: str | None = None) -> Any:
    """Return the ``pyarrow.dataset.Dataset`` of a Parquet source (one file, folder or glob)."""
    import pyarrow.dataset as ds

    files = [str(f) for f in data_files(path, location)]
    try:
        return ds.dataset(files, format="parquet")
    except Exception as exc:  # noqa: BLE001 -- unreadable or mismatched files are the user's to fix
        raise UserError(MSG_READ.format(problem=_first_line(exc)), location=location or str(path)) from None


def read_many(path: Path, location: str | None = None, columns: Sequence[str] | None = None) -> Any:
    """Return every row of a folder or glob of Parquet files as one DataFrame (files in order)."""
    where = location or str(path)
    data = dataset(path, where)
    try:
        table = data.to_table(columns=list(columns) if columns is not None else None)
    except Exception as exc:  # noqa: BLE001 -- a schema mismatch between files surfaces here
        raise UserError(MSG_SCHEMAS_DIFFER.format(path=path, problem=_first_line(exc)), location=where) from None
    return table.to_pandas()


def iter_batches(path: Path, batch_rows: int, columns: Sequence[str] | None = None,
                 location: str | None = None) -> Iterator[Any]:
    """Yield a Parquet source's rows as DataFrames of at most ``batch_rows`` rows, in file order.

    Each batch keeps its rows' positions in the whole source as its index, so examples name
    the same rows whichever way the source is split.
    """
    import pandas as pd

    scanner = dataset(path, location).scanner(columns=list(columns) if columns is not None else None,
                                              batch_size=batch_rows, use_threads=False)
    start = 0
    for batch in scanner.to_batches():
        if batch.num_rows == 0:
            continue
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame


@dataclass(frozen=True)
class Partition:
    """Rows ``[start, stop)`` of one file (Parquet row groups ``row_groups``); ``offset`` is the
    position of the partition's first row in the whole source."""

    file: str
    row_groups: tuple[int, ...]
    offset: int
    rows: int

    def read(self, columns: Sequence[str] | None = None) -> Any:
        """Return this partition's rows as a DataFrame indexed by their position in the source."""
        import pandas as pd
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.file)
        table = pf.read_row_groups(list(self.row_groups), columns=list(columns) if columns is not None else None,
                                   use_threads=False)
        frame = table.to_pandas()
        frame.index = pd.RangeIndex(self.offset, self.offset + len(frame))
        return frame


def partitions(path: Path, target_rows: int, location: str | None = None) -> list[Partition]:
    """Return a source's partitions: runs of whole row groups of about ``target_rows`` rows, in order."""
    import pyarrow.parquet as pq

    out: list[Partition] = []
    offset = 0
    for f in data_files(path, location):
        try:
            meta = pq.ParquetFile(f).metadata
        except Exception as exc:  # noqa: BLE001 -- a file that is not Parquet
            raise UserError(MSG_READ.format(problem=_first_line(exc)), location=location or str(f)) from None
        groups: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= target_rows:
                out.append(Partition(str(f), tuple(groups), offset, rows))
                offset, groups, rows = offset + rows, [], 0
        if groups and rows:
            out.append(Partition(str(f), tuple(groups), offset, rows))
            offset += rows
    return out


def empty_frame(path: Path, location: str | None = None) -> Any:
    """Return a zero-row DataFrame with a Parquet source's columns and dtypes (its schema only)."""
    return dataset(path, location).schema.empty_table().to_pandas()
