"""What a registration run stores in MLflow: the model folder, the reports and the checks' metrics.

The run's artifact ``model/`` is the model version's source. It holds MLflow's sklearn flavour
(``MLmodel``, the pickled estimator, a signature inferred from the eval data's feature columns),
so ``mlflow.pyfunc.load_model("models:/NAME@production")`` works for serving, and beside it
``model_gates/model.<format>``, the exact bytes that were gated: those are what a baseline is
loaded from, checked against ``model_gates.model_sha256``. The flavour is a convenience: when it
cannot be made (bytes that are not a scikit-learn model, a pickle nobody vouched for) the version
still holds the exact bytes and says why in ``model_gates.flavor_note``. The run's
``model_gates/report.json`` and ``report.md`` are the verdict that admitted the model.
"""
from __future__ import annotations

import hashlib
import math
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gates.errors import UserError
from gates.registry.base import Evidence
from gates.registry.mlflow_records import TAG_FLAVOR, TAG_FLAVOR_NOTE

MODEL_DIR = "model"
REPORTS_DIR = "model_gates"
SIGNATURE_OUTPUT_ROWS = 200

NOTE_PICKLE = "no flavour: a pickle-based file is loaded only by a gate run whose policy trusts it"
NOTE_NOT_A_MODEL = "no flavour: {problem}"
NOTE_ARTIFACT = "no flavour: a per_example version (prompt, config or bundle) is kept as its exact bytes"
#: formats of per_example versions (gates.artifacts): never a model object
ARTIFACT_FORMATS = frozenset({"artifact", "tar", "manifest"})
NOTE_FLAVOUR_FAILED = "no flavour: mlflow.sklearn could not save the model: {problem}"
NOTE_NO_SIGNATURE = "no signature: registered without a gate run's eval data"

_METRIC_KEY = re.compile(r"[^\w.\- /:]")


def bytes_path(format: str) -> str:
    """Return where the exact model bytes are inside the model folder."""
    return f"model_gates/model.{format}"


def write_model_folder(folder: Path, staged: Path, format: str, sha256: str, evidence: Evidence | None
                       ) -> dict[str, str]:
    """Write the model version's folder (flavour when possible, exact bytes always); return the flavour tags."""
    estimator, note = _estimator(staged, format, evidence)
    flavour = "none"
    if estimator is not None:
        inputs = evidence.inputs if evidence is not None else None
        problem = _save_flavour(folder, estimator, inputs, {"model_sha256": sha256, "format": format})
        flavour, note = ("sklearn", None if inputs is not None else NOTE_NO_SIGNATURE) if problem is None \
            else ("none", problem)
    target = folder / bytes_path(format)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(staged, target)
    tags = {TAG_FLAVOR: flavour}
    if note:
        tags[TAG_FLAVOR_NOTE] = note[:1000]
    return tags


def _estimator(staged: Path, format: str, evidence: Evidence | None) -> tuple[Any, str | None]:
    """Return the model object (from the gate run, or a .skops file of only safe types) or why there is none."""
    if evidence is not None and evidence.estimator is not None:
        return evidence.estimator, None
    if format in ARTIFACT_FORMATS:
        return None, NOTE_ARTIFACT
    if format != "skops":
        return None, NOTE_PICKLE
    from gates.loading import load_model

    try:
        return load_model(staged).estimator, None
    except UserError as exc:
        return None, NOTE_NOT_A_MODEL.format(problem=exc.message)


def _save_flavour(folder: Path, estimator: Any, inputs: Any, meta: Mapping[str, str]) -> str | None:
    """Save MLflow's sklearn flavour into ``folder``; return None, or why it could not be saved.

    The flavour is serialised with skops where MLflow supports it (safe to load), trusting exactly
    the estimator's own types: the policy trusted them when the gate run loaded the model.
    """
    import mlflow.sklearn

    skops = getattr(mlflow.sklearn, "SERIALIZATION_FORMAT_SKOPS", None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            extra = {"serialization_format": skops, "skops_trusted_types": _skops_types(estimator),
                     "pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_skops=True)} if skops \
                else {"pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True)}
            mlflow.sklearn.save_model(estimator, str(folder), signature=_signature(estimator, inputs),
                                      metadata={"model_gates": dict(meta)}, **extra)
    except Exception as exc:  # noqa: BLE001 -- the flavour is a convenience; the exact bytes are the model
        shutil.rmtree(folder, ignore_errors=True)
        return NOTE_FLAVOUR_FAILED.format(problem=_first_line(exc))
    return None


def _skops_types(estimator: Any) -> list[str]:
    """Return the types skops would refuse to load from this estimator without being told to trust them."""
    import skops.io as sio

    return list(sio.get_untrusted_types(data=sio.dumps(estimator)))


def _signature(estimator: Any, inputs: Any) -> Any:
    """Return the signature inferred from the eval data's features and the model's outputs on a few rows."""
    if inputs is None:
        return None
    from mlflow.models import infer_signature

    return infer_signature(inputs, estimator.predict(inputs.head(SIGNATURE_OUTPUT_ROWS)))


def write_reports(folder: Path, report: Mapping[str, Any]) -> tuple[str, str]:
    """Write report.json (and report.md for a real report) into ``folder``; return (report.json's name, sha256)."""
    from gates.reporters.json_report import dumps

    folder.mkdir(parents=True, exist_ok=True)
    text = dumps(report)
    (folder / "report.json").write_text(text, encoding="utf-8")
    if report.get("checks") is not None:
        from gates.reporters.markdown import render_markdown

        (folder / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return "report.json", hashlib.sha256(text.encode()).hexdigest()


def run_metrics(lineage: Mapping[str, Any]) -> dict[str, float]:
    """Return the checks' observed values as MLflow metrics (keys cleaned to what MLflow accepts)."""
    out: dict[str, float] = {}
    for check_id, value in (lineage.get("metrics") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.setdefault(_METRIC_KEY.sub("_", str(check_id))[:250], float(value))
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
