"""Content-addressed model files: bytes named by their sha256, written atomically, verified on every read.

A blob lives at ``<root>/blobs/sha256/ab/abcdef....<format>`` (the suffix lets loaders pick the
format). It is written to ``<root>/tmp/``, fsynced, made read-only and renamed into place, so a
reader never sees a partial file and a crash leaves at most an orphan in ``tmp/``.
"""
from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

from gates.errors import EnvironmentProblem, UserError
from gates.hashing import file_sha256

STALE_TMP_S = 24 * 3600

MSG_BLOB_MISSING = "model bytes of {name} v{version} are missing from the registry: {path}"
MSG_BLOB_CORRUPT = (
    "model bytes of {name} v{version} are corrupted: {path} has sha256 {actual}, the registry recorded {expected}"
)
MSG_READ_MODEL = "cannot read the model file {path}: {problem}"


class BlobStore:
    """The blobs of one registry folder ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str, format: str) -> Path:
        """Return where the bytes with this digest live."""
        return self.root / "blobs" / "sha256" / sha256[:2] / f"{sha256}.{format}"

    def put(self, source: Path, format: str) -> tuple[str, int]:
        """Copy ``source`` in; return (sha256, size) of exactly the bytes stored.

        The digest is computed while copying, so it describes the stored bytes even if
        ``source`` changes meanwhile. A stored blob that no longer matches is replaced (healed).
        """
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self._sweep(tmp_dir)
        tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
        try:
            sha, size = _copy_hashing(source, tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UserError(MSG_READ_MODEL.format(path=source, problem=exc.strerror or exc)) from None
        dest = self.path(sha, format)
        if dest.is_file() and file_sha256(dest) == sha:
            tmp.unlink()
            return sha, size
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
        return sha, size

    def verified(self, sha256: str, format: str, name: str, version: int) -> Path:
        """Return the blob's path after checking its bytes; EnvironmentProblem when missing or altered."""
        path = self.path(sha256, format)
        if not path.is_file():
            raise EnvironmentProblem(MSG_BLOB_MISSING.format(name=name, version=version, path=path))
        actual = file_sha256(path)
        if actual != sha256:
            raise EnvironmentProblem(MSG_BLOB_CORRUPT.format(name=name, version=version, path=path, actual=actual,
                                                             expected=sha256))
        return path

    def problem(self, sha256: str, format: str) -> str | None:
        """Return what is wrong with a blob (for integrity reports), or None when it is sound."""
        path = self.path(sha256, format)
        if not path.is_file():
            return f"blob missing ({path})"
        if file_sha256(path) != sha256:
            return "blob does not match its sha256"
        return None

    @staticmethod
    def _sweep(tmp_dir: Path) -> None:
        """Remove partial blobs left by writers that died long ago (live writers' files are young)."""
        cutoff = time.time() - STALE_TMP_S
        for part in tmp_dir.glob("*.part"):
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
            except OSError:
                continue


def _copy_hashing(source: Path, dest: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, dest.open("wb") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            dst.write(block)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest(), size




def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries, so a rename into it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
