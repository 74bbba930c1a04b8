"""Registry commands: ``register``, ``promote``, ``rollback``, ``history``, ``show`` and ``verify``.

Each finds the registry from ``--registry URI`` (with ``--backend``) or from the ``registry``
section of ``-c gates.yaml``; only that section (and ``model``) is read, so these commands work
where the data files are absent. Human tables by default, ``--json`` for machines.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from gates.config import MSG_EMPTY_URI, load_yaml
from gates.errors import EnvironmentProblem, UserError
from gates.lineage import build_lineage, current_actor
from gates.models import FORMATS, LoadedModel, Trust
from gates.policy import DEFAULT_ALIAS_ON_PASS, DEFAULT_REGISTRY_URI
from gates.registry import BACKENDS, open_backend
from gates.registry.base import (
    AuditEvent,
    ModelVersion,
    RegistryBackend,
    check_alias,
    check_version,
    is_version_ref,
)
from gates.reporters.json_report import load_report

MSG_NO_REGISTRY = "no registry given: pass --registry PATH (or URI with --backend mlflow), or -c gates.yaml"
MSG_CONFIG_UNREADABLE = "cannot read the registry section: {problem}"
MSG_FORCE_NEEDS_REASON = "--force needs --reason saying why the gates may be bypassed (it is audited)"
MSG_NO_MODEL_FILE = ("which model? pass MODEL_FILE (a file, or an MLflow model folder), or -c gates.yaml whose "
                     "model.candidate is one")
MSG_NO_NAME = "which model name? pass --name, or a report or gates.yaml that names the model"
MSG_NO_REPORT = (
    "no report at {path}: registering needs the passing report.json of a gate run on this model "
    "(model-gates run --report-dir ...), or --force --reason"
)
MSG_NOT_ADMITTED = "{report} does not admit this model: {problem} (run the gates, or use --force --reason)"
MSG_REPORT_FAILED = "its verdict is {verdict}"
MSG_REPORT_SHADOW = "it comes from a shadow-mode run, which never registers"
MSG_REPORT_OTHER_MODEL = "it gates model {got!r}, not {name!r}"
MSG_REPORT_OTHER_BYTES = "it gated different bytes (sha256 {gated}, this file has {actual})"
MSG_FILE_NOT_FOUND = "file not found"
MSG_AMBIGUOUS_FORMAT = "a {ext} file can be more than one model format: say which with --format (e.g. --format {example})"
MSG_FOLDER_FORMAT = "a folder is registered only as an MLflow model (with its MLmodel file), not as {format}"
MSG_NO_VERSIONS = "no version registered yet"
MSG_ALIAS_UNSET = "model {name!r} has no alias {alias!r}"
MSG_NO_LOCAL_REGISTRY = "no registry folder at {path}"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
F = TypeVar("F", bound=Callable[..., Any])


# ------------------------------------------------------------------ finding the registry


@dataclass(frozen=True)
class RegistryLocation:
    backend: str
    uri: str
    model_name: str | None = None
    candidate: Path | None = None
    #: the policy's ``registry.on_pass.alias`` (what ``run`` points at a version it registers)
    alias_on_pass: str | None = None
    #: the policy's trust (``model.trust_pickle``, ``model.trusted_types``): what ``register`` may load
    trust: Trust = Trust()
    #: the candidate's ``format`` and ``outputs`` when the policy's candidate is a mapping
    candidate_format: str | None = None
    candidate_outputs: Mapping[str, str] | None = None


def registry_options(func: F) -> F:
    """Add ``-c/--config``, ``--registry`` and ``--backend`` to a command."""
    func = click.option("--backend", type=click.Choice(BACKENDS), default=None,
                        help="Backend of --registry (default: the config's, else local).")(func)
    func = click.option("--registry", "registry_uri", metavar="URI",
                        help="Registry folder (local) or MLflow tracking URI; overrides the config.")(func)
    return click.option("-c", "--config", "config", default="gates.yaml", show_default=True,
                        type=click.Path(dir_okay=False), help="Policy file whose registry section to use.")(func)


def locate(config: str, registry_uri: str | None, backend: str | None) -> RegistryLocation:
    """Return where the registry is: ``--registry`` wins, else the policy file's ``registry`` section."""
    section = _read_sections(Path(config)) if Path(config).is_file() else None
    model = (section or {}).get("model") or {}
    model = model if isinstance(model, dict) else {}
    name = model.get("name") if isinstance(model.get("name"), str) else None
    candidate = _candidate_path(model.get("candidate"), Path(config).parent)
    facts = {"trust": _trust(model), **_candidate_facts(model.get("candidate"))}
    if registry_uri is not None:
        if not registry_uri.strip():
            raise UserError(f"--registry: {MSG_EMPTY_URI}")
        return RegistryLocation(backend or "local", registry_uri, name, candidate, **facts)
    if section is None:
        raise UserError(MSG_NO_REGISTRY)
    reg = section.get("registry") or {}
    kind = backend or str(reg.get("backend", "local"))
    uri = str(reg.get("uri", DEFAULT_REGISTRY_URI))
    if not uri.strip():
        raise UserError(f"registry.uri: {MSG_EMPTY_URI}", location=str(config))
    if kind == "local" and "://" not in uri and not Path(uri).is_absolute():
        uri = str((Path(config).parent / uri).resolve())
    on_pass = reg.get("on_pass") if isinstance(reg.get("on_pass"), dict) else {}
    alias = on_pass.get("alias", DEFAULT_ALIAS_ON_PASS)
    return RegistryLocation(kind, uri, name, candidate, alias if isinstance(alias, str) and alias else None,
                            **facts)


