"""What a ``per_example`` run evaluated: ``model.artifact`` (a file, a folder or a URI), or nothing.

An LLM prompt, an agent's config or a ranker bundle is not a model file model-gates can load, but
it is what gets released, so it is what the registry records: a file by its bytes, a folder as a
deterministic tar (sorted paths, zeroed times and owners, so the same tree always has the same
sha256), a URI (``s3://``, ``hf://``, ...) by a small JSON manifest naming it, since its bytes are
not here. Without an artifact the manifest names only what was gated: the eval data and the policy.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.errors import UserError
from gates.hashing import file_sha256

FORMAT_FILE = "artifact"
FORMAT_FOLDER = "tar"
FORMAT_MANIFEST = "manifest"

MSG_UNREADABLE = "cannot read model.artifact {path}: {problem}"
MSG_NOT_A_FILE = "model.artifact {path} is neither a regular file nor a folder"
MSG_CHANGED = "model.artifact {path} changed during the run (sha256 {expected} when gated, {actual} now)"


@dataclass(frozen=True)
class Artifact:
    """The evaluated version: ``uri`` as the policy gave it (resolved), its sha256 when its bytes are local."""

    uri: str | None
    sha256: str | None
    format: str

    @property
    def is_local(self) -> bool:
        return self.format in (FORMAT_FILE, FORMAT_FOLDER)


def describe(artifact: str | None) -> Artifact:
    """Return what ``model.artifact`` is: a file or folder (hashed), a URI, or None."""
    if artifact is None or "://" in artifact:
        return Artifact(artifact, None, FORMAT_MANIFEST)
    path = Path(artifact)
    if path.is_dir():
        return Artifact(artifact, _digest_folder(path), FORMAT_FOLDER)
    if not path.is_file():  # a FIFO or a device would be read forever
        raise UserError(MSG_NOT_A_FILE.format(path=artifact))
    try:
        return Artifact(artifact, file_sha256(path), FORMAT_FILE)
    except OSError as exc:
        raise UserError(MSG_UNREADABLE.format(path=artifact, problem=exc.strerror or exc)) from None


class _HashSink(io.RawIOBase):
    """A write-only stream that only hashes what is written (tar of a folder, never stored)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return len(data)


def _digest_folder(folder: Path) -> str:
    sink = _HashSink()
    write_tar(folder, sink)
    return sink.hash.hexdigest()


def write_tar(folder: Path, out: Any) -> None:
    """Write ``folder`` as a deterministic tar to the binary stream ``out``.

    Entries are sorted by path; times, owners and permission bits beyond executable are dropped;
    symbolic links are stored as links (never followed), so a link cannot pull outside bytes in.
    """
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk(folder):
            rel = path.relative_to(folder).as_posix()
            info = tar.gettarinfo(str(path), arcname=rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.pax_headers = {}
            if info.isreg():
                info.mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                info.mode = 0o755 if info.isdir() else 0o777
                tar.addfile(info)


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        base = Path(root)
        found += [base / d for d in dirs] + [base / f for f in sorted(files)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def manifest(artifact: Artifact, report: Mapping[str, Any]) -> bytes:
    """Return the JSON bytes registered for an artifact without local bytes (a URI, or none)."""
    model = report.get("model") or {}
    body = {"kind": "per_example", "artifact": artifact.uri, "scores": (model.get("candidate") or {}).get("scores"),
            "data": {k: (v or {}).get("sha256") for k, v in (report.get("data") or {}).items()},
            "policy_sha256": (report.get("policy") or {}).get("sha256")}
    return json.dumps(body, sort_keys=True, indent=1).encode() + b"\n"


def stage(artifact: Artifact, report: Mapping[str, Any], folder: Path) -> tuple[Path, str]:
    """Write the bytes to register into ``folder``; return their path and sha256."""
    if artifact.format == FORMAT_FILE:
        assert artifact.uri is not None and artifact.sha256 is not None
        return Path(artifact.uri), artifact.sha256
    target = folder / f"artifact.{artifact.format}"
    if artifact.format == FORMAT_FOLDER:
        assert artifact.uri is not None
        with target.open("wb") as fh:
            write_tar(Path(artifact.uri), fh)
    else:
        target.write_bytes(manifest(artifact, report))
    return target, file_sha256(target)
