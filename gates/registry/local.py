"""The embedded ``local`` registry: a folder with a SQLite index and content-addressed model blobs.

Layout::

    <root>/index.db                         SQLite, WAL mode, synchronous=FULL
    <root>/REGISTRY                         marker written with a new index: without index.db, history was lost
    <root>/blobs/sha256/ab/abcdef....skops  model bytes, named by their sha256 (+ format), read-only
    <root>/tmp/                             blobs being written (renamed into blobs/ when complete)

Crash safety: a blob is written to ``tmp/``, fsynced and renamed into place before the index
mentions it, and every index change (version, lineage, alias, audit entries) is one SQLite
transaction, so a crash leaves the registry as before or fully updated (at worst an unreferenced
blob). Version numbers are allocated inside ``BEGIN IMMEDIATE``, which serialises writers, so
concurrent CI jobs never share a number. Blobs are verified against their sha256 on every read.
The audit log is append-only (triggers refuse UPDATE and DELETE) and hash-chained, so a
rewritten entry is detected by :meth:`LocalRegistry.verify`. Blobs: :mod:`gates.registry.blobs`;
the index's schema and integrity checks: :mod:`gates.registry.local_index`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from gates.errors import EnvironmentProblem, UserError
from gates.registry.base import (
    MSG_BYTES_CHANGED,
    MSG_UNKNOWN_MODEL,
    MSG_UNKNOWN_VERSION,
    AliasMove,
    AuditEvent,
    Evidence,
    ModelVersion,
    Registration,
    RunEntry,
    check_alias,
    check_model_name,
    check_version,
    is_version_ref,
    rollback_target,
)
from gates.registry.blobs import BlobStore
from gates.registry.local_index import (
    AUDIT_FIELDS,
    GENESIS,
    SCHEMA_VERSION,
    chain_hash,
    dumps,
    integrity_problems,
    schema_statements,
    stored_schema_version,
)

BUSY_TIMEOUT_S = 120.0
#: written beside a new index: a folder holding it but no index lost its history
MARKER = "REGISTRY"
_FORMAT = re.compile(r"[a-z0-9]{1,16}")

MSG_CORRUPT_INDEX = "the registry index {path} is damaged or not a model-gates registry: {problem}"
MSG_NEWER_SCHEMA = "the registry at {path} was written by a newer model-gates (schema {found} > {ours}); upgrade"
MSG_BUSY = "the registry at {path} stayed locked by another writer for {seconds:.0f} s: {problem}"
MSG_BAD_FORMAT = "invalid model format {format!r}: expected a file suffix such as skops or joblib"
MSG_CANNOT_WRITE = "cannot write to the registry at {path}: {problem}"
MSG_NOT_A_FOLDER = "the registry path {path} exists and is not a folder"
MSG_LOST_INDEX = (
    "the registry at {folder} is damaged: {problem}, yet it holds model files; refusing to start a new "
    "registry over them (restore index.db from a backup; model-gates verify checks it)"
)


class LocalRegistry:
    """The embedded registry in folder ``root`` (created on the first write)."""

    kind = "local"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.uri = str(self.root)
        self.blobs = BlobStore(self.root)
        self._conn: sqlite3.Connection | None = None

    # ------------------------------------------------------------------ connection

    @property
    def index_path(self) -> Path:
        return self.root / "index.db"

    def _connection(self, *, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        self._refuse_lost_index()
        if not self.index_path.exists():
            if not create:
                return None
            self._make_folders()
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                with self._db_errors():
                    conn = self._open()
                break
            except EnvironmentProblem as exc:
                # Switching a new index to WAL takes an exclusive lock and SQLite answers "locked"
                # at once, without its busy handler, while another process does the same: retry.
                cause = exc.__cause__
                if not (isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)
                        and time.monotonic() < deadline):
                    raise
                time.sleep(0.02 + 0.05 * random.random())
        self._conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.index_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _refuse_lost_index(self) -> None:
        """A folder that held a registry but lost its index lost its history: never start afresh there.

        Taking it for a new registry would forget every version, alias and audit entry, so the
        next run would skip its baseline checks and register "version 1". In WAL mode a young
        index may be an empty file beside a WAL holding everything: that is sound.
        """
        try:
            size = self.index_path.stat().st_size if self.index_path.exists() else None
            journal = self.root / "index.db-wal"
            has_wal = journal.is_file() and journal.stat().st_size > 0
            if size or has_wal or not self._was_written():
                return
        except OSError as exc:
            raise EnvironmentProblem(MSG_LOST_INDEX.format(folder=self.root, problem=exc.strerror or exc)) from None
        problem = "its index.db is missing" if size is None else "its index.db is empty"
        raise EnvironmentProblem(MSG_LOST_INDEX.format(folder=self.root, problem=problem))

    def _was_written(self) -> bool:
        """True when the folder shows a registry lived here: the marker written with its index, or a blob."""
        if (self.root / MARKER).is_file():
            return True
        blobs = self.root / "blobs" / "sha256"
        return blobs.is_dir() and next((p for p in blobs.glob("*/*") if p.is_file()), None) is not None

    def _make_folders(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise EnvironmentProblem(MSG_NOT_A_FOLDER.format(path=self.root))
        try:
            for sub in ("blobs/sha256", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(MSG_CANNOT_WRITE.format(path=self.root, problem=exc.strerror or exc)) from None

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        found = stored_schema_version(conn)
        if found is None and self._was_written() and stored_schema_version(conn) is None:
            # a readable file, but not our index any more (read again: another process may have just
            # created the schema, and it writes the marker only after committing it)
            raise EnvironmentProblem(MSG_LOST_INDEX.format(folder=self.root, problem="its index.db holds no registry"))
        if found is not None and found > SCHEMA_VERSION:
            raise EnvironmentProblem(MSG_NEWER_SCHEMA.format(path=self.root, found=found, ours=SCHEMA_VERSION))
        if found == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in schema_statements():
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            (self.root / MARKER).write_text("model-gates registry: index.db holds its versions and audit log\n",
                                            encoding="utf-8")
        except OSError:
            pass  # a read-only folder: the blobs still tell a lost index from a new one

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _db_errors(self) -> Iterator[None]:
        """Turn SQLite failures into environment problems that name the registry."""
        started = time.monotonic()
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise EnvironmentProblem(MSG_BUSY.format(path=self.root, seconds=time.monotonic() - started,
                                                         problem=exc)) from exc
            if "unable to open" in str(exc) or "readonly" in str(exc):
                raise EnvironmentProblem(MSG_CANNOT_WRITE.format(path=self.index_path, problem=exc)) from exc
            raise EnvironmentProblem(MSG_CORRUPT_INDEX.format(path=self.index_path, problem=exc)) from exc
        except sqlite3.DatabaseError as exc:
            raise EnvironmentProblem(MSG_CORRUPT_INDEX.format(path=self.index_path, problem=exc)) from exc

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection | None]:
        """Yield the connection inside one transaction (IMMEDIATE for writes); None if no registry yet."""
        conn = self._connection(create=write)
        if conn is None:
            yield None
            return
        with self._db_errors():
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ blobs

    def blob_path(self, sha256: str, format: str) -> Path:
        """Return where the bytes with this digest live: ``blobs/sha256/ab/abcd....<format>``."""
        return self.blobs.path(sha256, format)

    def fetch(self, name: str, version: int) -> Path:
        """Return the blob of ``name`` v``version`` after checking its sha256."""
        mv = self.get_version(name, version)
        return self.blobs.verified(mv.model_sha256, mv.format, name, mv.version)

    # ------------------------------------------------------------------ writes

    def register(self, name: str, model: Path, *, format: str, lineage: Mapping[str, Any], by: str,
                 verdict: str, alias: str | None = None, run: RunEntry | None = None,
                 forced_reason: str | None = None, expected_sha256: str | None = None,
                 tags: Mapping[str, str] | None = None, evidence: Evidence | None = None) -> Registration:
        """Register ``model`` (see :meth:`RegistryBackend.register`); ``evidence`` is not kept here."""
        check_model_name(name)
        if alias is not None:
            check_alias(alias)
        if not _FORMAT.fullmatch(format):
            raise UserError(MSG_BAD_FORMAT.format(format=format))
        self._make_folders()
        self._connection(create=True)  # the index exists before any blob does (see _refuse_lost_index)
        sha, size = self.blobs.put(Path(model), format)
        if expected_sha256 is not None and sha != expected_sha256:
            raise EnvironmentProblem(MSG_BYTES_CHANGED.format(path=model, expected=expected_sha256, actual=sha))
        with self._transaction(write=True) as conn:
            assert conn is not None
            now = _now()
            row = conn.execute("SELECT version FROM versions WHERE name = ? AND model_sha256 = ?",
                               (name, sha)).fetchone()
            already = row is not None
            version = int(row["version"]) if already else self._insert_version(
                conn, name, sha, format, size, lineage, by, verdict, now)
            if run is not None:
                record = {**run.record, "registered_version": version, "already_registered": already}
                self._append_audit(conn, "run", name, run.by, at=now, version=version, verdict=run.verdict,
                                   ci_url=run.ci_url, record=record)
            if not already:
                self._audit_registration(conn, name, version, sha, format, size, by, verdict, now,
                                         run.ci_url if run else lineage.get("ci_url"), forced_reason)
            for key, value in (tags or {}).items():
                self._put_tag(conn, name, version, key, value, by, now)
            moved_from = None
            if alias is not None:
                move = self._move_alias(conn, name, alias, version, kind="on_pass", by=by, at=now, reason=None)
                moved_from = move.from_version if move.moved else None
            mv = self._version(conn, name, version)
        return Registration(version=mv, already_registered=already, alias_moved_from=moved_from)

    def _insert_version(self, conn: sqlite3.Connection, name: str, sha: str, format: str, size: int,
                        lineage: Mapping[str, Any], by: str, verdict: str, now: str) -> int:
        """Insert the next version of ``name``; the caller holds the write lock, so the number is ours."""
        conn.execute("INSERT OR IGNORE INTO models (name, created_at, created_by) VALUES (?, ?, ?)", (name, now, by))
        version = int(conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE name = ?",
                                   (name,)).fetchone()[0])
        conn.execute(
            "INSERT INTO versions (name, version, model_sha256, format, size, created_at, created_by, verdict, "
            "lineage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, version, sha, format, size, now, by, verdict, dumps(lineage)))
        return version

    def _audit_registration(self, conn: sqlite3.Connection, name: str, version: int, sha: str, format: str,
                            size: int, by: str, verdict: str, now: str, ci_url: str | None,
                            forced_reason: str | None) -> None:
        record: dict[str, Any] = {"model_sha256": sha, "format": format, "size": size}
        if forced_reason:
            record["reason"] = forced_reason
        self._append_audit(conn, "forced_register" if forced_reason else "register", name, by, at=now,
                           version=version, verdict=verdict, ci_url=ci_url, record=record)

    def record_run(self, name: str, run: RunEntry) -> AuditEvent:
        check_model_name(name)
        with self._transaction(write=True) as conn:
            assert conn is not None
            seq = self._append_audit(conn, "run", name, run.by, at=_now(), verdict=run.verdict,
                                     ci_url=run.ci_url, record=run.record)
            row = conn.execute("SELECT * FROM audit WHERE seq = ?", (seq,)).fetchone()
        return _event(row)

    def set_alias(self, name: str, alias: str, version: int, *, by: str, reason: str | None = None) -> AliasMove:
        check_model_name(name)
        check_alias(alias)
        version = check_version(version)
        with self._transaction(write=True) as conn:
            assert conn is not None
            self._require_version(conn, name, version)
            return self._move_alias(conn, name, alias, version, kind="promote", by=by, at=_now(), reason=reason)

    def rollback(self, name: str, alias: str, *, by: str, reason: str | None = None) -> AliasMove:
        check_model_name(name)
        check_alias(alias)
        with self._transaction(write=True) as conn:
            assert conn is not None
            self._require_model(conn, name)
            current, target = rollback_target(self._moves(conn, name, alias), name, alias)
            self._require_version(conn, name, target)
            return self._move_alias(conn, name, alias, target, kind="rollback", by=by, at=_now(), reason=reason,
                                    expect_from=current)

    def set_tag(self, name: str, version: int, key: str, value: str, *, by: str) -> None:
        """Set a free-form tag on a version (audited)."""
        check_model_name(name)
        version = check_version(version)
        with self._transaction(write=True) as conn:
            assert conn is not None
            self._require_version(conn, name, version)
            self._put_tag(conn, name, version, key, value, by, _now())

    def _put_tag(self, conn: sqlite3.Connection, name: str, version: int, key: str, value: str, by: str,
                 now: str) -> None:
        conn.execute("INSERT OR REPLACE INTO tags (name, version, key, value) VALUES (?, ?, ?, ?)",
                     (name, version, str(key), str(value)))
        self._append_audit(conn, "tag", name, by, at=now, version=version, record={"key": key, "value": value})

    def _move_alias(self, conn: sqlite3.Connection, name: str, alias: str, version: int, *, kind: str, by: str,
                    at: str, reason: str | None, expect_from: int | None = None) -> AliasMove:
        row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, alias)).fetchone()
        previous = int(row["version"]) if row else None
        if expect_from is not None and previous != expect_from:
            raise EnvironmentProblem(MSG_CORRUPT_INDEX.format(
                path=self.index_path,
                problem=f"alias {alias!r} holds v{previous} but its history ends at v{expect_from}"))
        move = AliasMove(name=name, alias=alias, from_version=previous, to_version=version, kind=kind, by=by, at=at,
                         reason=reason)
        if not move.moved:
            return move
        conn.execute("INSERT OR REPLACE INTO aliases (name, alias, version, updated_at) VALUES (?, ?, ?, ?)",
                     (name, alias, version, at))
        conn.execute("INSERT INTO alias_moves (name, alias, from_version, to_version, kind, by, at, reason) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (name, alias, previous, version, kind, by, at, reason))
        record = {"from_version": previous, "to_version": version, "move": kind}
        if reason:
            record["reason"] = reason
        self._append_audit(conn, "rollback" if kind == "rollback" else "alias", name, by, at=at, version=version,
                           alias=alias, record=record)
        return move

    def _append_audit(self, conn: sqlite3.Connection, kind: str, name: str, by: str, *, at: str,
                      version: int | None = None, alias: str | None = None, verdict: str | None = None,
                      ci_url: str | None = None, record: Mapping[str, Any] | None = None) -> int:
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq = (int(last["seq"]) if last else 0) + 1
        prev_hash = last["hash"] if last else GENESIS
        fields = (seq, at, kind, name, by, version, alias, verdict, ci_url, dumps(record or {}))
        digest = chain_hash(prev_hash, fields)
        columns = ", ".join((*AUDIT_FIELDS, "prev_hash", "hash"))
        conn.execute(f"INSERT INTO audit ({columns}) VALUES ({', '.join('?' * (len(AUDIT_FIELDS) + 2))})",
                     (*fields, prev_hash, digest))
        return seq

    # ------------------------------------------------------------------ reads

    def resolve(self, name: str, ref: str) -> ModelVersion | None:
        check_model_name(name)
        ref = str(ref).strip()
        with self._transaction(write=False) as conn:
            if conn is None:
                return None
            if is_version_ref(ref):
                version = check_version(ref)
                row = conn.execute("SELECT version FROM versions WHERE name = ? AND version = ?",
                                   (name, version)).fetchone()
            else:
                check_alias(ref)
                row = conn.execute("SELECT version FROM aliases WHERE name = ? AND alias = ?", (name, ref)).fetchone()
            return self._version(conn, name, int(row["version"])) if row else None

    def get_version(self, name: str, version: int) -> ModelVersion:
        check_model_name(name)
        version = check_version(version)
        with self._transaction(write=False) as conn:
            if conn is None:
                raise UserError(MSG_UNKNOWN_MODEL.format(name=name, uri=self.uri))
            self._require_version(conn, name, version)
            return self._version(conn, name, version)

    def list_versions(self, name: str) -> list[ModelVersion]:
        check_model_name(name)
        with self._transaction(write=False) as conn:
            if conn is None:
                raise UserError(MSG_UNKNOWN_MODEL.format(name=name, uri=self.uri))
            self._require_model(conn, name)
            rows = conn.execute("SELECT version FROM versions WHERE name = ? ORDER BY version", (name,)).fetchall()
            return [self._version(conn, name, int(r["version"])) for r in rows]

    def list_models(self) -> list[str]:
        with self._transaction(write=False) as conn:
            if conn is None:
                return []
            return [r["name"] for r in conn.execute("SELECT name FROM models ORDER BY name")]

    def aliases(self, name: str) -> dict[str, int]:
        """Return alias -> version for ``name`` (empty when none is set)."""
        check_model_name(name)
        with self._transaction(write=False) as conn:
            if conn is None:
                return {}
            rows = conn.execute("SELECT alias, version FROM aliases WHERE name = ? ORDER BY alias", (name,))
            return {r["alias"]: int(r["version"]) for r in rows}

    def alias_moves(self, name: str, alias: str | None = None) -> list[AliasMove]:
        check_model_name(name)
        with self._transaction(write=False) as conn:
            if conn is None:
                return []
            return self._moves(conn, name, alias)

    def audit_log(self, name: str | None = None) -> list[AuditEvent]:
        if name is not None:
            check_model_name(name)
        with self._transaction(write=False) as conn:
            if conn is None:
                return []
            if name is None:
                rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
            else:
                rows = conn.execute("SELECT * FROM audit WHERE name = ? ORDER BY seq", (name,)).fetchall()
            return [_event(r) for r in rows]

    def _moves(self, conn: sqlite3.Connection, name: str, alias: str | None) -> list[AliasMove]:
        sql = "SELECT * FROM alias_moves WHERE name = ?" + (" AND alias = ?" if alias else "") + " ORDER BY seq"
        rows = conn.execute(sql, (name, alias) if alias else (name,)).fetchall()
        return [AliasMove(name=r["name"], alias=r["alias"], from_version=r["from_version"],
                          to_version=int(r["to_version"]), kind=r["kind"], by=r["by"], at=r["at"], reason=r["reason"])
                for r in rows]

    def _version(self, conn: sqlite3.Connection, name: str, version: int) -> ModelVersion:
        r = conn.execute("SELECT * FROM versions WHERE name = ? AND version = ?", (name, version)).fetchone()
        aliases = tuple(a["alias"] for a in conn.execute(
            "SELECT alias FROM aliases WHERE name = ? AND version = ? ORDER BY alias", (name, version)))
        tags = {t["key"]: t["value"] for t in conn.execute(
            "SELECT key, value FROM tags WHERE name = ? AND version = ? ORDER BY key", (name, version))}
        return ModelVersion(name=name, version=version, model_sha256=r["model_sha256"], format=r["format"],
                            size=int(r["size"]), created_at=r["created_at"], created_by=r["created_by"],
                            verdict=r["verdict"], lineage=json.loads(r["lineage"]), aliases=aliases, tags=tags)

    def _require_model(self, conn: sqlite3.Connection, name: str) -> None:
        if conn.execute("SELECT 1 FROM models WHERE name = ?", (name,)).fetchone() is None:
            raise UserError(MSG_UNKNOWN_MODEL.format(name=name, uri=self.uri))

    def _require_version(self, conn: sqlite3.Connection, name: str, version: int) -> None:
        self._require_model(conn, name)
        if conn.execute("SELECT 1 FROM versions WHERE name = ? AND version = ?", (name, version)).fetchone() is None:
            known = [str(r[0]) for r in conn.execute("SELECT version FROM versions WHERE name = ? ORDER BY version",
                                                      (name,))]
            raise UserError(MSG_UNKNOWN_VERSION.format(name=name, version=version, known=", ".join(known) or "none"))

    # ------------------------------------------------------------------ integrity

    def verify(self) -> list[str]:
        """Return every integrity problem found (empty when the registry is sound).

        Checks SQLite's own integrity, that each version's blob exists and matches its sha256,
        that versions run 1..n per model, that the audit log's hash chain is unbroken with
        consecutive sequence numbers, that each version has one registration entry, and that each
        alias points where its last recorded move put it.
        """
        with self._transaction(write=False) as conn:
            return [] if conn is None else integrity_problems(conn, self.blobs)


def _event(r: sqlite3.Row) -> AuditEvent:
    return AuditEvent(seq=int(r["seq"]), at=r["at"], kind=r["kind"], name=r["name"], by=r["by"],
                      version=r["version"], alias=r["alias"], verdict=r["verdict"], ci_url=r["ci_url"],
                      record=json.loads(r["record"]))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