def _read_sections(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(MSG_CONFIG_UNREADABLE.format(problem=str(exc).splitlines()[0]), location=str(path)) from None
    data = load_yaml(text, str(path))[1]  # bounded: aliases cannot make this walk explode
    if not isinstance(data, dict):
        raise UserError(MSG_CONFIG_UNREADABLE.format(problem="expected a mapping"), location=str(path))
    return {k: _interpolate(data.get(k)) for k in ("registry", "model")}


def _interpolate(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, str):
        return _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    return value


def _candidate_path(value: Any, base: Path) -> Path | None:
    if isinstance(value, dict):
        value = value.get("path")
    if not isinstance(value, str) or value.startswith(("registry:", "models:", "runs:")) or value == "none":
        return None
    return Path(value) if Path(value).is_absolute() else (base / value).resolve()


def _candidate_facts(value: Any) -> dict[str, Any]:
    """Return the ``format`` and ``outputs`` a mapping candidate (``{path, format, outputs}``) states."""
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        return {}
    fmt = value.get("format")
    outputs = value.get("outputs")
    return {"candidate_format": fmt if isinstance(fmt, str) else None,
            "candidate_outputs": {str(k): str(v) for k, v in outputs.items()} if isinstance(outputs, dict) else None}


def _trust(model: Mapping[str, Any]) -> Trust:
    """Return the policy's trust; values of the wrong type trust nothing (``run`` reports them)."""
    types = model.get("trusted_types")
    return Trust(trust_pickle=model.get("trust_pickle") is True,
                 trusted_types=tuple(t for t in types if isinstance(t, str)) if isinstance(types, list) else ())


@contextmanager
def opened(where: RegistryLocation) -> Iterator[RegistryBackend]:
    backend = open_backend(where.backend, where.uri)
    try:
        yield backend
    finally:
        backend.close()


# ------------------------------------------------------------------ register


@click.command()
@click.argument("model_file", required=False, type=click.Path())
@click.option("--format", "model_format", type=click.Choice(FORMATS),
              help="The model's format, for extensions several formats use (.json, .txt) "
                   "(default: from the extension, or the config's model.candidate.format).")
@registry_options
@click.option("--name", help="Model name (default: the report's model.name, else the config's).")
@click.option("--report", "report_path", default="model-gates-report/report.json", show_default=True,
              type=click.Path(dir_okay=False), help="The passing report.json of a gate run on this model.")
@click.option("--alias", help="Also point this alias at the version (default: the config's registry.on_pass.alias).")
@click.option("--force", is_flag=True, help="Register without a passing report for these bytes (audited).")
@click.option("--reason", help="Why --force is needed (recorded in the audit log and lineage).")
@click.option("--json", "as_json", is_flag=True, help="Print the registration as JSON.")
def register(model_file: str | None, model_format: str | None, config: str, registry_uri: str | None,
             backend: str | None, name: str | None, report_path: str, alias: str | None, force: bool,
             reason: str | None, as_json: bool) -> None:
    """Register MODEL_FILE (default: the config's candidate) if a passing report gated its exact bytes.

    MODEL_FILE is loaded first, under the config's trust (a pickle needs model.trust_pickle, a skops
    file's types must be in model.trusted_types). A model of several files (an ONNX graph with
    external data, an MLflow model folder) is registered as their deterministic archive.
    """
    if force and not reason:
        raise UserError(MSG_FORCE_NEEDS_REASON)
    if alias is not None:
        check_alias(alias)
    where = locate(config, registry_uri, backend)
    alias = alias or (check_alias(where.alias_on_pass) if where.alias_on_pass else None)
    path = Path(model_file) if model_file else where.candidate
    if path is None:
        raise UserError(MSG_NO_MODEL_FILE)
    is_candidate = where.candidate is not None and path.resolve() == where.candidate.resolve()
    loaded = _load_for_register(path, model_format or (where.candidate_format if is_candidate else None),
                                where, outputs=where.candidate_outputs if is_candidate else None)
    report = _read_report(Path(report_path), required=not force)
    name = name or ((report or {}).get("model") or {}).get("name") or where.model_name
    if not name:
        raise UserError(MSG_NO_NAME)
    actual = loaded.sha256
    problems = admission_problems(report, name, actual)
    if problems and not force:
        raise UserError(MSG_NOT_ADMITTED.format(report=report_path, problem=problems[0]))
    forced = reason if problems else None
    who = current_actor()
    lineage = build_lineage(report if not problems else None, model_sha256=actual, model_format=loaded.format,
                            by=who, forced_reason=forced)
    from gates.registrar import add_files, registrable_file

    add_files(lineage, loaded)
    if problems:
        lineage["bypassed"] = problems
    verdict = str((report or {}).get("verdict", "none"))
    from gates.registry.base import Evidence

    with opened(where) as reg, registrable_file(loaded) as stored:
        got = reg.register(name, stored, format=loaded.format, lineage=lineage, by=who, verdict=verdict,
                           alias=alias, forced_reason=forced, expected_sha256=actual,
                           evidence=Evidence(loaded.estimator))
    out = {"registered": True, "backend": where.backend, "name": name, "version": got.version.version,
           "aliases": list(got.version.aliases), "already_registered": got.already_registered,
           "forced": forced is not None}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    again = " (already registered: same model bytes)" if got.already_registered else ""
    aliases = f"; aliases: {', '.join(got.version.aliases)}" if got.version.aliases else ""
    note = " [forced: audited]" if forced else ""
    click.echo(f"registered: {name} version {got.version.version}{again}{aliases}{note}")


def admission_problems(report: Mapping[str, Any] | None, name: str, sha256: str) -> list[str]:
    """Return why ``report`` does not admit these bytes as ``name`` (empty when it does)."""
    if report is None:
        return ["there is no report"]
    problems = []
    if report.get("verdict") != "pass":
        problems.append(MSG_REPORT_FAILED.format(verdict=report.get("verdict")))
    if (report.get("policy") or {}).get("mode") == "shadow":
        problems.append(MSG_REPORT_SHADOW)
    model = report.get("model") or {}
    if model.get("name") != name:
        problems.append(MSG_REPORT_OTHER_MODEL.format(got=model.get("name"), name=name))
    gated = (model.get("candidate") or {}).get("sha256")
    if gated != sha256:
        problems.append(MSG_REPORT_OTHER_BYTES.format(gated=gated, actual=sha256))
    return problems


def _read_report(path: Path, *, required: bool) -> dict[str, Any] | None:
    if not path.is_file():
        if required:
            raise UserError(MSG_NO_REPORT.format(path=path))
        return None
    return load_report(path)


def _load_for_register(path: Path, given: str | None, where: RegistryLocation, *,
                       outputs: Mapping[str, str] | None) -> LoadedModel:
    """Load the model to register by the rules a gate run loads it by: its format (said, or from the
    extension), its extra installed (:func:`gates.models.load_model` checks), and the policy's trust;
    every refusal names the file."""
    from gates.models import default_format, load_model

    if not path.exists():
        raise UserError(MSG_FILE_NOT_FOUND, location=str(path))
    from gates.models import AMBIGUOUS

    try:
        fmt = given or default_format(path)
    except ValueError as exc:
        ext = path.suffix.lower()
        message = MSG_AMBIGUOUS_FORMAT.format(ext=ext, example=AMBIGUOUS[ext]) if ext in AMBIGUOUS else str(exc)
        raise UserError(message, location=str(path)) from None
    if path.is_dir() and fmt != "mlflow":
        raise UserError(MSG_FOLDER_FORMAT.format(format=fmt), location=str(path))
    return load_model(path, fmt, trust=where.trust, role="registered", where=str(path), outputs=outputs)


# ------------------------------------------------------------------ promote, rollback


@click.command()
@click.argument("name")
@click.argument("version")
@click.option("--alias", required=True, help="The alias to move (e.g. production, staging).")
@click.option("--reason", help="Why (recorded in the audit log).")
@registry_options
def promote(name: str, version: str, alias: str, reason: str | None, config: str, registry_uri: str | None,
            backend: str | None) -> None:
    """Point ALIAS of model NAME at VERSION (audited)."""
    with opened(locate(config, registry_uri, backend)) as reg:
        move = reg.set_alias(name, check_alias(alias), check_version(version), by=current_actor(), reason=reason)
    if not move.moved:
        click.echo(f"{name}: {alias} already points at v{move.to_version}")
    else:
        was = f"v{move.from_version}" if move.from_version is not None else "unset"
        click.echo(f"{name}: {alias} {was} -> v{move.to_version}")


@click.command()
@click.argument("name")
@click.option("--alias", default="production", show_default=True, help="The alias to move back.")
@click.option("--reason", help="Why (recorded in the audit log).")
@registry_options
def rollback(name: str, alias: str, reason: str | None, config: str, registry_uri: str | None,
             backend: str | None) -> None:
    """Move ALIAS of model NAME back to the version that held it before (audited)."""
    with opened(locate(config, registry_uri, backend)) as reg:
        move = reg.rollback(name, check_alias(alias), by=current_actor(), reason=reason)
    click.echo(f"{name}: {alias} rolled back v{move.from_version} -> v{move.to_version}")


# ------------------------------------------------------------------ history, show


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the versions (or with --audit the events) as JSON.")
@click.option("--audit", is_flag=True, help="List every audit log event (gate runs, registrations, alias moves).")
@click.option("--events", default=10, show_default=True, help="How many recent events the table view shows.")
@registry_options
def history(name: str, as_json: bool, audit: bool, events: int, config: str, registry_uri: str | None,
            backend: str | None) -> None:
    """List NAME's versions with aliases, verdicts, who/when and CI links, and its recent audit events."""
    where = locate(config, registry_uri, backend)
    with opened(where) as reg:
        log = reg.audit_log(name)
        versions = _versions_if_any(reg, name, audited=bool(log))
    if as_json:
        data = [e.to_dict() for e in log] if audit else [v.summary() for v in versions]
        click.echo(json.dumps(data, indent=2))
        return
    from gates.registry.mlflow_client import redact  # stdlib-only module; mlflow itself is not imported

    click.echo(f"{name} in {redact(where.uri)} ({where.backend})\n")
    click.echo(version_table(versions) if versions else MSG_NO_VERSIONS)
    shown = log if audit else log[-events:]
    if shown:
        title = "audit log" if audit else f"recent events (newest last; --audit for all {len(log)})"
        click.echo(f"\n{title}:")
        click.echo(table(["#", "when", "event", "by", "details"], [event_row(e) for e in shown]))


def _versions_if_any(reg: RegistryBackend, name: str, *, audited: bool) -> list[ModelVersion]:
    """Return the versions; a model with only failed runs in the audit log has none (not an error)."""
    try:
        return reg.list_versions(name)
    except UserError:
        if audited:
            return []
        raise


def version_table(versions: Sequence[ModelVersion]) -> str:
    """Return the versions as a table, newest first."""
    rows = [[str(v.version), ",".join(v.aliases) or "-", v.verdict + (" (forced)" if v.lineage.get("forced") else ""),
             v.created_at, v.created_by, v.format or "-", v.model_sha256[:12], v.ci_url or "-"]
            for v in reversed(versions)]
    return table(["version", "aliases", "verdict", "registered", "by", "format", "sha256", "ci"], rows)


def event_row(e: AuditEvent) -> list[str]:
    """Return one audit event as a table row."""
    r = e.record
    if e.kind == "run":
        failing = r.get("failing") or []
        what = f"run {e.verdict}"
        detail = f"failing: {', '.join(failing)}" if failing else "all blocking checks passed"
        if r.get("registered_version"):
            detail += f"; {'already v' if r.get('already_registered') else 'registered v'}{r['registered_version']}"
        elif r.get("not_registered"):
            detail += f"; not registered: {r['not_registered']}"
        waived = [w["check"] for w in r.get("waivers", []) if w.get("used", True)]
        if waived:
            detail += f"; waived: {', '.join(waived)}"
    elif e.kind in ("register", "forced_register"):
        what = f"{'FORCED ' if e.kind == 'forced_register' else ''}register v{e.version}"
        detail = f"sha256 {str(r.get('model_sha256', ''))[:12]}"
        detail += f"; reason: {r['reason']}" if r.get("reason") else ""
    elif e.kind in ("alias", "rollback"):
        was = f"v{r['from_version']}" if r.get("from_version") is not None else "unset"
        what = f"{'rollback' if e.kind == 'rollback' else r.get('move', 'alias')} {e.alias}"
        detail = f"{was} -> v{e.version}" + (f"; reason: {r['reason']}" if r.get("reason") else "")
    else:
        what, detail = e.kind, json.dumps(dict(r), sort_keys=True)
    if e.ci_url:
        detail += f"  {e.ci_url}"
    return [str(e.seq), e.at, what, e.by, detail]


@click.command()
@click.argument("name")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="Print the full lineage record as JSON.")
@registry_options
def show(name: str, version: str, as_json: bool, config: str, registry_uri: str | None, backend: str | None) -> None:
    """Print the lineage of NAME's VERSION (a number or an alias such as production)."""
    with opened(locate(config, registry_uri, backend)) as reg:
        if is_version_ref(version):
            mv = reg.get_version(name, check_version(version))
        else:
            found = reg.resolve(name, check_alias(version))
            if found is None:
                reg.list_versions(name)  # an unknown model is reported as such, before the alias
                raise UserError(MSG_ALIAS_UNSET.format(name=name, alias=version))
            mv = found
    if as_json:
        click.echo(json.dumps(mv.record(), indent=2, sort_keys=False))
    else:
        click.echo(render_lineage(mv))


