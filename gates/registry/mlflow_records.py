"""How a registered version is written into MLflow version tags, and read back as a :class:`ModelVersion`.

Every tag model-gates writes starts with ``model_gates.`` (DESIGN section 6)::

    model_gates.model_sha256 .format .size .verdict .created_by .created_at .forced   identity
    model_gates.git_sha .ci_url .policy_sha256 .report_sha256 .data.<kind>.sha256|rows  searchable in MLflow
    model_gates.lineage [.lineage.1 .lineage.2 ... .lineage_parts]   the whole lineage, canonical JSON
    model_gates.report_artifact .report_artifact_sha256   the run's report.json (the verdict)
    model_gates.flavor .flavor_note                       whether MLflow's sklearn flavour was logged

The lineage tag holds everything except the report itself, which is the registration run's
``model_gates/report.json`` artifact and is read (and checked against its sha256) only when a
caller looks at ``lineage["report"]``. Long values are split over several tags of at most
:data:`TAG_CHUNK` characters, the limit of older MLflow servers. Any other tag on a version, except
MLflow's own ``mlflow.*``, is a free-form tag. A version without ``model_gates.model_sha256`` was
registered by something else: it is listed as ``external`` and cannot serve as a baseline file.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from gates.registry.base import ModelVersion
from gates.registry.local_index import dumps

PREFIX = "model_gates."
TAG_SHA = PREFIX + "model_sha256"
TAG_FORMAT = PREFIX + "format"
TAG_SIZE = PREFIX + "size"
TAG_VERDICT = PREFIX + "verdict"
TAG_BY = PREFIX + "created_by"
TAG_AT = PREFIX + "created_at"
TAG_FORCED = PREFIX + "forced"
TAG_LINEAGE = PREFIX + "lineage"
TAG_LINEAGE_PARTS = PREFIX + "lineage_parts"
TAG_REPORT = PREFIX + "report_artifact"
TAG_REPORT_SHA = PREFIX + "report_artifact_sha256"
TAG_FLAVOR = PREFIX + "flavor"
TAG_FLAVOR_NOTE = PREFIX + "flavor_note"
TAG_CHUNK = 5000
EXTERNAL = "external"
REPORT_KEY = "report"
#: lineage scalars copied to their own tag, so MLflow's search and UI can use them
SEARCHABLE = ("git_sha", "ci_url", "report_sha256")


def version_tags(*, sha256: str, format: str, size: int, verdict: str, by: str, at: str,
                 lineage: Mapping[str, Any]) -> dict[str, str]:
    """Return the ``model_gates.*`` tags of a new version (the report itself goes in an artifact)."""
    tags = {TAG_SHA: sha256, TAG_FORMAT: format, TAG_SIZE: str(size), TAG_VERDICT: verdict, TAG_BY: by,
            TAG_AT: at, TAG_FORCED: str(bool(lineage.get("forced"))).lower()}
    for key in SEARCHABLE:
        if lineage.get(key):
            tags[PREFIX + key] = str(lineage[key])[:TAG_CHUNK]
    policy = lineage.get("policy")
    if isinstance(policy, Mapping) and policy.get("sha256"):
        tags[PREFIX + "policy_sha256"] = str(policy["sha256"])
    tags.update(_data_tags(lineage.get("data")))
    tags.update(split_tag(TAG_LINEAGE, TAG_LINEAGE_PARTS, dumps(without_report(lineage))))
    return tags


def _data_tags(data: Any) -> dict[str, str]:
    tags = {}
    for kind, block in (data or {}).items() if isinstance(data, Mapping) else ():
        if isinstance(block, Mapping) and str(kind).isidentifier():
            for field in ("sha256", "rows"):
                if block.get(field) is not None:
                    tags[f"{PREFIX}data.{kind}.{field}"] = str(block[field])
    return tags


def without_report(lineage: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in lineage.items() if k != REPORT_KEY}


def split_tag(key: str, parts_key: str, text: str) -> dict[str, str]:
    """Return ``text`` as tag ``key`` (and ``key.1``, ``key.2`` ... when longer than one tag holds)."""
    chunks = [text[i:i + TAG_CHUNK] for i in range(0, len(text), TAG_CHUNK)] or [""]
    tags = {key: chunks[0]}
    if len(chunks) > 1:
        tags.update({f"{key}.{i}": chunk for i, chunk in enumerate(chunks[1:], start=1)})
        tags[parts_key] = str(len(chunks))
    return tags


def joined_tag(tags: Mapping[str, str], key: str, parts_key: str) -> str:
    """Return the text :func:`split_tag` spread over ``tags``."""
    parts = int(tags.get(parts_key, "1"))
    return tags.get(key, "") + "".join(tags.get(f"{key}.{i}", "") for i in range(1, parts))


def is_gated(tags: Mapping[str, str]) -> bool:
    """True when a version was registered by model-gates (it records its bytes' sha256)."""
    return TAG_SHA in tags


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Return the free-form tags: everything but model-gates' own and MLflow's."""
    return {k: v for k, v in sorted(tags.items()) if not k.startswith((PREFIX, "mlflow."))}


def to_model_version(mv: Any, load_report: Callable[[str, str, str], Any],
                     aliases: Sequence[str] | None = None) -> ModelVersion:
    """Return an MLflow ``ModelVersion`` entity as ours.

    ``load_report(run_id, path, sha256)`` reads the report; ``aliases`` replaces the entity's own
    (empty in search results).
    """
    tags = dict(mv.tags or {})
    aliases = tuple(sorted(mv.aliases or () if aliases is None else aliases))
    if not is_gated(tags):
        return ModelVersion(name=mv.name, version=int(mv.version), model_sha256="", format=EXTERNAL, size=0,
                            created_at=_from_millis(mv.creation_timestamp), created_by=mv.user_id or "unknown",
                            verdict=EXTERNAL, lineage={"source": mv.source, "run_id": mv.run_id},
                            aliases=aliases, tags=user_tags(tags))
    lineage: Mapping[str, Any] = json.loads(joined_tag(tags, TAG_LINEAGE, TAG_LINEAGE_PARTS) or "{}")
    if tags.get(TAG_REPORT) and mv.run_id:
        run_id, path, sha = mv.run_id, tags[TAG_REPORT], tags.get(TAG_REPORT_SHA, "")
        lineage = LazyLineage(lineage, lambda: load_report(run_id, path, sha))
    return ModelVersion(name=mv.name, version=int(mv.version), model_sha256=tags[TAG_SHA],
                        format=tags.get(TAG_FORMAT, ""), size=int(tags.get(TAG_SIZE, "0")),
                        created_at=tags.get(TAG_AT) or _from_millis(mv.creation_timestamp),
                        created_by=tags.get(TAG_BY, "unknown"), verdict=tags.get(TAG_VERDICT, ""),
                        lineage=lineage, aliases=aliases, tags=user_tags(tags))


class LazyLineage(Mapping[str, Any]):
    """A version's lineage whose ``report`` entry is read from its artifact on first use.

    ``history`` looks at dozens of versions and never at their reports, so each report is
    downloaded only when asked for (``show --json``, or ``lineage["report"]``), then kept.
    """

    def __init__(self, base: Mapping[str, Any], load_report: Callable[[], Any]) -> None:
        self._base = dict(base)
        self._load_report = load_report
        self._report: list[Any] = []

    def __getitem__(self, key: str) -> Any:
        if key != REPORT_KEY:
            return self._base[key]
        if not self._report:
            self._report.append(self._load_report())
        return self._report[0]

    def __iter__(self) -> Iterator[str]:
        yield from self._base
        yield REPORT_KEY

    def __len__(self) -> int:
        return len(self._base) + 1

    def __repr__(self) -> str:
        return f"LazyLineage({sorted(self._base)} + report)"


def _from_millis(ms: int | None) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")
