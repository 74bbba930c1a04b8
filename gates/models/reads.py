"""The bytes a model was loaded from, each file read once: a model's sha256 is the digest of those bytes.

A loader never opens a model file itself: it asks :meth:`Reads.read`, which reads each file once and
keeps its bytes until the model's sha256 is computed from them (:meth:`Reads.sha256`). A file
replaced between two reads (hashed as one file, loaded as another) is therefore impossible: there is
one read, and it is both hashed and loaded.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


class Reads:
    """Every file one model's loader read, by absolute path, with the bytes it got."""

    def __init__(self) -> None:
        self._bytes: dict[str, bytes] = {}

    def read(self, path: Path) -> bytes:
        """Return the bytes of ``path``, reading it only the first time it is asked for."""
        key = os.path.abspath(path)
        if key not in self._bytes:
            self._bytes[key] = Path(key).read_bytes()
        return self._bytes[key]

    def sha256(self, files: Iterable[tuple[str, Path]]) -> str:
        """Return the sha256 of the one file in ``files`` as it was read, or of the deterministic archive of
        several (:func:`gates.models.bundle.archive_sha256`) made from the bytes read."""
        members = [(name, self.read(path)) for name, path in files]
        if len(members) == 1:
            return hashlib.sha256(members[0][1]).hexdigest()
        from gates.models.bundle import archive_sha256

        return archive_sha256(members)