def render_lineage(mv: ModelVersion) -> str:
    """Return a version's lineage as labelled lines, metrics as a table."""
    lin = mv.lineage
    model = lin.get("model") or {}
    lines = [f"{mv.name} v{mv.version}" + (f"  (aliases: {', '.join(mv.aliases)})" if mv.aliases else "")]
    forced = f"  FORCED: {lin.get('forced_reason')}" if lin.get("forced") else ""
    fields = [
        ("verdict", f"{mv.verdict}{forced}"),
        ("registered", f"{mv.created_at} by {mv.created_by}"),
        ("model", f"sha256 {mv.model_sha256}  {mv.format}, {mv.size:,} bytes"
                  + (f" (archive of {len(model['files'])} files: {', '.join(model['files'])})"
                     if model.get("files") else "")
                  + (f", from {model['source']}" if model.get("source") else "")),
        *([("artifact", _artifact(model["artifact"]))] if "artifact" in model else []),
        ("baseline", _baseline(lin.get("baseline"))),
        ("data", _data(lin.get("data") or {})),
        ("policy", _policy(lin.get("policy") or {})),
        ("git commit", lin.get("git_sha") or "-"),
        ("CI run", lin.get("ci_url") or "-"),
        ("environment", ", ".join(f"{k} {v}" for k, v in (lin.get("environment") or {}).items()) or "-"),
        ("checks", ", ".join(f"{n} {s}" for s, n in (lin.get("summary") or {}).items() if n) or "-"),
    ]
    if mv.tags:
        fields.append(("tags", ", ".join(f"{k}={v}" for k, v in mv.tags.items())))
    lines += [f"  {label:<12} {value}" for label, value in fields]
    metrics = lin.get("metrics") or {}
    if metrics:
        lines += ["", table(["check", "observed"], [[k, _num(v)] for k, v in metrics.items()])]
    return "\n".join(lines)


