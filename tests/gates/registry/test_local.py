"""The embedded backend's own guarantees: layout, verification on read, crash safety, concurrent writers."""
from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gates.errors import EnvironmentProblem
from gates.registry.base import RunEntry
from gates.registry.blobs import MSG_BLOB_CORRUPT, MSG_BLOB_MISSING
from gates.registry.local import LocalRegistry

WRITER = Path(__file__).with_name("registry_writer.py")
CRASHES = 60


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def reg(tmp_path):
    registry = LocalRegistry(tmp_path / "registry")
    yield registry
    registry.close()


def put(reg: LocalRegistry, tmp_path: Path, content: bytes, name: str = "credit", **kw):
    path = tmp_path / f"{sha(content)[:8]}.skops"
    path.write_bytes(content)
    return reg.register(name, path, format="skops", lineage={}, by="alice", verdict="pass", **kw)


def test_layout_is_content_addressed_and_the_index_uses_wal(reg, tmp_path):
    put(reg, tmp_path, b"model bytes")
    digest = sha(b"model bytes")
    blob = tmp_path / "registry" / "blobs" / "sha256" / digest[:2] / f"{digest}.skops"
    assert blob.read_bytes() == b"model bytes"
    assert not os.access(blob, os.W_OK) or os.geteuid() == 0
    assert blob.stat().st_mode & 0o222 == 0
    with sqlite3.connect(tmp_path / "registry" / "index.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert list((tmp_path / "registry" / "tmp").iterdir()) == []


def test_reading_never_creates_a_registry(tmp_path):
    reg = LocalRegistry(tmp_path / "nowhere")
    assert reg.resolve("credit", "production") is None
    assert reg.list_models() == [] and reg.audit_log() == [] and reg.verify() == []
    assert not (tmp_path / "nowhere").exists()


def test_two_models_with_the_same_bytes_share_one_blob(reg, tmp_path):
    put(reg, tmp_path, b"shared", name="a")
    put(reg, tmp_path, b"shared", name="b")
    assert len(list((tmp_path / "registry" / "blobs").rglob("*.skops"))) == 1
    assert reg.fetch("b", 1).read_bytes() == b"shared"


def test_a_corrupted_blob_is_detected_on_read(reg, tmp_path):
    put(reg, tmp_path, b"good bytes")
    blob = reg.fetch("credit", 1)
    blob.chmod(0o644)
    blob.write_bytes(b"evil bytes")
    with pytest.raises(EnvironmentProblem) as err:
        reg.fetch("credit", 1)
    assert str(err.value) == MSG_BLOB_CORRUPT.format(name="credit", version=1, path=blob, actual=sha(b"evil bytes"),
                                                     expected=sha(b"good bytes"))
    assert reg.verify() == ["credit v1: blob does not match its sha256"]


def test_a_missing_blob_is_detected_on_read(reg, tmp_path):
    put(reg, tmp_path, b"good bytes")
    blob = reg.fetch("credit", 1)
    blob.unlink()
    with pytest.raises(EnvironmentProblem) as err:
        reg.fetch("credit", 1)
    assert str(err.value) == MSG_BLOB_MISSING.format(name="credit", version=1, path=blob)


def test_registering_the_same_bytes_again_heals_a_damaged_blob(reg, tmp_path):
    put(reg, tmp_path, b"good bytes")
    blob = reg.fetch("credit", 1)
    blob.chmod(0o644)
    blob.write_bytes(b"rot")
    assert put(reg, tmp_path, b"good bytes").already_registered
    assert reg.fetch("credit", 1).read_bytes() == b"good bytes"


def test_a_damaged_index_is_an_environment_problem(tmp_path):
    root = tmp_path / "registry"
    root.mkdir()
    (root / "index.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EnvironmentProblem, match="damaged or not a model-gates registry"):
        LocalRegistry(root).list_models()


def test_the_audit_log_is_append_only_and_tamper_evident(reg, tmp_path):
    reg.record_run("credit", RunEntry("fail", "ci", None, {"failing": ["x"]}))
    put(reg, tmp_path, b"v1", alias="staging")
    db = sqlite3.connect(tmp_path / "registry" / "index.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET verdict = 'pass' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 1")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET verdict = 'pass' WHERE seq = 1")
    db.commit()
    db.close()
    assert reg.verify() == ["audit: entry 1 does not match the hash chain"]


def test_verify_finds_a_gap_in_versions_and_a_stray_alias(reg, tmp_path):
    for content in (b"v1", b"v2", b"v3"):
        put(reg, tmp_path, content)
    reg.set_alias("credit", "production", 3, by="bob")
    reg.close()
    db = sqlite3.connect(tmp_path / "registry" / "index.db")
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("UPDATE aliases SET version = 2")
    db.execute("DELETE FROM versions WHERE version = 2")
    db.commit()
    db.close()
    problems = reg.verify()
    assert "credit: versions are not 1..2: [1, 3]" in problems
    assert "credit: alias 'production' -> v2 disagrees with its history" in problems


# ---------------------------------------------------------------- crash safety


def check_sound(root: Path, committed: dict[int, str], fetched: set[int]) -> int:
    """Assert the registry at ``root`` opens and is consistent; return its number of versions.

    ``verify`` hashes every blob; besides, each version not in ``fetched`` is read back once.
    """
    reg = LocalRegistry(root)
    try:
        assert reg.verify() == []
        versions = reg.list_versions("crash") if reg.list_models() else []
        assert [v.version for v in versions] == list(range(1, len(versions) + 1))
        for v in versions:
            if v.version not in fetched:
                assert sha(reg.fetch("crash", v.version).read_bytes()) == v.model_sha256
                fetched.add(v.version)
        by_version = {v.version: v.model_sha256 for v in versions}
        for version, digest in committed.items():
            assert by_version.get(version) == digest, f"committed v{version} was lost"
        log = reg.audit_log()
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        registered = sorted(e.version for e in log if e.kind == "register")
        assert registered == sorted(by_version)
        runs = [e for e in log if e.kind == "run" and e.version is not None]
        assert {e.version for e in runs} == set(by_version)
        for alias, version in reg.aliases("crash").items():
            moves = reg.alias_moves("crash", alias)
            assert moves and moves[-1].to_version == version
        return len(versions)
    finally:
        reg.close()


def read_until(proc: subprocess.Popen[str], prefix: str) -> str:
    """Return the writer's output up to and including its first line starting with ``prefix``."""
    assert proc.stdout is not None
    seen = ""
    while True:
        line = proc.stdout.readline()
        assert line, f"the writer ended before printing {prefix!r}: {seen}"
        seen += line
        if line.startswith(prefix):
            return seen


def test_sigkill_at_random_moments_never_damages_the_registry(tmp_path):
    """Kill busy writers with SIGKILL 60 times, two writers at a time so some kills land while the
    other holds or waits for the lock; after each round the registry must be whole."""
    root, work = tmp_path / "registry", tmp_path / "work"
    work.mkdir()
    rng = random.Random(20261122)
    committed: dict[int, str] = {}
    fetched: set[int] = set()
    kills, kills_after_commits = 0, 0
    for attempt in range(CRASHES // 2):
        procs = [subprocess.Popen([sys.executable, str(WRITER), "crash", str(root), str(work), f"{attempt}{w}"],
                                  stdout=subprocess.PIPE, text=True) for w in range(2)]
        early = [""] * len(procs)
        if attempt % 5 == 0:
            time.sleep(rng.uniform(0.0, 0.15))          # sometimes while they open or create the registry
        else:
            wait_for = "committed" if attempt % 2 else "ready"   # a slow machine still reaches real work
            for i, proc in enumerate(procs):
                early[i] = read_until(proc, wait_for)
        for proc in procs:
            time.sleep(rng.uniform(0.0, 0.1))
            proc.send_signal(signal.SIGKILL)
        for i, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == -signal.SIGKILL
            kills += 1
            lines = [line.split() for line in (early[i] + out).splitlines() if line.startswith("committed")]
            committed.update({int(v): digest for _, v, digest in lines})
            kills_after_commits += bool(lines)
        check_sound(root, committed, fetched)
    assert kills >= 50
    assert check_sound(root, committed, set()) >= 20
    assert kills_after_commits >= 20


# ---------------------------------------------------------------- concurrent writers


def start_racers(root: Path, work: Path, jobs: int, count: int, content: str | None = None) -> list[list[str]]:
    go = work / "go"
    args = [content] if content else []
    procs = [subprocess.Popen([sys.executable, str(WRITER), "race", str(root), str(work), str(j), str(count), str(go),
                               *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for j in range(jobs)]
    time.sleep(0.5)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.split())
    return outs


def test_eight_concurrent_writers_get_distinct_consecutive_versions(tmp_path):
    root, work = tmp_path / "registry", tmp_path / "work"
    work.mkdir()
    outs = start_racers(root, work, jobs=8, count=3)
    got = [(int(o[i]), o[i + 1]) for o in outs for i in range(0, len(o), 3)]
    assert len(got) == 24
    assert sorted(v for v, _ in got) == list(range(1, 25))
    expected = {sha(f"model {j}-{k}".encode()) for j in range(8) for k in range(3)}
    assert {digest for _, digest in got} == expected
    reg = LocalRegistry(root)
    assert {v.version: v.model_sha256 for v in reg.list_versions("crash")} == dict(got)
    assert reg.verify() == []
    reg.close()


def test_concurrent_writers_of_the_same_bytes_get_one_version(tmp_path):
    root, work = tmp_path / "registry", tmp_path / "work"
    work.mkdir()
    outs = start_racers(root, work, jobs=4, count=1, content="identical model")
    assert [o[0] for o in outs] == ["1"] * 4
    assert sorted(o[2] for o in outs) == ["0", "1", "1", "1"]
    reg = LocalRegistry(root)
    assert len(reg.list_versions("crash")) == 1
    reg.close()


def test_a_registry_path_that_is_a_file_is_an_environment_problem(tmp_path):
    (tmp_path / "registry").write_text("not a folder")
    with pytest.raises(EnvironmentProblem, match="exists and is not a folder"):
        put(LocalRegistry(tmp_path / "registry"), tmp_path, b"v1")


def test_a_location_that_cannot_be_created_is_an_environment_problem(tmp_path):
    with pytest.raises(EnvironmentProblem, match="cannot write to the registry at /dev/null/registry"):
        put(LocalRegistry("/dev/null/registry"), tmp_path, b"v1")
