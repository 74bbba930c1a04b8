"""model.artifact: what a per_example run evaluated, hashed and registered as it is."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from gates.artifacts import FORMAT_FILE, FORMAT_FOLDER, FORMAT_MANIFEST, describe, stage, write_tar


def bundle(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


FILES = {"system.txt": b"You are a support bot.\n", "tools/search.json": b'{"k": 5}\n', "z.yaml": b"t: 0.2\n"}


def test_a_file_is_its_bytes(tmp_path: Path) -> None:
    (tmp_path / "prompt.txt").write_bytes(b"hello")
    art = describe(str(tmp_path / "prompt.txt"))
    assert art.format == FORMAT_FILE and art.sha256 == hashlib.sha256(b"hello").hexdigest()


def test_a_folder_hash_ignores_times_and_location_but_not_content(tmp_path: Path) -> None:
    a = bundle(tmp_path / "a", FILES)
    b = bundle(tmp_path / "elsewhere" / "b", dict(reversed(list(FILES.items()))))
    os.utime(b / "system.txt", (1_000_000, 1_000_000))
    assert describe(str(a)).sha256 == describe(str(b)).sha256
    assert describe(str(a)).format == FORMAT_FOLDER
    (b / "z.yaml").write_bytes(b"t: 0.3\n")
    assert describe(str(a)).sha256 != describe(str(b)).sha256
    (b / "z.yaml").write_bytes(b"t: 0.2\n")
    (b / "extra").mkdir()
    assert describe(str(a)).sha256 != describe(str(b)).sha256  # an empty folder is part of the tree


def test_the_registered_tar_holds_the_exact_bytes_and_hashes_as_described(tmp_path: Path) -> None:
    folder = bundle(tmp_path / "bundle", FILES)
    art = describe(str(folder))
    path, sha = stage(art, {}, tmp_path)
    assert sha == art.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert names == sorted(names)
        for rel, data in FILES.items():
            member = tar.getmember(rel)
            assert member.mtime == 0 and member.uid == 0 and member.uname == ""
            assert tar.extractfile(member).read() == data


def test_a_symlink_is_stored_as_a_link_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"do not ship")
    folder = bundle(tmp_path / "bundle", {"a.txt": b"a"})
    (folder / "link").symlink_to(secret)
    buf = io.BytesIO()
    write_tar(folder, buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        link = tar.getmember("link")
        assert link.issym() and link.size == 0
    assert b"do not ship" not in buf.getvalue()


@pytest.mark.parametrize("uri", ["s3://bucket/prompts/v7.json", None])
def test_a_uri_or_nothing_registers_a_manifest(tmp_path: Path, uri: str | None) -> None:
    art = describe(uri)
    assert art.format == FORMAT_MANIFEST and art.sha256 is None
    report = {"model": {"candidate": {"scores": {"correct": "c"}}}, "policy": {"sha256": "p" * 64},
              "data": {"eval": {"sha256": "e" * 64, "rows": 3}}}
    path, sha = stage(art, report, tmp_path)
    body = json.loads(path.read_text())
    assert body == {"kind": "per_example", "artifact": uri, "scores": {"correct": "c"},
                    "data": {"eval": "e" * 64}, "policy_sha256": "p" * 64}
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    from gates.errors import UserError

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="neither a regular file nor a folder"):
        describe(str(fifo))


def test_mlflow_keeps_a_per_example_version_as_bytes_without_a_flavour(tmp_path: Path) -> None:
    from gates.registry.mlflow_artifacts import NOTE_ARTIFACT, bytes_path, write_model_folder
    from gates.registry.mlflow_records import TAG_FLAVOR, TAG_FLAVOR_NOTE

    folder = bundle(tmp_path / "bundle", FILES)
    art = describe(str(folder))
    staged, sha = stage(art, {}, tmp_path)
    out = tmp_path / "version"
    out.mkdir()
    tags = write_model_folder(out, staged, art.format, sha, None)
    assert tags == {TAG_FLAVOR: "none", TAG_FLAVOR_NOTE: NOTE_ARTIFACT}
    assert (out / bytes_path(art.format)).read_bytes() == staged.read_bytes()
