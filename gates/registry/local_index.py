"""The local registry's SQLite index: its schema, the audit log's hash chain, and integrity checks.

The audit log is append-only twice over: triggers refuse UPDATE and DELETE, and each entry's hash
covers the previous entry's hash, so an entry rewritten behind SQLite's back breaks the chain.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from gates.registry.blobs import BlobStore

SCHEMA_VERSION = 1
GENESIS = "0" * 64
AUDIT_FIELDS = ("seq", "at", "kind", "name", "by", "version", "alias", "verdict", "ci_url", "record")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY, created_at TEXT NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL REFERENCES models(name), version INTEGER NOT NULL CHECK (version >= 1),
    model_sha256 TEXT NOT NULL, format TEXT NOT NULL, size INTEGER NOT NULL,
    created_at TEXT NOT NULL, created_by TEXT NOT NULL, verdict TEXT NOT NULL, lineage TEXT NOT NULL,
    PRIMARY KEY (name, version), UNIQUE (name, model_sha256));
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (name, alias), FOREIGN KEY (name, version) REFERENCES versions(name, version));
CREATE TABLE IF NOT EXISTS alias_moves (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, alias TEXT NOT NULL,
    from_version INTEGER, to_version INTEGER NOT NULL, kind TEXT NOT NULL, by TEXT NOT NULL,
    at TEXT NOT NULL, reason TEXT);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (name, version, key), FOREIGN KEY (name, version) REFERENCES versions(name, version));
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    by TEXT NOT NULL, version INTEGER, alias TEXT, verdict TEXT, ci_url TEXT, record TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def schema_statements() -> list[str]:
    """Return the schema as single statements (triggers hold ';' inside BEGIN ... END)."""
    out, buf = [], ""
    for line in SCHEMA.strip().splitlines():
        buf += line + "\n"
        if buf.rstrip().endswith(";") and buf.count("BEGIN") == buf.count("END;"):
            out.append(buf.strip())
            buf = ""
    return out


def stored_schema_version(conn: sqlite3.Connection) -> int | None:
    """Return the schema version written in the index, None for a new (empty) index."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone():
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else None


def chain_hash(prev_hash: str, fields: tuple[Any, ...]) -> str:
    """Return an audit entry's hash: sha256 over the previous hash and the entry's fields."""
    payload = json.dumps([prev_hash, *fields], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def dumps(value: Mapping[str, Any]) -> str:
    """Serialise a record canonically (sorted keys), as stored and hashed."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, default=str)


def integrity_problems(conn: sqlite3.Connection, blobs: BlobStore) -> list[str]:
    """Return every inconsistency between the index, the blobs and the audit log (empty when sound)."""
    problems = [f"sqlite: {r[0]}" for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
    return problems + _version_problems(conn, blobs) + _audit_problems(conn) + _alias_problems(conn)


def _version_problems(conn: sqlite3.Connection, blobs: BlobStore) -> list[str]:
    problems = []
    by_model: dict[str, list[int]] = {}
    for r in conn.execute("SELECT * FROM versions ORDER BY name, version"):
        by_model.setdefault(r["name"], []).append(int(r["version"]))
        blob = blobs.problem(r["model_sha256"], r["format"])
        if blob:
            problems.append(f"{r['name']} v{r['version']}: {blob}")
    registered = {(r["name"], r["version"]): r["n"] for r in conn.execute(
        "SELECT name, version, COUNT(*) AS n FROM audit WHERE kind IN ('register', 'forced_register') "
        "GROUP BY name, version")}
    for name, versions in by_model.items():
        if versions != list(range(1, len(versions) + 1)):
            problems.append(f"{name}: versions are not 1..{len(versions)}: {versions}")
        for v in versions:
            if registered.get((name, v)) != 1:
                problems.append(f"{name} v{v}: {registered.get((name, v), 0)} registration entries in the audit log")
    return problems


def _audit_problems(conn: sqlite3.Connection) -> list[str]:
    problems, prev, expected_seq = [], GENESIS, 1
    for r in conn.execute("SELECT * FROM audit ORDER BY seq"):
        if r["seq"] != expected_seq:
            problems.append(f"audit: entry {expected_seq} is missing (next is {r['seq']})")
        fields = tuple(r[k] for k in AUDIT_FIELDS)
        if r["prev_hash"] != prev or r["hash"] != chain_hash(prev, fields):
            problems.append(f"audit: entry {r['seq']} does not match the hash chain")
        prev, expected_seq = r["hash"], int(r["seq"]) + 1
    return problems


def _alias_problems(conn: sqlite3.Connection) -> list[str]:
    problems = []
    for r in conn.execute("SELECT * FROM aliases"):
        last = conn.execute("SELECT to_version FROM alias_moves WHERE name = ? AND alias = ? ORDER BY seq DESC "
                            "LIMIT 1", (r["name"], r["alias"])).fetchone()
        if last is None or int(last[0]) != int(r["version"]):
            problems.append(f"{r['name']}: alias {r['alias']!r} -> v{r['version']} disagrees with its history")
    n_moves = conn.execute("SELECT COUNT(*) FROM alias_moves").fetchone()[0]
    n_audited = conn.execute("SELECT COUNT(*) FROM audit WHERE kind IN ('alias', 'rollback')").fetchone()[0]
    if n_moves != n_audited:
        problems.append(f"audit: {n_moves} alias moves but {n_audited} alias entries in the audit log")
    return problems
