"""The ``mlflow`` registry backend: model versions, aliases and lineage in an MLflow model registry.

``registry: {backend: mlflow, uri: <tracking URI>}`` points model-gates at a team's MLflow (a
tracking server in production, a SQLite file in tests). A registration is one MLflow run in the
experiment ``model-gates`` (``MODEL_GATES_MLFLOW_EXPERIMENT``) holding the model folder and the
reports (:mod:`gates.registry.mlflow_artifacts`), and one new version of the registered model
whose tags carry the lineage (:mod:`gates.registry.mlflow_records`). ``production`` and ``staging``
are MLflow aliases, so ``models:/NAME@production`` is what model-gates calls production. Promote
and rollback move aliases; every move and every gate run goes to an append-only audit log kept in
run parameters (:mod:`gates.registry.mlflow_audit`).

MLflow has no transactions across calls, so the version is made in one call that carries all its
tags: that call is the commit point. A crash before it leaves at most a failed run; a crash after
it leaves a complete version whose audit entries or alias move may be missing, and registering the
same bytes again (after :data:`COMPLETE_AFTER_S`, so a live writer is never raced) completes it. Version numbers come from MLflow. Identical bytes are found by their
``model_gates.model_sha256`` tag; if two writers register the same bytes at once, the later
version is deleted and both get the earlier one.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Self

from gates.errors import EnvironmentProblem, UserError
from gates.registry.base import (
    MSG_BYTES_CHANGED,
    MSG_NOTHING_TO_ROLL_BACK,
    MSG_UNKNOWN_ALIAS,
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
from gates.hashing import file_sha256
from gates.registry.blobs import MSG_BLOB_CORRUPT, MSG_BLOB_MISSING, MSG_READ_MODEL
from gates.registry.local import MSG_BAD_FORMAT
from gates.registry.local_index import dumps
from gates.registry.mlflow_artifacts import bytes_path
from gates.registry.mlflow_audit import MlflowAuditLog
from gates.registry.mlflow_client import (
    INVALID,
    MISSING,
    Experiments,
    error_code,
    make_client,
    named_errors,
    redact,
    sqlite_path,
)
from gates.registry.mlflow_records import EXTERNAL, PREFIX, to_model_version
from gates.registry.mlflow_versions import MlflowVersions, StagedModel

_FORMAT = re.compile(r"[a-z0-9]{1,16}")
TAG_ALIAS_MOVE = PREFIX + "alias."
#: a version without a registration entry is completed by a later writer only once it is this old
COMPLETE_AFTER_S = 600.0

MSG_RESERVED_TAG = "tag {key!r} is reserved: keys starting with 'model_gates.' hold lineage"
MSG_EXTERNAL_VERSION = (
    "{name} v{version} was registered outside model-gates (it has no model_gates.model_sha256 tag), so "
    "there are no gated bytes to load; register its model file with model-gates register"
)
MSG_REPORT_ALTERED = "the report artifact {path} of {name} v{version} does not match its sha256"


class MlflowRegistry:
    """The registry in the MLflow tracking server (or database) at ``uri``."""

    kind = "mlflow"

    def __init__(self, uri: str) -> None:
        self.uri = str(uri).strip()
        self._db = sqlite_path(self.uri)
        self._client_obj: Any = None
        self._experiments_obj: Experiments | None = None
        self._audit_obj: MlflowAuditLog | None = None
        self._versions_obj: MlflowVersions | None = None
        self._tmp: Path | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def _client(self) -> Any:
        if self._client_obj is None:
            self._client_obj = make_client(self.uri)
        return self._client_obj

    @property
    def _experiments(self) -> Experiments:
        if self._experiments_obj is None:
            self._experiments_obj = Experiments(self._client, self.uri)
        return self._experiments_obj

    @property
    def _audit(self) -> MlflowAuditLog:
        if self._audit_obj is None:
            self._audit_obj = MlflowAuditLog(self._client, self._experiments, self._scratch("audit"))
        return self._audit_obj

    @property
    def _versions(self) -> MlflowVersions:
        if self._versions_obj is None:
            self._versions_obj = MlflowVersions(self._client, self._experiments, self._scratch)
        return self._versions_obj

    def _exists(self) -> bool:
        """False for a SQLite registry whose database is not there yet (reading must not create it)."""
        return self._db is None or self._db.is_file()

    def _scratch(self, purpose: str) -> Path:
        """Return a fresh folder under this backend's temporary folder (removed by :meth:`close`)."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="model-gates-mlflow-"))
        folder = self._tmp / purpose / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._client_obj = self._experiments_obj = self._audit_obj = self._versions_obj = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _errors(self) -> AbstractContextManager[None]:
        return named_errors(self.uri)

    # ------------------------------------------------------------------ register

    def register(self, name: str, model: Path, *, format: str, lineage: Mapping[str, Any], by: str,
                 verdict: str, alias: str | None = None, run: RunEntry | None = None,
                 forced_reason: str | None = None, expected_sha256: str | None = None,
                 tags: Mapping[str, str] | None = None, evidence: Evidence | None = None) -> Registration:
        check_model_name(name)
        if alias is not None:
            check_alias(alias)
        if not _FORMAT.fullmatch(format):
            raise UserError(MSG_BAD_FORMAT.format(format=format))
        for key in tags or {}:
            _check_tag_key(key)
        staged = self._stage(Path(model), format)
        if expected_sha256 is not None and staged.sha256 != expected_sha256:
            raise EnvironmentProblem(MSG_BYTES_CHANGED.format(path=model, expected=expected_sha256,
                                                              actual=staged.sha256))
        with self._errors():
            now = _now()
            existing = self._versions.find_by_sha(name, staged.sha256) if self._exists() else None
            if existing is None:
                made = self._versions.create(name, staged, lineage=lineage, by=by, verdict=verdict, at=now,
                                             evidence=evidence)
                version, already = self._versions.deduplicate(name, staged.sha256, made)
            else:
                version, already = existing, True
            self._audit_run(name, version, already, run, now)
            if not already or (existing is not None and self._was_interrupted(name, version)):
                self._audit_registration(name, version, run, lineage, staged, by, verdict, now, forced_reason)
            for key, value in (tags or {}).items():
                self._put_tag(name, version, key, value, by, now)
            moved_from = None
            if alias is not None:
                move = self._move_alias(name, alias, version, kind="on_pass", by=by, reason=None)
                moved_from = move.from_version if move.moved else None
            return Registration(version=self._version(name, version), already_registered=already,
                                alias_moved_from=moved_from)

    def _stage(self, model: Path, format: str) -> StagedModel:
        """Copy the model file aside, so the digest describes exactly the bytes that get stored."""
        staged = self._scratch("staged") / f"model.{format}"
        try:
            shutil.copyfile(model, staged)
        except OSError as exc:
            raise UserError(MSG_READ_MODEL.format(path=model, problem=exc.strerror or exc)) from None
        return StagedModel(staged, file_sha256(staged), staged.stat().st_size, format)

    def _audit_run(self, name: str, version: int, already: bool, run: RunEntry | None, now: str) -> None:
        if run is not None:
            self._audit.append(name, "run", run.by, at=now, version=version, verdict=run.verdict, ci_url=run.ci_url,
                               record={**run.record, "registered_version": version, "already_registered": already})

    def _was_interrupted(self, name: str, version: int) -> bool:
        """True when an existing version has no registration entry and its writer is long gone.

        A writer that is still auditing the version it just made is left to finish: only a version
        older than :data:`COMPLETE_AFTER_S` (by the registry's clock) is completed by another writer.
        """
        if any(e.kind in ("register", "forced_register") and e.version == version for e in self._audit.events(name)):
            return False
        mv = self._versions.get(name, version)
        created_s = (mv.creation_timestamp or 0) / 1000 if mv is not None else 0
        return dt.datetime.now(dt.UTC).timestamp() - created_s > COMPLETE_AFTER_S

    def _audit_registration(self, name: str, version: int, run: RunEntry | None, lineage: Mapping[str, Any],
                            staged: StagedModel, by: str, verdict: str, now: str, forced_reason: str | None) -> None:
        record: dict[str, Any] = {"model_sha256": staged.sha256, "format": staged.format, "size": staged.size}
        if forced_reason:
            record["reason"] = forced_reason
        ci_url = run.ci_url if run else lineage.get("ci_url")
        self._audit.append(name, "forced_register" if forced_reason else "register", by, at=now, version=version,
                           verdict=verdict, ci_url=ci_url, record=record)

    # ------------------------------------------------------------------ other writes

    def record_run(self, name: str, run: RunEntry) -> AuditEvent:
        check_model_name(name)
        with self._errors():
            return self._audit.append(name, "run", run.by, at=_now(), verdict=run.verdict, ci_url=run.ci_url,
                                      record=run.record)

    def set_tag(self, name: str, version: int, key: str, value: str, *, by: str) -> None:
        """Set a free-form tag on a version (audited)."""
        check_model_name(name)
        version = check_version(version)
        _check_tag_key(key)
        with self._errors():
            self._require_version(name, version)
            self._put_tag(name, version, key, value, by, _now())

    def _put_tag(self, name: str, version: int, key: str, value: str, by: str, now: str) -> None:
        self._client.set_model_version_tag(name, str(version), str(key), str(value))
        self._audit.append(name, "tag", by, at=now, version=version, record={"key": key, "value": value})

    def set_alias(self, name: str, alias: str, version: int, *, by: str, reason: str | None = None) -> AliasMove:
        check_model_name(name)
        check_alias(alias)
        version = check_version(version)
        with self._errors():
            self._require_version(name, version)
            return self._move_alias(name, alias, version, kind="promote", by=by, reason=reason)

    def rollback(self, name: str, alias: str, *, by: str, reason: str | None = None) -> AliasMove:
        """Move ``alias`` back to the version that held it before the current one (see :meth:`_rollback_plan`)."""
        check_model_name(name)
        check_alias(alias)
        with self._errors():
            self._require_model(name)
            _, target = self._rollback_plan(name, alias)
            self._require_version(name, target)
            return self._move_alias(name, alias, target, kind="rollback", by=by, reason=reason)

    def _rollback_plan(self, name: str, alias: str) -> tuple[int, int]:
        """Return (current, target) from the audited moves, tolerating a move made outside model-gates.

        When the alias was moved in MLflow's UI to a version our log never put there, rolling back
        returns it to the version our log last put there.
        """
        actual = self._alias_version(name, alias)
        if actual is None:
            raise UserError(MSG_UNKNOWN_ALIAS.format(name=name, alias=alias, known=self._alias_names(name) or "none"))
        moves = self.alias_moves(name, alias)
        if moves and moves[-1].to_version != actual:
            return actual, moves[-1].to_version
        if not moves:
            raise UserError(MSG_NOTHING_TO_ROLL_BACK.format(alias=alias, name=name, held=f"v{actual}"))
        return rollback_target(moves, name, alias)

    def _move_alias(self, name: str, alias: str, version: int, *, kind: str, by: str,
                    reason: str | None) -> AliasMove:
        """Point ``alias`` at ``version``, then record the move in a tag and the audit log."""
        previous = self._alias_version(name, alias)
        move = AliasMove(name=name, alias=alias, from_version=previous, to_version=version, kind=kind, by=by,
                         at=_now(), reason=reason)
        if not move.moved:
            return move
        self._client.set_registered_model_alias(name, alias, str(version))
        record: dict[str, Any] = {"from_version": previous, "to_version": version, "move": kind}
        if reason:
            record["reason"] = reason
        self._client.set_registered_model_tag(name, TAG_ALIAS_MOVE + alias, dumps({**record, "by": by, "at": move.at}))
        self._audit.append(name, "rollback" if kind == "rollback" else "alias", by, at=move.at, version=version,
                           alias=alias, record=record)
        return move

    # ------------------------------------------------------------------ reads

    def resolve(self, name: str, ref: str) -> ModelVersion | None:
        check_model_name(name)
        ref = str(ref).strip()
        if is_version_ref(ref):
            version = check_version(ref)
            if not self._exists():
                return None
            with self._errors():
                mv = self._versions.get(name, version)
        else:
            check_alias(ref)
            if not self._exists():
                return None
            with self._errors():
                mv = self._versions.by_alias(name, ref)
        return None if mv is None else self._to_ours(mv)

    def get_version(self, name: str, version: int) -> ModelVersion:
        check_model_name(name)
        version = check_version(version)
        with self._errors():
            self._require_version(name, version)
            return self._version(name, version)

    def list_versions(self, name: str) -> list[ModelVersion]:
        check_model_name(name)
        with self._errors():
            aliases = self._require_model(name).aliases or {}
            return [self._to_ours(mv, aliases) for mv in self._versions.search(name)]

    def list_models(self) -> list[str]:
        """Return the registered models that hold a version and have a name model-gates accepts."""
        if not self._exists():
            return []
        with self._errors():
            return sorted(name for name in self._versions.model_names() if _is_model_name(name))

    def fetch(self, name: str, version: int) -> Path:
        """Download the version's exact bytes and check them against its ``model_gates.model_sha256``.

        The registry names where ``models:/NAME/VERSION`` lives (MLflow's own resolution, asked of
        this registry rather than of the process-wide default); the file is read from there.
        """
        mv = self.get_version(name, version)
        if mv.verdict == EXTERNAL:
            raise UserError(MSG_EXTERNAL_VERSION.format(name=name, version=version))
        with self._errors():
            source = self._client.get_model_version_download_uri(name, str(mv.version))
            where = f"{source.rstrip('/')}/{bytes_path(mv.format)}"
            path = self._download(where, name, mv.version)
        actual = file_sha256(path)
        if actual != mv.model_sha256:
            raise EnvironmentProblem(MSG_BLOB_CORRUPT.format(name=name, version=version, path=where, actual=actual,
                                                             expected=mv.model_sha256))
        return path

    def _download(self, artifact_uri: str, name: str, version: int) -> Path:
        from mlflow.artifacts import download_artifacts

        try:
            return Path(download_artifacts(artifact_uri=artifact_uri, dst_path=str(self._scratch("fetched")),
                                           tracking_uri=self.uri))
        except Exception as exc:
            if error_code(exc) not in (MISSING, INVALID) and not isinstance(exc, OSError):
                raise
            raise EnvironmentProblem(MSG_BLOB_MISSING.format(name=name, version=version, path=artifact_uri)) from exc

    def aliases(self, name: str) -> dict[str, int]:
        """Return alias -> version for ``name`` (empty when none is set)."""
        check_model_name(name)
        if not self._exists():
            return {}
        with self._errors():
            rm = self._versions.registered_model(name)
            return {} if rm is None else {a: int(v) for a, v in sorted((rm.aliases or {}).items())}

    def alias_moves(self, name: str, alias: str | None = None) -> list[AliasMove]:
        check_model_name(name)
        return [AliasMove(name=e.name, alias=str(e.alias), from_version=e.record.get("from_version"),
                          to_version=int(e.version or 0), kind=str(e.record.get("move", e.kind)), by=e.by, at=e.at,
                          reason=e.record.get("reason"))
                for e in self.audit_log(name) if e.kind in ("alias", "rollback") and alias in (None, e.alias)]

    def audit_log(self, name: str | None = None) -> list[AuditEvent]:
        """Return the audit log, oldest first; each model's entries are numbered on their own (``seq``)."""
        if name is not None:
            check_model_name(name)
        if not self._exists():
            return []
        with self._errors():
            if name is not None:
                return self._audit.events(name)
            events = [e for model in self._audit.models() for e in self._audit.events(model)]
            return sorted(events, key=lambda e: (e.at, e.name, e.seq))

    # ------------------------------------------------------------------ lookups

    def _alias_version(self, name: str, alias: str) -> int | None:
        mv = self._versions.by_alias(name, alias)
        return None if mv is None else int(mv.version)

    def _alias_names(self, name: str) -> str:
        return ", ".join(self.aliases(name))

    def _require_model(self, name: str) -> Any:
        """Return the registered model ``name``; UserError unless it exists and has a version."""
        rm = self._versions.registered_model(name) if self._exists() else None
        if rm is None or not rm.latest_versions:
            raise UserError(MSG_UNKNOWN_MODEL.format(name=name, uri=redact(self.uri)))
        return rm

    def _require_version(self, name: str, version: int) -> None:
        self._require_model(name)
        if self._versions.get(name, version) is None:
            known = [str(mv.version) for mv in self._versions.search(name)]
            raise UserError(MSG_UNKNOWN_VERSION.format(name=name, version=version, known=", ".join(known) or "none"))

    def _version(self, name: str, version: int) -> ModelVersion:
        mv = self._versions.get(name, version)
        if mv is None:
            raise UserError(MSG_UNKNOWN_VERSION.format(name=name, version=version, known="none"))
        return self._to_ours(mv)

    def _to_ours(self, mv: Any, aliases: Mapping[str, Any] | None = None) -> ModelVersion:
        """Return an MLflow version as ours; ``aliases`` (alias -> version) when ``mv`` came from a search."""
        held = None if aliases is None else [a for a, v in aliases.items() if int(v) == int(mv.version)]
        return to_model_version(mv, lambda run_id, path, sha: self._load_report(mv.name, int(mv.version), run_id,
                                                                               path, sha), aliases=held)

    def _load_report(self, name: str, version: int, run_id: str, path: str, sha: str) -> Any:
        """Download a version's report.json and check it against the sha256 recorded at registration."""
        with self._errors():
            local = Path(self._client.download_artifacts(run_id, path, str(self._scratch("reports"))))
            text = local.read_text(encoding="utf-8")
        if hashlib.sha256(text.encode()).hexdigest() != sha:
            raise EnvironmentProblem(MSG_REPORT_ALTERED.format(path=path, name=name, version=version))
        return json.loads(text)


def _is_model_name(name: str) -> bool:
    try:
        check_model_name(name)
    except UserError:
        return False
    return True


def _check_tag_key(key: str) -> None:
    if str(key).startswith(PREFIX):
        raise UserError(MSG_RESERVED_TAG.format(key=key))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
