"""What a registration run stores in MLflow: the model folder, the reports and the checks' metrics.

The run's artifact ``model/`` is the model version's source. It holds the MLflow flavour that
matches the model's format, made with MLflow's own flavour API, so
``mlflow.pyfunc.load_model("models:/NAME@production")`` works for serving:

===================  ==========================================================================
format               flavour logged
===================  ==========================================================================
skops, pickle        ``mlflow.sklearn``, serialised with skops (the estimator's own types trusted)
xgboost              ``mlflow.xgboost``, the Booster saved by xgboost as ``model.ubj``
lightgbm             ``mlflow.lightgbm``, the Booster saved by LightGBM as text (``model.lgb``)
onnx                 ``mlflow.onnx``, the graph with its external data
mlflow               the flavour of the library object the folder loaded into (above)
===================  ==========================================================================

Beside it ``model_gates/model.<format>`` holds the exact bytes that were gated (a multi-file
model's deterministic archive): those are what a baseline is loaded from, checked against
``model_gates.model_sha256``. The flavour is a convenience: when it cannot be made (bytes that
are not a model of their format, a pickle nobody vouched for) the version still holds the exact
bytes and says why in ``model_gates.flavor_note``. The run's ``model_gates/report.json`` and
``report.md`` are the verdict that admitted the model.
"""
from __future__ import annotations

import hashlib
import importlib
import math
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gates.errors import UserError, first_line
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
NOTE_FLAVOUR_FAILED = "no flavour: mlflow.{flavour} could not save the model: {problem}"
NOTE_NO_FLAVOUR = "no flavour: MLflow has no flavour for this {what}"
#: the flavour each library's own model format is logged as
NATIVE_FLAVOURS = {"xgboost": "xgboost", "lightgbm": "lightgbm", "onnx": "onnx"}
NOTE_NO_SIGNATURE = "no signature: registered without a gate run's eval data"

_METRIC_KEY = re.compile(r"[^\w.\- /:]")
#: MLflow's longest metric key
_METRIC_KEY_MAX = 250


def bytes_path(format: str) -> str:
    """Return where the exact model bytes are inside the model folder."""
    return f"model_gates/model.{format}"


def write_model_folder(folder: Path, staged: Path, format: str, sha256: str, evidence: Evidence | None,
                       entry: str | None = None) -> dict[str, str]:
    """Write the model version's folder (flavour when possible, exact bytes always); return the flavour tags.

    ``entry`` is what the lineage records as the model inside a multi-file model's archive.
    """
    flavour, model, note, options = _flavour_model(staged, format, evidence, entry)
    if model is not None:
        inputs = evidence.inputs if evidence is not None else None
        problem = _save_flavour(folder, flavour, model, inputs, {"model_sha256": sha256, "format": format}, options)
        if problem is None:
            note = None if inputs is not None else NOTE_NO_SIGNATURE
        else:
            flavour, note = "none", problem
    target = folder / bytes_path(format)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(staged, target)
    tags = {TAG_FLAVOR: flavour}
    if note:
        tags[TAG_FLAVOR_NOTE] = note[:1000]
    return tags


def _flavour_model(staged: Path, format: str, evidence: Evidence | None, entry: str | None
                   ) -> tuple[str, Any, str | None, dict[str, Any]]:
    """Return (flavour, the object MLflow's flavour API saves, None, its save options) or ("none", None,
    why there is none, {}).

    The native formats are read from the gated bytes by their own library (never unpickled); an
    MLflow model folder is logged by the flavour of the object it loaded into in the gate run.
    """
    native = evidence.estimator if evidence is not None else None
    if format in ARTIFACT_FORMATS:
        return "none", None, NOTE_ARTIFACT, {}
    try:
        if format in NATIVE_FLAVOURS:
            model, options = _read_native(staged, format, entry)
            return NATIVE_FLAVOURS[format], model, None, options
    except Exception as exc:  # noqa: BLE001 -- bytes that are not a model: kept as bytes, said why
        return "none", None, NOTE_NOT_A_MODEL.format(problem=first_line(exc, 300)), {}
    if format == "mlflow":
        flavour = _flavour_of(native)
        if flavour is None or flavour == "onnx":
            return "none", None, NOTE_NO_FLAVOUR.format(what=f"{type(native).__name__} object"), {}
        return flavour, native, None, {}
    estimator, note = _estimator(staged, format, evidence)
    return ("sklearn", estimator, None, {}) if estimator is not None else ("none", None, note, {})


def _read_native(staged: Path, format: str, entry: str | None) -> tuple[Any, dict[str, Any]]:
    """Return the xgboost/LightGBM Booster or ONNX graph in the gated bytes, read by its own library,
    with the options its flavour is saved with."""
    if format == "xgboost":
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(staged.read_bytes()))
        return booster, {}
    if format == "lightgbm":
        import lightgbm

        return lightgbm.Booster(model_file=str(staged)), {}
    return _read_onnx(staged, entry)


