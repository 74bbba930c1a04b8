"""What every registry backend is: the :class:`RegistryBackend` protocol and the records it returns.

A backend stores model versions (1, 2, 3 ... per model name) with their lineage, moves aliases
(``production``, ``staging``) between versions, and keeps an append-only audit log of every gate
run and every alias move. The embedded ``local`` backend and the ``mlflow`` backend both satisfy
this protocol and pass the same test suite (``tests/gates/registry/``).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gates.errors import UserError

MSG_BAD_MODEL_NAME = (
    "invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a "
    "letter or digit"
)
MSG_BAD_ALIAS = (
    "invalid alias {alias!r}: use 1-64 letters, digits, '_' or '-', starting with a letter "
    "(not 'latest' nor v<number>, which name versions)"
)
MSG_BAD_VERSION = "invalid version {version!r}: expected a positive whole number (ASCII digits, at most 2**63 - 1)"
MSG_UNKNOWN_MODEL = "no model named {name!r} in the registry at {uri}"
MSG_UNKNOWN_VERSION = "model {name!r} has no version {version} (versions: {known})"
MSG_UNKNOWN_ALIAS = "model {name!r} has no alias {alias!r} (aliases: {known})"
MSG_NOTHING_TO_ROLL_BACK = (
    "alias {alias!r} of {name!r} has no earlier version to roll back to (it has held: {held})"
)
MSG_BYTES_CHANGED = (
    "the model file {path} changed since it was gated (gated sha256 {expected}, now {actual}); "
    "nothing was registered"
)

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_VERSION_LIKE = re.compile(r"[vV][0-9]+")
_DIGITS = re.compile(r"[0-9]{1,19}")
#: SQLite's INTEGER is a signed 64-bit number: no version can be larger
MAX_VERSION = 2**63 - 1
RESERVED_ALIASES = frozenset({"latest"})


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a safe model name, else raise UserError.

    Names become folder names and URL parts in some backends, so only a conservative character
    set is allowed and ``..`` (path traversal) never is.
    """
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise UserError(MSG_BAD_MODEL_NAME.format(name=name))
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias, else raise UserError.

    ``latest`` and ``v3`` are refused because they read as version references (MLflow refuses
    them too, so both backends accept the same aliases).
    """
    if (not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or _VERSION_LIKE.fullmatch(alias)
            or alias.lower() in RESERVED_ALIASES):
        raise UserError(MSG_BAD_ALIAS.format(alias=alias))
    return alias


def check_version(version: int | str) -> int:
    """Return ``version`` as a positive int, else raise UserError."""
    text = str(version).strip()
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_VERSION:
        raise UserError(MSG_BAD_VERSION.format(version=version))
    return int(text)


def is_version_ref(ref: str) -> bool:
    """True when a ``registry:<ref>`` names a version number (ASCII digits) rather than an alias."""
    return re.fullmatch(r"[0-9]+", ref.strip()) is not None


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: identity, when/who, the verdict that let it in, and its lineage."""

    name: str
    version: int
    model_sha256: str
    format: str
    size: int
    created_at: str
    created_by: str
    verdict: str
    lineage: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def ci_url(self) -> str | None:
        value = self.lineage.get("ci_url")
        return str(value) if value else None

    def summary(self) -> dict[str, Any]:
        """Return the ``history --json`` form of this version."""
        return {"version": self.version, "aliases": list(self.aliases), "created_at": self.created_at,
                "created_by": self.created_by, "verdict": self.verdict, "model_sha256": self.model_sha256,
                "format": self.format, "ci_url": self.ci_url, "forced": bool(self.lineage.get("forced"))}

    def record(self) -> dict[str, Any]:
        """Return the ``show --json`` form: the lineage record with identity and aliases."""
        return {**self.lineage, "name": self.name, "version": self.version,
                "model_sha256": self.model_sha256, "format": self.format, "size": self.size,
                "created_at": self.created_at, "created_by": self.created_by, "verdict": self.verdict,
                "aliases": list(self.aliases), "tags": dict(self.tags)}


@dataclass(frozen=True)
class Registration:
    """What :meth:`RegistryBackend.register` did: the version and whether it already existed."""

    version: ModelVersion
    already_registered: bool
    alias_moved_from: int | None = None


@dataclass(frozen=True)
class AliasMove:
    """An alias pointed at ``from_version`` (None: it was unset) and now points at ``to_version``."""

    name: str
    alias: str
    from_version: int | None
    to_version: int
    kind: str
    by: str
    at: str
    reason: str | None = None

    @property
    def moved(self) -> bool:
        return self.from_version != self.to_version


@dataclass(frozen=True)
class AuditEvent:
    """One line of the append-only audit log.

    ``kind`` is ``run`` (a gate run, pass or fail), ``register``, ``alias`` (promote or
    on-pass alias), ``rollback`` or ``forced_register``; ``record`` holds the event's details
    (a run's verdict, check statuses, waivers, report digest; a move's from/to versions).
    """

    seq: int
    at: str
    kind: str
    name: str
    by: str
    version: int | None = None
    alias: str | None = None
    verdict: str | None = None
    ci_url: str | None = None
    record: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "kind": self.kind, "name": self.name, "by": self.by,
                "version": self.version, "alias": self.alias, "verdict": self.verdict,
                "ci_url": self.ci_url, "record": dict(self.record)}


