"""Where the verdict takes effect: resolve the baseline from the registry, register on pass, audit every run.

``model-gates run`` calls :func:`baseline_resolver` before the gates and :func:`record_run` after;
the pytest plugin does the same at session end. Nothing here decides anything about the model:
the verdict is final when it arrives.
"""
from __future__ import annotations

import difflib
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gates import artifacts
from gates.context import BaselineResolver, ResolvedModel
from gates.errors import EnvironmentProblem, UserError
from gates.lineage import build_lineage, current_actor, run_entry
from gates.models import LoadedModel
from gates.models.registered import recorded_entry
from gates.policy import Policy, RegistrySpec
from gates.registry import open_backend
from gates.registry.base import Evidence, RegistryBackend, is_version_ref
from gates.runner import RunResult

REASON_NO_REGISTER = "--no-register was given"
REASON_SHADOW = "mode: shadow never registers"
REASON_DISABLED = "registry.on_pass.register is false"
REASON_FAILED = "the verdict is fail"
REASON_COLUMNS = "the candidate is given as prediction columns, so there is no model file to register"
MSG_NO_SUCH_VERSION = "model.baseline: registry:{ref}: model '{name}' has no version {ref} ({have})"
MSG_ALIAS_TYPO = ("model.baseline: registry:{ref}: model '{name}' has no alias '{ref}' (did you mean "
                  "'{alias}'? aliases: {aliases})")


def open_registry(spec: RegistrySpec) -> RegistryBackend:
    """Return the backend a policy's ``registry`` section names."""
    return open_backend(spec.backend, spec.uri)


def baseline_resolver(policy: Policy) -> BaselineResolver | None:
    """Return a resolver of ``registry:<ref>`` baselines, or None when the baseline is not in a registry.

    The backend is opened on the first call only, and kept open so the fetched file stays valid
    while the run uses it.
    """
    if policy.model.baseline.registry_ref is None:
        return None
    opened: list[RegistryBackend] = []

    def resolve(ref: str) -> ResolvedModel | None:
        if not opened:
            opened.append(open_registry(policy.registry))
        backend = opened[0]
        found = backend.resolve(policy.model.name, ref)
        if found is None:
            _check_unset_baseline(backend, policy, ref)
            return None
        path = backend.fetch(policy.model.name, found.version)
        return ResolvedModel(path=path, format=found.format, uri=f"registry:{ref} (v{found.version})",
                             sha256=found.model_sha256, version=found.version, entry=recorded_entry(found.lineage))

    return resolve


def _check_unset_baseline(backend: RegistryBackend, policy: Policy, ref: str) -> None:
    """Tell a baseline that is not set yet (first model: checks skip) from one that cannot exist.

    A version number the model never had, or an alias close to one the model does have
    (``prod`` for ``production``), is a mistake in gates.yaml: comparing against nothing would
    let any candidate through, so it is an error naming the line.
    """
    versions = (backend.list_versions(policy.model.name)
                if policy.model.name in backend.list_models() else [])
    where = policy.where("model", "baseline")
    if is_version_ref(ref):
        have = f"versions 1-{max(v.version for v in versions)}" if versions else "no versions yet"
        raise UserError(MSG_NO_SUCH_VERSION.format(ref=ref, name=policy.model.name, have=have), location=where)
    aliases = sorted({a for v in versions for a in v.aliases})
    close = difflib.get_close_matches(ref, aliases, n=1, cutoff=0.5)
    if close:
        raise UserError(MSG_ALIAS_TYPO.format(ref=ref, name=policy.model.name, alias=close[0],
                                              aliases=", ".join(aliases)), location=where)


def why_not_register(policy: Policy, result: RunResult, *, register: bool) -> str | None:
    """Return why this run must not register its candidate, or None when it should."""
    if not register:
        return REASON_NO_REGISTER
    if policy.is_shadow:
        return REASON_SHADOW
    if not policy.registry.register_on_pass:
        return REASON_DISABLED
    if not result.verdict.passed:
        return REASON_FAILED
    if not policy.model.candidate.is_model and not result.context.is_per_example:
        return REASON_COLUMNS
    return None