def _read_onnx(staged: Path, entry: str | None) -> tuple[Any, dict[str, Any]]:
    """Return the ONNX graph with its external data loaded (from the archive of a multi-file model, at the
    recorded ``entry``), and ``save_as_external_data`` when the gated graph kept its data beside it."""
    import onnx

    from gates.models.bundle import extract_archive, is_archive, scratch_folder
    from gates.models.onnx import check_external_data
    from gates.models.registered import entry_path

    path = staged
    if is_archive(staged):
        path = entry_path(extract_archive(staged, scratch_folder("model-gates-flavour-") / "model"), "onnx", entry)
    model = onnx.load(str(path), load_external_data=False)
    external = bool(check_external_data(model, path, str(path)))  # known only before the data is loaded
    if external:
        onnx.load_external_data_for_model(model, str(path.parent))
    return model, {"save_as_external_data": external}


def _flavour_of(native: Any) -> str | None:
    """Return the flavour of a library object (what an MLflow model folder loaded into), None if none fits."""
    module = type(native).__module__.split(".")[0]
    name = type(native).__name__
    if module == "xgboost" and name == "Booster":
        return "xgboost"
    if module == "lightgbm" and name == "Booster":
        return "lightgbm"
    if module == "onnxruntime":
        return "onnx"
    return "sklearn" if hasattr(native, "predict") and module != "mlflow" else None


def _estimator(staged: Path, format: str, evidence: Evidence | None) -> tuple[Any, str | None]:
    """Return the model object (from the gate run, or a .skops file of only safe types) or why there is none."""
    if evidence is not None and evidence.estimator is not None:
        return evidence.estimator, None
    if format != "skops":
        return None, NOTE_PICKLE
    from gates.loading import load_model

    try:
        return load_model(staged).estimator, None
    except UserError as exc:
        return None, NOTE_NOT_A_MODEL.format(problem=exc.message)


def _save_flavour(folder: Path, flavour: str, model: Any, inputs: Any, meta: Mapping[str, str],
                  options: Mapping[str, Any]) -> str | None:
    """Save MLflow's ``flavour`` of ``model`` into ``folder``; return None, or why it could not be saved.

    sklearn is serialised with skops where MLflow supports it (safe to load), trusting exactly the
    estimator's own types: the policy trusted them when the model was loaded. The boosters and ONNX
    graphs are saved by their own libraries' formats; requirements are given, never inferred.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if flavour == "sklearn":
                _save_sklearn(folder, model, inputs, meta)
            else:
                module = importlib.import_module(f"mlflow.{flavour}")
                module.save_model(model, str(folder), signature=_signature(None, inputs),
                                  metadata={"model_gates": dict(meta)},
                                  pip_requirements=module.get_default_pip_requirements(), **options)
    except Exception as exc:  # noqa: BLE001 -- the flavour is a convenience; the exact bytes are the model
        shutil.rmtree(folder, ignore_errors=True)
        return NOTE_FLAVOUR_FAILED.format(flavour=flavour, problem=first_line(exc, 300))
    return None


def _save_sklearn(folder: Path, estimator: Any, inputs: Any, meta: Mapping[str, str]) -> None:
    import mlflow.sklearn

    skops = getattr(mlflow.sklearn, "SERIALIZATION_FORMAT_SKOPS", None)
    extra = {"serialization_format": skops, "skops_trusted_types": _skops_types(estimator),
             "pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_skops=True)} if skops \
        else {"pip_requirements": mlflow.sklearn.get_default_pip_requirements(include_cloudpickle=True)}
    mlflow.sklearn.save_model(estimator, str(folder), signature=_signature(estimator, inputs),
                              metadata={"model_gates": dict(meta)}, **extra)


def _skops_types(estimator: Any) -> list[str]:
    """Return the types skops would refuse to load from this estimator without being told to trust them."""
    import skops.io as sio

    return list(sio.get_untrusted_types(data=sio.dumps(estimator)))


def _signature(estimator: Any, inputs: Any) -> Any:
    """Return the signature inferred from the eval data's features (and a scikit-learn model's outputs
    on a few rows; other libraries' outputs are not inferred)."""
    if inputs is None:
        return None
    from mlflow.models import infer_signature

    if estimator is None:
        return infer_signature(inputs)
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
    """Return the checks' observed values as MLflow metrics, one key per check id.

    An id MLflow accepts as it is keeps its text. Another is cleaned (refused characters become
    ``_``, cut to fit) and gets ``.`` plus the first hex digits of its sha256, so two ids that clean
    alike (``max[a b]`` and ``max[a_b]``) never share a key and one value is never dropped; a key
    that still meets one already taken gets more digits.
    """
    out: dict[str, float] = {}
    for check_id, value in (lineage.get("metrics") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[_metric_key(str(check_id), out)] = float(value)
    return out


def _metric_key(check_id: str, taken: Mapping[str, float]) -> str:
    if len(check_id) <= _METRIC_KEY_MAX and not _METRIC_KEY.search(check_id) and check_id not in taken:
        return check_id
    digest = hashlib.sha256(check_id.encode()).hexdigest()
    for width in range(8, len(digest) + 1, 8):
        key = f"{_METRIC_KEY.sub('_', check_id)[:_METRIC_KEY_MAX - width - 1]}.{digest[:width]}"
        if key not in taken:
            return key
    raise ValueError(f"check id {check_id!r} appears twice in the lineage metrics")
