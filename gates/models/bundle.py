"""Models of several files as one deterministic archive: same files, same bytes, same sha256.

An ONNX graph with external data or an MLflow model folder is registered, hashed and reported as
an uncompressed tar whose members are sorted by name, with zero times, owners and modes
``0644``; nothing of the machine that wrote it leaks into the bytes. Extraction refuses links,
devices, sparse members (which could unpack to far more bytes than the archive holds) and names
that leave the destination folder.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from gates.errors import UserError, first_line

MSG_UNSAFE_MEMBER = "the model archive holds '{name}', which is not a plain file inside the archive"
MSG_LINK_OUT = "'{name}' in the model folder is a link to a file outside it"
MSG_DUPLICATE_MEMBER = "the model archive holds '{name}' twice"
MSG_NOT_CANONICAL = ("the model archive is not one model-gates wrote (its files do not archive back to the "
                     "same bytes): it may hide other files or another model than the one gated")
MSG_BAD_ARCHIVE = "the {role} model's archive {source} is refused: {problem}"
#: the tar magic at offset 257, to tell an archived model from a single-file one
TAR_MAGIC = b"ustar"
_SCRATCH: list[Path] = []


class _HashSink(io.RawIOBase):
    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        return len(data)


def folder_files(folder: Path) -> tuple[tuple[str, Path], ...]:
    """Return every regular file under ``folder`` as (posix name inside it, path), sorted.

    A symlink is followed only when it stays inside the folder.
    """
    root = folder.resolve()
    out = []
    for path in sorted(folder.rglob("*")):
        real = path.resolve()
        if not real.is_relative_to(root):
            raise ValueError(MSG_LINK_OUT.format(name=path.relative_to(folder).as_posix()))
        if real.is_file():
            out.append((path.relative_to(folder).as_posix(), path))
    return tuple(out)


def write_archive(files: Iterable[tuple[str, Path | bytes]], out: BinaryIO) -> None:
    """Write the deterministic tar of ``files`` (name, path or the file's bytes) to ``out``."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, source in sorted(files, key=lambda f: f[0]):
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
            if isinstance(source, bytes):
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
                continue
            info.size = source.stat().st_size
            with source.open("rb") as fh:
                tar.addfile(info, fh)


def archive_sha256(files: Iterable[tuple[str, Path | bytes]]) -> str:
    """Return the sha256 of the deterministic archive of ``files`` without writing it anywhere."""
    sink = _HashSink()
    write_archive(files, sink)  # type: ignore[arg-type]
    return sink.digest.hexdigest()


def save_archive(files: Iterable[tuple[str, Path]], dest: Path) -> Path:
    """Write the deterministic archive of ``files`` to ``dest`` and return it."""
    with dest.open("wb") as fh:
        write_archive(files, fh)
    return dest


def is_archive(path: Path) -> bool:
    """True when ``path`` is a file holding a tar archive (an archived multi-file model)."""
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        head = fh.read(262)
    return head[257:262] == TAR_MAGIC


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract an archived model into ``dest`` (created empty) and return it; only plain files inside.

    Only an archive this module wrote is accepted: after extraction its files must archive back to
    exactly its bytes, so a file that is both a model and a tar, reordered, duplicated or extra
    members, and padding never load as something other than what was gated and hashed.
    """
    dest.mkdir(parents=True, exist_ok=False)
    seen: set[str] = set()
    with tarfile.open(archive, mode="r:") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            # a sparse member can be a REGTYPE too; refused: it unpacks to more bytes than it holds
            plain = member.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and not member.issparse()
            if not plain or member.name.startswith("/") or ".." in parts or not parts:
                raise ValueError(MSG_UNSAFE_MEMBER.format(name=member.name))
            if member.name in seen:
                raise ValueError(MSG_DUPLICATE_MEMBER.format(name=member.name))
            seen.add(member.name)
        tar.extractall(dest, filter="data")
    digest = hashlib.sha256()
    with archive.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if archive_sha256(folder_files(dest)) != digest.hexdigest():
        shutil.rmtree(dest, ignore_errors=True)
        raise ValueError(MSG_NOT_CANONICAL)
    return dest


def unpack_model(archive: Path, dest: Path, *, role: str, source: str, where: str) -> Path:
    """Return :func:`extract_archive` of ``archive`` into ``dest``; a hostile or broken archive is one
    UserError naming the ``role``, where the archive came from (``source``) and why, and nothing runs."""
    try:
        return extract_archive(archive, dest)
    except (ValueError, tarfile.TarError, OSError) as exc:
        raise UserError(MSG_BAD_ARCHIVE.format(role=role, source=source, problem=first_line(exc)),
                        location=where) from None


def scratch_folder(prefix: str) -> Path:
    """Return a new private folder that lives until the process ends (unpacked or downloaded models)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    _SCRATCH.append(folder)
    return folder


def private_copy(folder: Path) -> Path:
    """Return ``folder`` when it is a scratch folder of this process (unpacked or downloaded), else a copy of
    its files in a new one: a model folder is loaded and hashed from files nobody else changes meanwhile."""
    real = folder.resolve()
    if any(real.is_relative_to(s.resolve()) for s in _SCRATCH):
        return folder
    copy = scratch_folder("model-gates-model-") / folder.name
    for name, path in folder_files(folder):
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    copy.mkdir(exist_ok=True)
    return copy


@atexit.register
def _remove_scratch() -> None:
    for folder in _SCRATCH:
        shutil.rmtree(folder, ignore_errors=True)