@dataclass(frozen=True)
class Evidence:
    """The admitted model as the gate run saw it, for backends that keep more than its bytes.

    ``estimator`` is the loaded model object (already trusted by the policy); ``inputs`` the eval
    data's feature columns (a DataFrame), from which a backend may infer the model's signature
    (column names and types; the values are never stored). The MLflow backend logs a flavour with
    them; the local registry keeps bytes and lineage only.
    """

    estimator: Any
    inputs: Any = None


@dataclass(frozen=True)
class RunEntry:
    """A gate run to append to the audit log (and, when it registers, to store beside the version)."""

    verdict: str
    by: str
    ci_url: str | None
    record: Mapping[str, Any]


@runtime_checkable
class RegistryBackend(Protocol):
    """A model registry: versions, aliases, lineage and an audit log.

    Reading methods never create anything; writing methods create the registry on first use.
    Unknown names, versions and aliases raise :class:`~gates.errors.UserError`; a damaged store
    (corrupt index, missing or altered model bytes) raises
    :class:`~gates.errors.EnvironmentProblem`.
    """

    kind: str
    uri: str

    def register(self, name: str, model: Path, *, format: str, lineage: Mapping[str, Any], by: str,
                 verdict: str, alias: str | None = None, run: RunEntry | None = None,
                 forced_reason: str | None = None, expected_sha256: str | None = None,
                 tags: Mapping[str, str] | None = None, evidence: Evidence | None = None) -> Registration:
        """Store ``model``'s bytes as the next version of ``name`` unless those bytes are already one.

        Atomic: the version, its lineage, ``alias`` (when given) and the audit entries (``run``,
        the registration, the alias move) appear together or not at all. Idempotent: identical
        bytes return the existing version with ``already_registered=True`` (the alias still moves
        there). ``forced_reason`` marks a registration without a passing verdict (audited).
        ``expected_sha256`` is the digest that was gated: if the file's bytes differ now,
        :class:`~gates.errors.EnvironmentProblem` (:data:`MSG_BYTES_CHANGED`) and nothing is stored.
        ``evidence`` (optional) is the loaded model and its inputs, for backends that keep a flavour.
        """

    def set_tag(self, name: str, version: int, key: str, value: str, *, by: str) -> None:
        """Set a free-form tag on a version (audited)."""

    def record_run(self, name: str, run: RunEntry) -> AuditEvent:
        """Append a gate run that registered nothing to the audit log."""

    def resolve(self, name: str, ref: str) -> ModelVersion | None:
        """Return the version ``ref`` (an alias or a version number) names, None when it is unset."""

    def get_version(self, name: str, version: int) -> ModelVersion:
        """Return one version with its lineage and aliases; UserError when there is no such version."""

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Return every version of ``name``, oldest first; UserError when the model is unknown."""

    def list_models(self) -> list[str]:
        """Return every registered model name, sorted."""

    def fetch(self, name: str, version: int) -> Path:
        """Return a local file holding the version's bytes, verified against its sha256.

        The file keeps the format's suffix (``.skops``) and stays valid until :meth:`close`.
        """

    def set_alias(self, name: str, alias: str, version: int, *, by: str, reason: str | None = None
                  ) -> AliasMove:
        """Point ``alias`` at ``version`` (a promote) and audit the move."""

    def rollback(self, name: str, alias: str, *, by: str, reason: str | None = None) -> AliasMove:
        """Move ``alias`` back to the version that held it before the current one, and audit it."""

    def alias_moves(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Return the alias moves of ``name`` (of one alias when given), oldest first."""

    def audit_log(self, name: str | None = None) -> list[AuditEvent]:
        """Return the audit log (of one model when given), oldest first."""

    def close(self) -> None:
        """Release connections and temporary files."""


def rollback_target(moves: Sequence[AliasMove], name: str, alias: str) -> tuple[int, int]:
    """Return (current version, version to roll back to) from an alias's move history.

    Moves are replayed as a stack: a promote pushes its version, a rollback pops one, so
    rolling back twice after promoting v1, v2, v3 gives v2 then v1 (never a v2/v3 toggle).
    Raises UserError when the alias is unset or has held only one version.
    """
    stack: list[int] = []
    for m in moves:
        if m.kind == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != m.to_version:
                stack.append(m.to_version)
        elif not stack or stack[-1] != m.to_version:
            stack.append(m.to_version)
    if not stack:
        raise UserError(MSG_UNKNOWN_ALIAS.format(name=name, alias=alias, known="none"))
    if len(stack) < 2:
        raise UserError(MSG_NOTHING_TO_ROLL_BACK.format(alias=alias, name=name,
                                                        held=", ".join(f"v{v}" for v in stack)))
    return stack[-1], stack[-2]
