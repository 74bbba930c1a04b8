"""The audit log of an MLflow-backed registry: append-only, numbered, safe under concurrent writers.

MLflow has no transactions across calls, but a run parameter can never be changed once logged:
logging key ``k`` again with another value is refused. That refusal is the compare-and-set the
log is built on. Each model's log is one run in the experiment ``<experiment>-audit``; entry ``n``
is its parameter ``00000n`` (zero-padded, so MLflow's UI lists them in order) holding the entry as
JSON. A writer claims the next number by logging it; if another writer got there first, it reads
again and takes the next one, so no entry is lost and no number is given twice. An entry's record
too long for a parameter (6000 characters) is stored as the artifact ``records/<sha256>.json`` of
the log's run before the entry names it, and checked against that sha256 when read.

Which run holds a model's log is agreed the same way: the *index* run holds one parameter
``model/<name>`` per model naming its log's run. The index run itself is named by a tag set when
the ``-audit`` experiment is created, and an experiment name is unique, so exactly one index
exists even when the first writers start together. Runs that lose these races are deleted.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gates.errors import EnvironmentProblem
from gates.registry.base import AuditEvent
from gates.registry.local_index import dumps
from gates.registry.mlflow_client import EXISTS, INVALID, error_code

MAX_PARAM_CHARS = 6000
CLAIM_ATTEMPTS = 200
TAG_KIND = "model_gates.kind"
TAG_INDEX_RUN = "model_gates.audit_index_run"
TAG_MODEL = "model_gates.model_name"
RECORDS = "records"

MSG_CONTENDED = "could not append to the audit log of {name!r}: {attempts} other writers came first"
MSG_NOT_AN_AUDIT_EXPERIMENT = (
    "the MLflow experiment {experiment!r} exists but was not made by model-gates (no {tag} tag); "
    "rename it or set MODEL_GATES_MLFLOW_EXPERIMENT"
)
MSG_RECORD_ALTERED = "audit entry {seq} of {name!r}: its record artifact {path} does not match its sha256"


class MlflowAuditLog:
    """The audit logs of one MLflow registry; ``client`` is an MlflowClient, ``experiments`` finds experiments."""

    def __init__(self, client: Any, experiments: Any, cache: Path) -> None:
        self._client = client
        self._experiments = experiments
        self._cache = cache
        self._index_run: str | None = None
        self._log_runs: dict[str, str] = {}
        self._next: dict[str, int] = {}

    # ------------------------------------------------------------------ where the logs are

    def index_run(self, *, create: bool) -> str | None:
        """Return the index run's id, creating it (once, whoever races) when ``create``."""
        if self._index_run is None:
            name = self._experiments.audit_name
            exp = self._client.get_experiment_by_name(name)
            if exp is None and create:
                exp = self._elect_index(name)
            if exp is None:
                return None
            if TAG_INDEX_RUN not in exp.tags:
                raise EnvironmentProblem(MSG_NOT_AN_AUDIT_EXPERIMENT.format(experiment=name, tag=TAG_INDEX_RUN))
            self._index_run = exp.tags[TAG_INDEX_RUN]
        return self._index_run

    def _elect_index(self, audit_experiment: str) -> Any:
        run = self._client.create_run(self._experiments.main_id(create=True), run_name="model-gates audit index",
                                      tags={TAG_KIND: "audit_index"})
        self._client.set_terminated(run.info.run_id)
        try:
            self._client.create_experiment(audit_experiment, artifact_location=self._experiments.artifact_location(
                audit_experiment), tags={TAG_INDEX_RUN: run.info.run_id, TAG_KIND: "audit"})
        except Exception as exc:
            if error_code(exc) != EXISTS:
                raise
            self._client.delete_run(run.info.run_id)
        return self._client.get_experiment_by_name(audit_experiment)

    def log_run(self, name: str, *, create: bool) -> str | None:
        """Return the id of the run holding ``name``'s log (None when it has none and ``create`` is false)."""
        if name in self._log_runs:
            return self._log_runs[name]
        index = self.index_run(create=create)
        if index is None:
            return None
        key = f"model/{name}"
        found: str | None = self._client.get_run(index).data.params.get(key)
        if found is None and create:
            found = self._elect_log_run(index, key, name)
        if found is not None:
            self._log_runs[name] = found
        return found

    def _elect_log_run(self, index: str, key: str, name: str) -> str:
        audit_id = self._client.get_experiment_by_name(self._experiments.audit_name).experiment_id
        run = self._client.create_run(audit_id, run_name=f"audit log: {name}",
                                      tags={TAG_KIND: "audit_log", TAG_MODEL: name})
        self._client.set_terminated(run.info.run_id)
        try:
            self._client.log_param(index, key, run.info.run_id)
            return str(run.info.run_id)
        except Exception as exc:
            if not is_taken(exc):
                raise
        self._client.delete_run(run.info.run_id)
        return str(self._client.get_run(index).data.params[key])

    def models(self) -> list[str]:
        """Return the names of every model with a log."""
        index = self.index_run(create=False)
        if index is None:
            return []
        params = self._client.get_run(index).data.params
        return sorted(k.split("/", 1)[1] for k in params if k.startswith("model/"))

    # ------------------------------------------------------------------ append

    def append(self, name: str, kind: str, by: str, *, at: str, version: int | None = None,
               alias: str | None = None, verdict: str | None = None, ci_url: str | None = None,
               record: Mapping[str, Any] | None = None) -> AuditEvent:
        """Append one entry to ``name``'s log and return it with the number it got."""
        run_id = self.log_run(name, create=True)
        assert run_id is not None
        entry = {"id": uuid.uuid4().hex, "at": at, "kind": kind, "name": name, "by": by, "version": version,
                 "alias": alias, "verdict": verdict, "ci_url": ci_url, "record": dict(record or {})}
        value = dumps(entry)
        if len(value) > MAX_PARAM_CHARS:
            value = dumps(self._spill(run_id, entry))
        for _ in range(CLAIM_ATTEMPTS):
            seq = self._next.get(name) or self._read_next(run_id)
            try:
                self._client.log_param(run_id, seq_key(seq), value)
            except Exception as exc:
                if not is_taken(exc):
                    raise
                self._next.pop(name, None)
                time.sleep(random.uniform(0.0, 0.02))
                continue
            self._next[name] = seq + 1
            return _event(seq, entry)
        raise EnvironmentProblem(MSG_CONTENDED.format(name=name, attempts=CLAIM_ATTEMPTS))

    def _read_next(self, run_id: str) -> int:
        params = self._client.get_run(run_id).data.params
        return max((int(k) for k in params if k.isdigit()), default=0) + 1

    def _spill(self, run_id: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Store the record as a content-addressed artifact; return the entry naming it instead."""
        text = dumps(entry["record"])
        digest = hashlib.sha256(text.encode()).hexdigest()
        folder = self._cache / "spill" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        (folder / f"{digest}.json").write_text(text, encoding="utf-8")
        self._client.log_artifact(run_id, str(folder / f"{digest}.json"), RECORDS)
        return {**entry, "record": None, "record_artifact": f"{RECORDS}/{digest}.json", "record_sha256": digest}

    # ------------------------------------------------------------------ read

    def events(self, name: str) -> list[AuditEvent]:
        """Return ``name``'s log, oldest first (empty when it has none)."""
        run_id = self.log_run(name, create=False)
        if run_id is None:
            return []
        params = self._client.get_run(run_id).data.params
        out = []
        for key in sorted((k for k in params if k.isdigit()), key=int):
            entry = json.loads(params[key])
            if entry.get("record_artifact"):
                entry["record"] = self._read_spilled(run_id, int(key), entry)
            out.append(_event(int(key), entry))
        return out

    def _read_spilled(self, run_id: str, seq: int, entry: Mapping[str, Any]) -> Any:
        path = str(entry["record_artifact"])
        local = self._cache / "records" / path
        if not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            local = Path(self._client.download_artifacts(run_id, path, str(local.parent.parent)))
        text = local.read_text(encoding="utf-8")
        if hashlib.sha256(text.encode()).hexdigest() != entry.get("record_sha256"):
            raise EnvironmentProblem(MSG_RECORD_ALTERED.format(seq=seq, name=entry.get("name"), path=path))
        return json.loads(text)


def seq_key(seq: int) -> str:
    return f"{seq:08d}"


def is_taken(exc: BaseException) -> bool:
    """True when MLflow refused a parameter because that key already holds another value."""
    return error_code(exc) == INVALID and "Changing param values is not allowed" in str(exc)


def _event(seq: int, entry: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(seq=seq, at=entry["at"], kind=entry["kind"], name=entry["name"], by=entry["by"],
                      version=entry.get("version"), alias=entry.get("alias"), verdict=entry.get("verdict"),
                      ci_url=entry.get("ci_url"), record=entry.get("record") or {})
