"""MLflow model versions as the ``mlflow`` backend reads and makes them.

Reading: a version by number or alias, a registered model, every version of a model (MLflow's
search pages through them, without their aliases), and the version holding given bytes (found by
its ``model_gates.model_sha256`` tag). Making: one registration run with the model folder, the
reports and the metrics (:mod:`gates.registry.mlflow_artifacts`), then one ``create_model_version``
call carrying every lineage tag, which is the registration's commit point.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.models.registered import recorded_entry
from gates.registry.base import Evidence
from gates.registry.mlflow_artifacts import (
    MODEL_DIR,
    REPORTS_DIR,
    run_metrics,
    write_model_folder,
    write_reports,
)
from gates.registry.mlflow_audit import TAG_KIND, TAG_MODEL
from gates.registry.mlflow_client import (
    EXISTS,
    INVALID,
    MISSING,
    Experiments,
    error_code,
)
from gates.registry.mlflow_records import (
    PREFIX,
    REPORT_KEY,
    TAG_REPORT,
    TAG_REPORT_SHA,
    TAG_SHA,
    version_tags,
)

PAGE = 1000
METRICS_PER_BATCH = 1000


@dataclass(frozen=True)
class StagedModel:
    """A copy of the model file about to be registered, with the digest and size of exactly those bytes."""

    path: Path
    sha256: str
    size: int
    format: str


class MlflowVersions:
    """Versions and registered models of one MLflow registry; ``scratch(purpose)`` gives a fresh temp folder."""

    def __init__(self, client: Any, experiments: Experiments, scratch: Callable[[str], Path]) -> None:
        self._client = client
        self._experiments = experiments
        self._scratch = scratch

    # ------------------------------------------------------------------ reading

    def get(self, name: str, version: int) -> Any:
        """Return MLflow's version entity, None when there is no such model or version."""
        return _or_none(lambda: self._client.get_model_version(name, str(version)), MISSING)

    def by_alias(self, name: str, alias: str) -> Any:
        """Return the version ``alias`` points at (``models:/NAME@ALIAS``), None when it is unset."""
        return _or_none(lambda: self._client.get_model_version_by_alias(name, alias), MISSING, INVALID)

    def registered_model(self, name: str) -> Any:
        return _or_none(lambda: self._client.get_registered_model(name), MISSING)

    def search(self, name: str) -> list[Any]:
        """Return every version of ``name``, oldest first (their ``aliases`` are empty: MLflow's search omits them)."""
        found = self._pages(lambda token: self._client.search_model_versions(
            f"name = '{name}'", max_results=PAGE, page_token=token))
        return sorted(found, key=lambda mv: int(mv.version))

    def model_names(self) -> list[str]:
        """Return the names of the registered models that hold at least one version."""
        models = self._pages(lambda token: self._client.search_registered_models(max_results=PAGE, page_token=token))
        return [rm.name for rm in models if rm.latest_versions]

    def find_by_sha(self, name: str, sha256: str) -> int | None:
        """Return the earliest version of ``name`` holding these bytes, None when there is none."""
        found = self._client.search_model_versions(f"name = '{name}' and tags.`{TAG_SHA}` = '{sha256}'")
        return min((int(mv.version) for mv in found), default=None)

    @staticmethod
    def _pages(fetch: Callable[[str | None], Any]) -> list[Any]:
        found: list[Any] = []
        token = None
        while True:
            page = fetch(token)
            found.extend(page)
            token = getattr(page, "token", None)
            if not token:
                return found

    # ------------------------------------------------------------------ making

    def create(self, name: str, staged: StagedModel, *, lineage: Mapping[str, Any], by: str, verdict: str, at: str,
               evidence: Evidence | None) -> int:
        """Log the registration run and create the version (the commit point); return its number."""
        experiment = self._experiments.main_id(create=True)
        self._ensure_registered_model(name)
        tags = {TAG_KIND: "registration", TAG_MODEL: name, TAG_SHA: staged.sha256, "mlflow.user": by}
        if lineage.get("git_sha"):
            tags["mlflow.source.git.commit"] = str(lineage["git_sha"])
        run = self._client.create_run(experiment, run_name=f"{name} {staged.sha256[:12]}", tags=tags)
        run_id = run.info.run_id
        try:
            version_tagged = version_tags(sha256=staged.sha256, format=staged.format, size=staged.size,
                                          verdict=verdict, by=by, at=at, lineage=lineage)
            version_tagged.update(self._log_run(run_id, staged, lineage, evidence))
            mv = self._client.create_model_version(name, source=f"{run.info.artifact_uri}/{MODEL_DIR}",
                                                   run_id=run_id, tags=version_tagged,
                                                   description=f"Registered by model-gates (verdict: {verdict}).")
        except BaseException:
            self._client.set_terminated(run_id, "FAILED")
            raise
        self._client.set_terminated(run_id, "FINISHED")
        return int(mv.version)

    def _log_run(self, run_id: str, staged: StagedModel, lineage: Mapping[str, Any],
                 evidence: Evidence | None) -> dict[str, str]:
        """Log the model folder, the reports and the metrics; return the version tags describing them."""
        folder = self._scratch("model") / MODEL_DIR
        tags = write_model_folder(folder, staged.path, staged.format, staged.sha256, evidence,
                                  recorded_entry(lineage))
        self._client.log_artifacts(run_id, str(folder), MODEL_DIR)
        if REPORT_KEY in lineage:
            reports = self._scratch("reports")
            report_name, report_sha = write_reports(reports, lineage[REPORT_KEY] or {})
            self._client.log_artifacts(run_id, str(reports), REPORTS_DIR)
            tags.update({TAG_REPORT: f"{REPORTS_DIR}/{report_name}", TAG_REPORT_SHA: report_sha})
        metrics = run_metrics(lineage)
        if metrics:
            from mlflow.entities import Metric

            stamp = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            batch = [Metric(key, value, stamp, 0) for key, value in metrics.items()]
            for start in range(0, len(batch), METRICS_PER_BATCH):
                self._client.log_batch(run_id, metrics=batch[start:start + METRICS_PER_BATCH])
        return tags

    def _ensure_registered_model(self, name: str) -> None:
        try:
            self._client.create_registered_model(name, tags={PREFIX + "managed": "true"},
                                                 description="Model versions admitted by model-gates.")
        except Exception as exc:
            if error_code(exc) != EXISTS:
                raise

    def deduplicate(self, name: str, sha256: str, version: int) -> tuple[int, bool]:
        """Return (version, already registered): if a concurrent writer registered these bytes first,
        drop ours and return theirs."""
        earliest = self.find_by_sha(name, sha256)
        if earliest is None or earliest >= version:
            return version, False
        self._client.delete_model_version(name, str(version))
        return earliest, True


def _or_none(call: Callable[[], Any], *codes: str) -> Any:
    """Return ``call()``, or None when MLflow answers with one of ``codes`` (it does not exist)."""
    try:
        return call()
    except Exception as exc:
        if error_code(exc) in codes:
            return None
        raise
