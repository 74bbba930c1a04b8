"""report.json: the canonical output every other format is rendered from (DESIGN section 6)."""
from __future__ import annotations

import json
import math
import platform
import subprocess
import uuid
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

import gates
from gates.errors import UserError
from gates.results import CheckResult
from gates.runner import RunResult

SCHEMA_VERSION = 1
MSG_NOT_A_REPORT = "not a model-gates report.json: {problem}"


def build_report(result: RunResult, *, ci: Mapping[str, Any] | None = None,
                 registration: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the report as plain JSON-able data, in the documented key order.

    Everything except the ``run`` block is a function of the inputs and the seed.
    """
    ctx, policy = result.context, result.policy
    check_ids = {c.id for c in result.verdict.checks}
    candidate = ctx.model_info("candidate")
    baseline = ctx.model_info("baseline")
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "model-gates", "version": gates.__version__},
        "run": {
            "id": uuid.uuid4().hex,
            "started_at": result.started_at.isoformat(timespec="seconds"),
            "finished_at": result.finished_at.isoformat(timespec="seconds"),
            "git_sha": (ci or {}).get("sha") or git_sha(policy.base_dir),
            "ci": dict(ci or {}),
            "environment": environment_versions(),
            "engine": dict(result.engine),
        },
        "policy": {"path": policy.path.name, "sha256": policy.sha256, "mode": policy.mode,
                   "seed": policy.seed},
        "model": {
            "name": policy.model.name,
            "task": policy.model.task,
            "candidate": _model_block(candidate, policy.base_dir),
            "baseline": _model_block(baseline, policy.base_dir) if baseline else None,
        },
        "data": {k: {**v, "uri": _rel(v["uri"], policy.base_dir)} for k, v in ctx.data_info.items()},
        "verdict": result.verdict.value,
        "summary": result.verdict.counts(),
        "checks": [check_to_dict(c) for c in result.verdict.checks],
        "waivers": [
            {"check": w.check, "reason": w.reason, "by": w.by, "source": w.source,
             "expires": w.expires.isoformat() if w.expires else None,
             "used": w not in result.unused_waivers, "matched": w.check in check_ids}
            for w in result.waivers
        ],
        "registration": dict(registration) if registration else {"registered": False},
        **({"curves": jsonable(result.curves)} if result.curves else {}),
    }


def _model_block(info: Any, base: Path) -> dict[str, Any] | None:
    if info is None:
        return None
    block: dict[str, Any] = {"uri": _rel(info.uri, base), "sha256": info.sha256, "format": info.format}
    if info.version is not None:
        block["version"] = info.version
    if info.scores:
        block["scores"] = dict(info.scores)
    if getattr(info, "run_id", None):
        block["run_id"] = info.run_id
    return block


def _rel(uri: str, base: Path) -> str:
    """Show paths relative to the config's folder, so reports do not depend on the checkout path."""
    try:
        return str(Path(uri).resolve().relative_to(base.resolve()))
    except (ValueError, OSError):
        return uri


def check_to_dict(c: CheckResult) -> dict[str, Any]:
    """Return one check in report form; optional fields are left out when unset."""
    out: dict[str, Any] = {"id": c.id, "gate": c.gate, **c.key.as_dict(), "status": c.status.value,
                           "blocking": c.blocking, "observed": _num(c.observed), "baseline": _num(c.baseline)}
    if c.delta is not None:
        out["delta"] = _num(c.delta)
    out["threshold"] = jsonable(c.threshold)
    if c.ci is not None:
        out["ci"] = [_num(c.ci[0]), _num(c.ci[1])]
    for key in ("ci_method", "half_width", "confidence", "adjusted_confidence"):
        value = getattr(c, key)
        if value is not None:
            out[key] = _num(value) if isinstance(value, float) else value
    out["message"] = c.message
    if c.reason:
        out["reason"] = str(getattr(c.reason, "value", c.reason))  # plain text: xdist ships report form
    out["details"] = jsonable(c.details)
    if c.waiver is not None:
        out["waiver"] = jsonable(c.waiver)
    return out


def _num(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    f = float(x)
    return f if math.isfinite(f) else None


def jsonable(value: Any) -> Any:
    """Return ``value`` with numpy scalars/arrays, tuples and non-finite floats made JSON-safe."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, int, np.integer, np.floating, np.bool_)) and not isinstance(value, bool):
        return _num(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(report: Mapping[str, Any]) -> str:
    """Serialise a report deterministically (2-space indent, no NaN)."""
    return json.dumps(jsonable(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


@lru_cache(maxsize=1)
def report_schema() -> dict[str, Any]:
    text = resources.files("gates").joinpath("schemas", "report.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def load_report(path: Path) -> dict[str, Any]:
    """Read and validate a report.json; raise UserError naming the file when it is not one."""
    import jsonschema

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("file not found", location=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(MSG_NOT_A_REPORT.format(problem=str(exc).splitlines()[0]), location=str(path)) from None
    err = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(report_schema()).iter_errors(data))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "top level"
        raise UserError(MSG_NOT_A_REPORT.format(problem=f"{where}: {err.message}"), location=str(path))
    return data


@lru_cache(maxsize=4)
def git_sha(folder: Path) -> str | None:
    """Return the commit being gated: CI's variables first, else ``git rev-parse HEAD``."""
    import os

    for var in ("MODEL_GATES_GIT_SHA", "CI_COMMIT_SHA", "GITHUB_SHA"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment_versions() -> dict[str, str]:
    """Return Python's and the key packages' versions (for lineage)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("model-gates", "numpy", "pandas", "scikit-learn", "scipy", "skops"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out
