"""``model-gates verify``: every problem a registry has, one line each (empty when it is sound).

A backend with its own integrity check (the local registry: SQLite's ``integrity_check``, blob
digests, version numbering, alias history and the audit log's hash chain) answers itself; any
other backend is checked through the :class:`~gates.registry.base.RegistryBackend` protocol:
each version's bytes against their sha256, each alias against its last recorded move, the audit
log's sequence and one registration entry per version.
"""
from __future__ import annotations

from gates.errors import GateError
from gates.registry.base import ModelVersion, RegistryBackend


def registry_problems(backend: RegistryBackend) -> list[str]:
    """Return every integrity problem of ``backend``; an unreadable registry is one problem."""
    try:
        own = getattr(backend, "verify", None)
        return list(own()) if callable(own) else _protocol_problems(backend)
    except GateError as exc:
        return [str(exc)]


def _protocol_problems(backend: RegistryBackend) -> list[str]:
    problems: list[str] = []
    for name in backend.list_models():
        versions = backend.list_versions(name)
        problems += _blob_problems(backend, name, versions)
        problems += _alias_problems(backend, name, versions)
        problems += _audit_problems(backend, name, versions)
    return problems


def _blob_problems(backend: RegistryBackend, name: str, versions: list[ModelVersion]) -> list[str]:
    problems = []
    for v in versions:
        try:
            backend.fetch(name, v.version)  # verifies the bytes against the recorded sha256
        except GateError as exc:
            problems.append(f"{name} v{v.version}: {exc}")
    return problems


def _alias_problems(backend: RegistryBackend, name: str, versions: list[ModelVersion]) -> list[str]:
    problems = []
    known = {v.version for v in versions}
    for v in versions:
        for alias in v.aliases:
            moves = backend.alias_moves(name, alias)
            if v.version not in known or not moves or moves[-1].to_version != v.version:
                problems.append(f"{name}: alias {alias!r} -> v{v.version} disagrees with its history")
    return problems


def _audit_problems(backend: RegistryBackend, name: str, versions: list[ModelVersion]) -> list[str]:
    events = backend.audit_log(name)
    seqs = [e.seq for e in events]
    problems = []
    if seqs != sorted(set(seqs)) or (seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs)))):
        problems.append(f"{name}: audit log entries are not consecutive: {seqs[:10]}")
    registered = [e.version for e in events if e.kind in ("register", "forced_register")]
    for v in versions:
        if registered.count(v.version) != 1:
            problems.append(f"{name} v{v.version}: {registered.count(v.version)} registration entries in the audit log")
    return problems