def _baseline(block: Mapping[str, Any] | None) -> str:
    if not block:
        return "none (first model)"
    sha = f" sha256 {str(block.get('sha256'))[:12]}" if block.get("sha256") else ""
    return f"{block.get('uri')}{sha}"


def _artifact(art: Mapping[str, Any]) -> str:
    """Say what a per_example version is: its bundle (with sha256), a URI, or nothing beyond data and policy."""
    if not art.get("uri"):
        return "none: the eval data and the policy identify this version"
    sha = f", sha256 {art['sha256']}" if art.get("sha256") else " (remote: its bytes were not read)"
    return f"{art['uri']} ({art.get('format')}{sha})"


def _data(data: Mapping[str, Any]) -> str:
    parts = [f"{k}: {v.get('uri')} ({v.get('rows')} rows"
             + (f" in {v['clusters']} clusters of {v.get('cluster')}" if v.get("clusters") else "")
             + f", sha256 {str(v.get('sha256'))[:12]})"
             for k, v in data.items() if isinstance(v, Mapping)]
    return "; ".join(parts) or "-"


def _policy(policy: Mapping[str, Any]) -> str:
    if not policy:
        return "-"
    return f"{policy.get('path')} sha256 {str(policy.get('sha256'))[:12]}, mode {policy.get('mode')}, " \
           f"seed {policy.get('seed')}"


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a left-aligned text table (no colour, stable for logs)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [list(headers), *rows])


# ------------------------------------------------------------------ verify


@click.command()
@registry_options
def verify(config: str, registry_uri: str | None, backend: str | None) -> None:
    """Check the registry: index integrity, every model's sha256, alias targets, the audit log.

    Prints one line per problem and exits 3 when there is any, else says it is sound (exit 0).
    """
    from gates.registry.integrity import registry_problems
    from gates.registry.mlflow_client import redact

    where = locate(config, registry_uri, backend)
    if where.backend == "local" and not Path(where.uri).expanduser().is_dir():
        raise EnvironmentProblem(MSG_NO_LOCAL_REGISTRY.format(path=where.uri))
    try:
        with opened(where) as reg:
            problems = registry_problems(reg)
    except EnvironmentProblem as exc:
        problems = [str(exc)]
    for line in problems:
        click.echo(f"{redact(where.uri)}: {line}")
    if problems:
        raise click.exceptions.Exit(3)
    click.echo(f"{redact(where.uri)}: sound ({where.backend} registry)")


COMMANDS = [register, promote, rollback, history, show, verify]