def record_run(policy: Policy, result: RunResult, report: Mapping[str, Any], *, register: bool,
               not_asked: str = REASON_NO_REGISTER) -> dict[str, Any]:
    """Append the run to the audit log and register the candidate when the verdict passes.

    ``not_asked`` is what the audit log and report say when ``register`` is False (the CLI's
    ``--no-register``, a pytest session without ``--model-gates-register``, ...).
    Returns the report's ``registration`` block.
    """
    backend = open_registry(policy.registry)
    try:
        reason = why_not_register(policy, result, register=register)
        if reason == REASON_NO_REGISTER:
            reason = not_asked
        who = current_actor()
        if reason is not None:
            backend.record_run(policy.model.name, run_entry(report, by=who, not_registered=reason))
            return {"registered": False, "reason": reason}
        return _register(backend, policy, result, report, who)
    finally:
        backend.close()


def _register(backend: RegistryBackend, policy: Policy, result: RunResult, report: Mapping[str, Any],
              who: str) -> dict[str, Any]:
    if result.context.is_per_example:
        return _register_artifact(backend, policy, result, report, who)
    candidate = result.context.candidate_model
    if candidate is None:
        raise EnvironmentProblem(REASON_COLUMNS)
    lineage = build_lineage(report, model_sha256=candidate.sha256, model_format=candidate.format, by=who)
    add_files(lineage, candidate)
    with registrable_file(candidate) as path:
        reg = backend.register(policy.model.name, path, format=candidate.format, lineage=lineage, by=who,
                               verdict=result.verdict.value, alias=policy.registry.alias_on_pass,
                               run=run_entry(report, by=who), expected_sha256=candidate.sha256,
                               evidence=Evidence(candidate.estimator, _feature_frame(result)))
    return {"registered": True, "backend": backend.kind, "version": reg.version.version,
            "aliases": list(reg.version.aliases), "already_registered": reg.already_registered}


def _register_artifact(backend: RegistryBackend, policy: Policy, result: RunResult, report: Mapping[str, Any],
                       who: str) -> dict[str, Any]:
    """Register what a per_example run evaluated: ``model.artifact``'s bytes (a folder as a deterministic
    tar), or for a URI or no artifact a manifest naming it, the scores, the eval data and the policy."""
    art = result.context.artifact
    with tempfile.TemporaryDirectory(prefix="model-gates-artifact-") as tmp:
        path, sha = artifacts.stage(art, report, Path(tmp))
        if art.sha256 is not None and sha != art.sha256:
            raise EnvironmentProblem(artifacts.MSG_CHANGED.format(path=art.uri, expected=art.sha256, actual=sha))
        lineage = build_lineage(report, model_sha256=sha, model_format=art.format, by=who)
        shown = (report.get("model") or {}).get("candidate") or {}
        lineage["model"]["artifact"] = {"uri": shown.get("uri") if art.uri else None, "sha256": art.sha256,
                                        "format": art.format, "scores": shown.get("scores")}
        reg = backend.register(policy.model.name, path, format=art.format, lineage=lineage, by=who,
                               verdict=result.verdict.value, alias=policy.registry.alias_on_pass,
                               run=run_entry(report, by=who), expected_sha256=sha, evidence=None)
    return {"registered": True, "backend": backend.kind, "version": reg.version.version,
            "aliases": list(reg.version.aliases), "already_registered": reg.already_registered}


def add_files(lineage: dict[str, Any], model: LoadedModel) -> None:
    """Record a multi-file model's files and its entry (what is loaded inside its archive) in ``lineage``."""
    if model.is_bundle:
        lineage["model"]["files"] = [n for n, _ in model.files]
        lineage["model"]["entry"] = model.entry


@contextmanager
def registrable_file(model: LoadedModel) -> Iterator[Path]:
    """Yield the one file a registry stores for ``model``: its file, or its files' deterministic archive
    (whose sha256 is the model's)."""
    if not model.is_bundle:
        yield model.path
        return
    from gates.models.bundle import save_archive

    with tempfile.TemporaryDirectory(prefix="model-gates-bundle-") as tmp:
        yield save_archive(model.files, Path(tmp) / f"model.{model.format}")


def _feature_frame(result: RunResult) -> Any:
    """Return the eval data's feature columns (a backend may infer a signature), None if unknown."""
    ctx = result.context
    sample = getattr(ctx, "feature_sample", None)  # a batched run reads one partition, not the whole data
    try:
        return sample() if sample is not None else ctx.frame[ctx.features_of("candidate")]
    except UserError:
        return None
