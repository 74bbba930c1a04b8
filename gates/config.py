"""Load gates.yaml: parse, interpolate ``${VAR}``, validate against the shipped schema, build a Policy.

Every error is a :class:`~gates.errors.UserError` whose location is ``FILE:LINE`` and whose
message starts with the dotted key path, e.g.
``gates.yaml:14: gates.regression.metrics.roc_auc: unknown threshold 'max_dorp' (did you mean 'max_drop'?)``.
YAML node marks (``yaml.compose``) give the line of every key and list item.
"""
from __future__ import annotations

import datetime as dt
import difflib
import getpass
import hashlib
import json
import math
import os
import re
from dataclasses import replace
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gates.checks import GateSetup, gate_registry
from gates.errors import UserError, first_line as _first_line
from gates.models.trust import MSG_PICKLE
from gates.policy import (
    DEFAULT_ALIAS_ON_PASS,
    DEFAULT_REGISTRY_URI,
    DEFAULT_SEED,
    DataSpec,
    EngineSpec,
    KeyPath,
    ModelSource,
    ModelSpec,
    Policy,
    RegistrySpec,
    Waiver,
)

MSG_NOT_FOUND = "config file not found"
MSG_YAML = "invalid YAML: {problem}"
MSG_NOT_MAPPING = "expected a mapping at the top level"
MSG_DUPLICATE_KEY = "duplicate key '{key}'"
MSG_UNKNOWN_KEY = "unknown {what} '{key}'{hint}"
MSG_MISSING_KEY = "missing required key '{key}'"
MSG_EXPECTED = "expected {expected}, got {got}"
MSG_UNSET_VAR = "environment variable '{var}' is not set"
MSG_MISSING_FILE = "file not found: {path}"
MSG_MIXED_SOURCE = ("a model source is prediction columns ({columns}) or a model ({model}), not both: "
                    "use predictions/scores, or path/uri with format, features and outputs")
MSG_PATH_OR_URI = "a model mapping needs exactly one of path (a model file) or uri (models:/..., runs:/...)"
MSG_URI_FORMAT = "a models:/ or runs:/ uri is an MLflow model: format must be mlflow (or left out), got {format!r}"
MSG_OUTPUTS_ONNX = "outputs names an ONNX graph's outputs, but this model's format is {format}"
MSG_FEATURE_TARGET = "the target column '{col}' cannot be one of the model's features"
MSG_BASELINE = "expected registry:<alias>, registry:<version>, none, a model file or prediction columns, got {got!r}"
MSG_VACUOUS = (
    "the policy has no blocking check, so it would pass every candidate; add a check with "
    "severity: block or set mode: shadow"
)
MSG_WAIVER_EXPIRED = "waiver for '{check}' expired on {date}"
MSG_BAD_DATE = "expected a date YYYY-MM-DD, got {got!r}"
MSG_SENSITIVE_TARGET = "the target column '{col}' cannot also be a model feature"
MSG_PER_EXAMPLE_SOURCE = (
    "a per_example {role} is its per-row score columns: {{scores: {{NAME: COLUMN, ...}}}}{extra}"
)
MSG_PER_EXAMPLE_REGISTRY = ", with registry: ALIAS when they are the scores of a registered version"
MSG_SCORE_NAMES = "the baseline's score names must match the candidate's: {problem}"
MSG_NAMED_SCORES_TASK = "named scores ({{NAME: COLUMN}}) and registry: need task: per_example"
MSG_ARTIFACT_TASK = "model.artifact applies to task: per_example (a model file is the candidate itself)"
MSG_NEEDS_TARGET = "missing required key 'target'"
PER_EXAMPLE = "per_example"
MSG_NOT_FINITE = "expected a finite number, got {got}"
MSG_ALIAS_BOMB = "YAML aliases expand to more than {limit:,} values; write the values out instead"
MSG_ALIAS_CYCLE = "YAML alias refers to a value that contains it (a cycle)"
MSG_EMPTY_URI = "expected a registry folder or tracking URI, got an empty value"
MSG_NOT_A_FILE = "expected a model file, got {what}: {path}"
MSG_UNRESOLVABLE = "cannot resolve {path}: {problem}"

#: most values a gates.yaml may hold once its aliases are expanded (real policies hold a few hundred)
MAX_YAML_VALUES = 100_000

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
COLUMN_KEYS = ("predictions", "scores", "registry")
MODEL_KEYS = ("path", "uri", "format", "features", "outputs")
CLI_SOURCE = "command line"
#: gates that re-score the candidate, so a prediction-column candidate skips all their checks
NEEDS_MODEL_OBJECT = frozenset({"robustness"})
MODEL_SUFFIXES = (".skops", *PICKLE_SUFFIXES)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TYPE_NAMES = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


@lru_cache(maxsize=1)
def policy_schema() -> dict[str, Any]:
    """Return the full JSON Schema of gates.yaml, with every gate's section filled in."""
    schema = _read_schema("policy.schema.json")
    props = schema["properties"]["gates"]["properties"]
    for name, gate in gate_registry().items():
        props[name] = gate.schema()
    return schema


@lru_cache(maxsize=1)
def policy_validator() -> jsonschema.Draft7Validator:
    """Return the validator of :func:`policy_schema`, its ``$ref`` targets indexed once.

    A validator left to find references on its own walks the whole schema again at every
    ``$ref`` it follows (~40 ms for one policy); the registry here has walked it once.
    """
    from referencing import Registry
    from referencing.jsonschema import DRAFT7

    schema = policy_schema()
    registry: Registry[Any] = Registry().with_resource("", DRAFT7.create_resource(schema)).crawl()
    return jsonschema.Draft7Validator(schema, registry=registry)


def _read_schema(name: str) -> dict[str, Any]:
    text = resources.files("gates").joinpath("schemas", name).read_text(encoding="utf-8")
    return json.loads(text)


def load_policy(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None,
                today: dt.date | None = None) -> Policy:
    """Load and validate a policy file.

    Parameters
    ----------
    path : the gates.yaml to read.
    env : variables for ``${VAR}`` interpolation (default: ``os.environ``).
    today : the date waivers are checked against (default: today, UTC).

    Returns
    -------
    Policy
        Raises :class:`UserError` naming file, line and key on any problem.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(MSG_NOT_FOUND, location=str(file)) from None
    doc = _Document(file, raw.decode("utf-8", errors="replace"))
    data = doc.interpolate(env if env is not None else os.environ)
    doc.validate(data)
    policy = _build_policy(doc, data, hashlib.sha256(raw).hexdigest())
    return _check_semantics(doc, policy, today or dt.datetime.now(dt.timezone.utc).date())


class _Document:
    """A YAML file with its parsed data and the line of every key path."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.lines: dict[KeyPath, int] = {}
        #: key paths of unquoted scalars: a whole ``${VAR}`` there is read as YAML (``true``, ``3``)
        self.plain: set[KeyPath] = set()
        node, self.data = load_yaml(text, file.name)
        if not isinstance(self.data, dict):
            raise UserError(MSG_NOT_MAPPING, location=f"{file.name}:1")
        self._index(node, ())

    def _index(self, node: yaml.Node, path: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for knode, vnode in node.value:
                key = knode.value
                if key in seen:
                    raise UserError(
                        _at(path + (key,), MSG_DUPLICATE_KEY.format(key=key)),
                        location=f"{self.file.name}:{knode.start_mark.line + 1}",
                    )
                seen.add(key)
                self.lines[path + (key,)] = knode.start_mark.line + 1
                self._index(vnode, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[path + (i,)] = item.start_mark.line + 1
                self._index(item, path + (i,))
        elif isinstance(node, yaml.ScalarNode) and node.style is None:
            self.plain.add(path)

    def where(self, path: Sequence[str | int]) -> str:
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return f"{self.file.name}:{line}"
        return f"{self.file.name}:1"

    def error(self, path: Sequence[str | int], message: str) -> UserError:
        return UserError(_at(path, message), location=self.where(path))

    def interpolate(self, env: Mapping[str, str]) -> Any:
        def sub(value: Any, path: KeyPath) -> Any:
            if isinstance(value, dict):
                return {k: sub(v, path + (k,)) for k, v in value.items()}
            if isinstance(value, list):
                return [sub(v, path + (i,)) for i, v in enumerate(value)]
            if isinstance(value, (dt.date, dt.datetime)):
                return value.isoformat()
            if isinstance(value, str) and "${" in value:
                whole = _VAR.fullmatch(value)
                if whole is not None and path in self.plain:
                    return _scalar(self._lookup(whole, env, path))
                return _VAR.sub(lambda m: self._lookup(m, env, path), value)
            return value

        return sub(self.data, ())

    def _lookup(self, match: re.Match[str], env: Mapping[str, str], path: KeyPath) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise self.error(path, MSG_UNSET_VAR.format(var=name))

    def validate(self, data: Any) -> None:
        self._check_finite(data, ())
        validator = policy_validator()
        errors = [_deepest(e) for e in validator.iter_errors(data)]
        if not errors:
            return
        located = [(self._error_path(e), e) for e in errors]
        located.sort(key=lambda pe: (self._line_of(pe[0]), len(pe[0])))
        path, err = located[0]
        raise self.error(path, _describe(err, path))

    def _check_finite(self, value: Any, path: KeyPath) -> None:
        """Every number in a policy is finite: ``.nan`` compares false with any threshold, ``.inf`` passes all."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(path, MSG_NOT_FINITE.format(got=_yaml_float(value)))
        if isinstance(value, dict):
            for k, v in value.items():
                self._check_finite(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._check_finite(v, path + (i,))

    def _error_path(self, err: jsonschema.ValidationError) -> KeyPath:
        path = tuple(err.absolute_path)
        extra = _extra_keys(err)
        if extra:
            return path + (extra[0],)
        return path

    def _line_of(self, path: KeyPath) -> int:
        loc = self.where(path)
        return int(loc.rsplit(":", 1)[1])


def load_yaml(text: str, name: str) -> tuple[yaml.Node | None, Any]:
    """Return (node graph, data) of a YAML text, refusing alias cycles and alias bombs.

    An alias is a reference, so a few hundred bytes can stand for billions of values (or for a
    value that contains itself); the node graph is walked once, with aliases expanded, before
    anything is built from it, and the walk stops at :data:`MAX_YAML_VALUES`.
    Errors are UserErrors located at ``name:LINE``.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_expansion(node, name)
        return node, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = f"{name}:{mark.line + 1}" if mark else name
        raise UserError(MSG_YAML.format(problem=problem), location=line) from None


def _check_expansion(root: yaml.Node | None, name: str) -> None:
    """Raise UserError if ``root`` holds a cycle or expands past MAX_YAML_VALUES values."""
    count = 0
    # depth-first and iterative (no recursion limit): (node, line of the key that holds it, its ancestors)
    stack: list[tuple[yaml.Node, int, frozenset[int]]] = [(root, 1, frozenset())] if root is not None else []
    while stack:
        node, line, above = stack.pop()
        count += 1
        if count > MAX_YAML_VALUES:
            raise UserError(MSG_ALIAS_BOMB.format(limit=MAX_YAML_VALUES), location=f"{name}:{line}")
        if id(node) in above:
            raise UserError(MSG_ALIAS_CYCLE, location=f"{name}:{line}")
        inside = above | {id(node)}
        if isinstance(node, yaml.MappingNode):
            for knode, vnode in node.value:
                stack.append((knode, knode.start_mark.line + 1, inside))
                stack.append((vnode, knode.start_mark.line + 1, inside))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, line, inside) for item in node.value)


def _scalar(text: str) -> Any:
    """Return ``text`` read as a YAML scalar (``true``, ``3``, ``0.5``, ``null``); anything else stays a string."""
    if not text.strip():
        return text
    try:
        _, value = load_yaml(text, "environment")  # refuses alias bombs, like the file itself
    except UserError:
        return text
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value if value is None or isinstance(value, (bool, int, float, str)) else text


def _at(path: Sequence[str | int], message: str) -> str:
    return f"{_dotted(path)}: {message}" if path else message


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _deepest(err: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Descend into oneOf/anyOf to the alternative that fits the value best, for a precise message.

    Alternatives of another type than the value are left out (a mapping is not judged as a
    string); of those left, the one with the fewest problems wins (an unknown key names that key).
    """
    while err.context:
        best = _closest_alternative(err)
        if best is None or len(best.absolute_path) < len(err.absolute_path):
            break
        err = best
    return err


def _closest_alternative(err: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """Return the most telling error of the alternative closest to the value, or None when none is of its type."""
    by_alternative: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in err.context or ():
        key = sub.relative_schema_path[0] if sub.relative_schema_path else None
        by_alternative.setdefault(key, []).append(sub)
    depth = len(err.absolute_path)
    fitting = [errs for errs in by_alternative.values()
               if not any(e.validator == "type" and len(e.absolute_path) == depth for e in errs)]
    if not fitting:
        return None
    closest = min(fitting, key=lambda errs: sum(max(1, len(_extra_keys(e))) for e in errs))
    return jsonschema.exceptions.best_match(closest)


def _extra_keys(err: jsonschema.ValidationError) -> list[str]:
    if err.validator != "additionalProperties" or not isinstance(err.instance, dict):
        return []
    allowed = set(err.schema.get("properties", {}))
    return sorted(k for k in err.instance if k not in allowed)


def _describe(err: jsonschema.ValidationError, path: KeyPath) -> str:
    """Say what was expected, in the words of the failed keyword."""
    kind, schema, got = err.validator, err.schema, err.instance
    if kind == "additionalProperties":
        key = str(path[-1])
        allowed = sorted(schema.get("properties", {}))
        what = "threshold" if len(path) >= 3 and path[-3] == "metrics" else "key"
        return MSG_UNKNOWN_KEY.format(what=what, key=key, hint=_did_you_mean(key, allowed))
    if kind == "required":
        missing = [k for k in err.validator_value if k not in got]
        return MSG_MISSING_KEY.format(key=missing[0])
    if kind == "type":
        return MSG_EXPECTED.format(expected=_type_phrase(err.validator_value), got=_show(got))
    if kind == "enum":
        options = ", ".join(str(v) for v in err.validator_value)
        hint = _did_you_mean(str(got), [str(v) for v in err.validator_value])
        return MSG_EXPECTED.format(expected=f"one of {options}", got=_show(got)) + hint
    if kind == "const":
        return MSG_EXPECTED.format(expected=_show(err.validator_value), got=_show(got))
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return MSG_EXPECTED.format(expected=f"a number {op} {err.validator_value}", got=_show(got))
    if kind in ("minItems", "minProperties", "minLength"):
        return MSG_EXPECTED.format(expected=f"at least {err.validator_value} item(s)", got=_show(got))
    if kind == "pattern":
        return MSG_EXPECTED.format(expected=f"a value matching {err.validator_value}", got=_show(got))
    if kind == "uniqueItems":
        return MSG_EXPECTED.format(expected="a list without duplicates", got=_show(got))
    if kind in ("oneOf", "anyOf"):
        return MSG_EXPECTED.format(expected=_alternatives(err.validator_value), got=_show(got))
    return err.message


def _yaml_float(value: float) -> str:
    return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")


def _type_phrase(types: str | list[str]) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_NAMES.get(t, t) for t in names)


def _alternatives(options: list[dict[str, Any]]) -> str:
    words = []
    for opt in options:
        if "type" in opt:
            words.append(_type_phrase(opt["type"]))
        elif "enum" in opt:
            words.append("one of " + ", ".join(map(str, opt["enum"])))
        elif "$ref" in opt:
            words.append("a mapping")
    return " or ".join(dict.fromkeys(words)) or "a different value"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return repr(value)


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------- building the Policy


def _build_policy(doc: _Document, data: dict[str, Any], sha256: str) -> Policy:
    base = doc.file.parent
    model = data["model"]
    task = model["task"]
    candidate = _source(doc, model["candidate"], ("model", "candidate"), base, baseline=False)
    default = None if task == PER_EXAMPLE else "registry:production"
    baseline = _source(doc, model.get("baseline", default), ("model", "baseline"),
                       base, baseline=True)
    for role, src in (("candidate", candidate), ("baseline", baseline)):
        _check_model_file(doc, src, ("model", role), bool(model.get("trust_pickle", False)))
    _check_per_example(doc, task, candidate, baseline, model)
    spec = ModelSpec(
        name=model["name"], task=task, candidate=candidate, baseline=baseline,
        positive_label=model.get("positive_label", 1),
        threshold=float(model.get("threshold", 0.5)),
        trust_pickle=bool(model.get("trust_pickle", False)),
        trusted_types=tuple(model.get("trusted_types", ())),
        artifact=_artifact(doc, base, model.get("artifact")),
    )
    d = data["data"]
    if "target" not in d and task != PER_EXAMPLE:
        raise doc.error(("data",), MSG_NEEDS_TARGET)
    dspec = DataSpec(
        eval=_data_source(doc, base, d["eval"], ("data", "eval")),
        target=d.get("target"),
        reference=_data_source(doc, base, d["reference"], ("data", "reference")) if d.get("reference") else None,
        features=tuple(d["features"]) if d.get("features") else None,
        sensitive=tuple(d.get("sensitive", ())),
        cluster=d.get("cluster"),
    )
    if dspec.features and dspec.target in dspec.features:
        raise doc.error(("data", "features"), MSG_SENSITIVE_TARGET.format(col=dspec.target))
    for role, src in (("candidate", candidate), ("baseline", baseline)):
        if src.features and dspec.target in src.features:
            raise doc.error(("model", role, "features"), MSG_FEATURE_TARGET.format(col=dspec.target))
    gates = data.get("gates", {}) or {}
    return Policy(
        path=doc.file.resolve(), sha256=sha256, model=spec, data=dspec,
        registry=_registry(doc, data.get("registry", {}), base),
        seed=int(data.get("seed", DEFAULT_SEED)), mode=data.get("mode", "enforce"),
        gates=gates, waivers=_waivers(doc, data.get("waivers", [])),
        engine=_engine(doc, data.get("engine") or {}),
        lines=dict(doc.lines),
        named_columns=_named_columns(gates, reference=False), reference_columns=_named_columns(gates, reference=True),
    )


def _named_columns(gates: Mapping[str, Any], *, reference: bool) -> tuple[tuple[KeyPath, str], ...]:
    """Return the columns each gate section names (``reference``: those it reads from data.reference)."""
    kinds = gate_registry()
    out: list[tuple[KeyPath, str]] = []
    for name, spec in gates.items():
        kind = kinds.get(name)
        if kind is not None:
            named = kind.reference_columns(spec) if reference else kind.columns(spec)
            out.extend((("gates", name, *keypath), col) for keypath, col in named)
    return tuple(out)


def _source(doc: _Document, value: Any, path: KeyPath, base: Path, *, baseline: bool) -> ModelSource:
    if isinstance(value, dict):
        return _mapping_source(doc, value, path, base)
    if value is None or value == "none":
        return ModelSource("none")
    if value.startswith("registry:"):
        ref = value.split(":", 1)[1]
        if doc.data.get("model", {}).get("task") == PER_EXAMPLE:
            raise doc.error(path, MSG_PER_EXAMPLE_SOURCE.format(role="baseline", extra=MSG_PER_EXAMPLE_REGISTRY)
                            + f" ({{registry: {ref or 'ALIAS'}, scores: {{...}}}}), or none")
        if not ref:
            raise doc.error(path, MSG_BASELINE.format(got=value))
        if ref.strip().isdigit():  # any script's digits: a version, and only ASCII int64 ones exist
            from gates.registry.base import check_version

            try:
                check_version(ref)
            except UserError as exc:
                raise doc.error(path, exc.message) from None
        return ModelSource("registry", ref=ref)
    if value.startswith(("models:", "runs:")):
        return _uri_source(doc, value, path)
    return _file_source(doc, _existing(doc, base, value, path), None, path)


def _mapping_source(doc: _Document, value: dict[str, Any], path: KeyPath, base: Path) -> ModelSource:
    column_keys = [k for k in COLUMN_KEYS if k in value]
    model_keys = [k for k in MODEL_KEYS if k in value]
    if column_keys and model_keys:
        raise doc.error(path + (model_keys[0],), MSG_MIXED_SOURCE.format(columns=", ".join(column_keys),
                                                                          model=", ".join(model_keys)))
    if column_keys:
        scores = value.get("scores")
        if isinstance(scores, dict):
            return ModelSource("columns", named_scores=tuple(scores.items()), ref=value.get("registry"),
                               predictions=value.get("predictions"))
        return ModelSource("columns", predictions=value.get("predictions"),
                           scores=tuple(scores) if isinstance(scores, list) else scores, ref=value.get("registry"))
    if ("path" in value) == ("uri" in value):
        raise doc.error(path, MSG_PATH_OR_URI)
    features = tuple(value["features"]) if value.get("features") else None
    outputs = dict(value["outputs"]) if value.get("outputs") else None
    if "uri" in value:
        if value.get("format", "mlflow") != "mlflow":
            raise doc.error(path + ("format",), MSG_URI_FORMAT.format(format=value["format"]))
        src = _uri_source(doc, value["uri"], path + ("uri",))
    else:
        src = _file_source(doc, _existing(doc, base, value["path"], path + ("path",)), value.get("format"),
                           path + ("format",) if "format" in value else path + ("path",))
    if outputs and src.format != "onnx":
        raise doc.error(path + ("outputs",), MSG_OUTPUTS_ONNX.format(format=src.format))
    return replace(src, features=features, outputs=outputs)


def _uri_source(doc: _Document, uri: str, path: KeyPath) -> ModelSource:
    from gates.models import MODEL_URI, MSG_BAD_URI, extra_problem

    if not MODEL_URI.fullmatch(uri):
        raise doc.error(path, MSG_BAD_URI.format(got=uri))
    problem = extra_problem("mlflow")
    if problem:
        raise doc.error(path, problem)
    return ModelSource("mlflow", model_uri=uri, format="mlflow")


def _file_source(doc: _Document, file: Path, given: str | None, path: KeyPath) -> ModelSource:
    from gates.models import default_format, extra_problem

    try:
        fmt = given or default_format(file)
    except ValueError as exc:
        raise doc.error(path, str(exc)) from None
    problem = extra_problem(fmt)
    if problem:
        raise doc.error(path, problem)
    return ModelSource("file", path=file, format=fmt)


def _check_model_file(doc: _Document, src: ModelSource, path: KeyPath, trust_pickle: bool) -> None:
    if src.kind != "file" or src.path is None:
        return
    if src.format == "mlflow" and src.path.is_dir():
        return  # an MLflow model folder: its MLmodel file is checked when it loads
    if not src.path.is_file():
        what = "a folder" if src.path.is_dir() else "something that is not a regular file"
        raise doc.error(path, MSG_NOT_A_FILE.format(what=what, path=src.path.name))
    if src.format == "pickle" and not trust_pickle:
        raise doc.error(path, MSG_PICKLE.format(path=src.path.name))


def _check_per_example(doc: _Document, task: str, candidate: ModelSource, baseline: ModelSource,
                       model: Mapping[str, Any]) -> None:
    """A per_example model is named score columns, and only a per_example model is."""
    if task != PER_EXAMPLE:
        for role, src in (("candidate", candidate), ("baseline", baseline)):
            if src.named_scores or (src.kind == "columns" and src.ref is not None):
                raise doc.error(("model", role, "scores"), MSG_NAMED_SCORES_TASK)
        if model.get("artifact") is not None:
            raise doc.error(("model", "artifact"), MSG_ARTIFACT_TASK)
        return
    if not candidate.named_scores or candidate.predictions:
        raise doc.error(("model", "candidate"), MSG_PER_EXAMPLE_SOURCE.format(role="candidate", extra=""))
    if baseline.kind == "none":
        return
    if not baseline.named_scores or baseline.predictions:
        raise doc.error(("model", "baseline"), MSG_PER_EXAMPLE_SOURCE.format(
            role="baseline", extra=MSG_PER_EXAMPLE_REGISTRY) + ", or none")
    want, got = candidate.score_columns, baseline.score_columns
    missing, extra = [n for n in want if n not in got], [n for n in got if n not in want]
    if missing or extra:
        problem = "; ".join(p for p in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unknown {', '.join(repr(e) + _did_you_mean(e, [m for m in want if m not in got]) for e in extra)}"
            if extra else "") if p)
        at: KeyPath = ("model", "baseline", "scores")
        raise UserError(_at(at, MSG_SCORE_NAMES.format(problem=problem)),
                        location=doc.where(at + ((extra[0],) if extra else ())))


def _artifact(doc: _Document, base: Path, value: str | None) -> str | None:
    """Return the artifact as an absolute local path (which must exist) or the URI as given."""
    if value is None:
        return None
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
        return value
    return str(_existing(doc, base, value, ("model", "artifact")))


def _existing(doc: _Document, base: Path, value: str, path: KeyPath) -> Path:
    try:
        resolved = (base / value).resolve() if not Path(value).is_absolute() else Path(value)
        found = resolved.exists()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11's resolve)
        raise doc.error(path, MSG_UNRESOLVABLE.format(path=value, problem=_first_line(exc))) from None
    if not found:
        raise doc.error(path, MSG_MISSING_FILE.format(path=value))
    return resolved


def _data_source(doc: _Document, base: Path, value: str, path: KeyPath) -> Path:
    """Return a data file, folder or glob as an absolute path; a folder or glob must name files."""
    from gates.datasets import data_files, is_glob

    if not is_glob(value):
        resolved = _existing(doc, base, value, path)
    else:
        resolved = Path(value) if Path(value).is_absolute() else base.resolve() / value
    try:
        data_files(resolved)
    except UserError as exc:
        raise doc.error(path, exc.message) from None
    return resolved


def _engine(doc: _Document, value: dict[str, Any]) -> EngineSpec:
    from gates.engine import MSG_ADDRESS_NEEDS_DASK, MSG_BATCHES_NEED_LOCAL, engine_problem

    spec = EngineSpec(kind=value.get("kind", "local"), address=value.get("address"), workers=value.get("workers"),
                      batches=value.get("batches", True))
    if spec.address is not None and spec.kind != "dask":
        raise doc.error(("engine", "address"), MSG_ADDRESS_NEEDS_DASK)
    if "batches" in value and spec.kind != "local":
        raise doc.error(("engine", "batches"), MSG_BATCHES_NEED_LOCAL)
    problem = engine_problem(spec.kind)
    if problem is not None:
        raise doc.error(("engine", "kind"), problem)
    return spec


def _registry(doc: _Document, reg: dict[str, Any], base: Path) -> RegistrySpec:
    backend = reg.get("backend", "local")
    uri = reg.get("uri", DEFAULT_REGISTRY_URI)
    if not str(uri).strip():  # an empty uri would put a registry in the working folder, unasked
        raise doc.error(("registry", "uri"), MSG_EMPTY_URI)
    if backend == "local" and "://" not in uri and not Path(uri).is_absolute():
        uri = str((base / uri).resolve())
    on_pass = reg.get("on_pass", {})
    return RegistrySpec(backend=backend, uri=uri, register_on_pass=on_pass.get("register", True),
                        alias_on_pass=on_pass.get("alias", DEFAULT_ALIAS_ON_PASS))


def _waivers(doc: _Document, items: list[dict[str, Any]]) -> tuple[Waiver, ...]:
    out = []
    for i, w in enumerate(items):
        try:
            expires = dt.date.fromisoformat(str(w["expires"]))
        except ValueError:
            raise doc.error(("waivers", i, "expires"), MSG_BAD_DATE.format(got=w["expires"])) from None
        out.append(Waiver(check=w["check"], reason=w["reason"], by=w.get("by") or _who(),
                          expires=expires, source=f"{doc.file.name}:{doc.lines.get(('waivers', i), 1)}"))
    return tuple(out)


def _who() -> str:
    try:
        return os.environ.get("GITHUB_ACTOR") or os.environ.get("GITLAB_USER_LOGIN") or getpass.getuser()
    except OSError:
        return "unknown"


def _check_semantics(doc: _Document, policy: Policy, today: dt.date) -> Policy:
    """Raise a located error for what the schema cannot say; return the policy with its gates' plans."""
    for i, w in enumerate(policy.waivers):
        if w.expires is not None and w.expires < today:
            raise doc.error(("waivers", i, "expires"),
                            MSG_WAIVER_EXPIRED.format(check=w.check, date=w.expires.isoformat()))
    registry = gate_registry()
    setup = GateSetup(task=policy.model.task, base_dir=policy.base_dir, data=policy.data,
                      where=lambda *p: doc.where(("gates", *p)),
                      error=lambda p, msg: doc.error(("gates", *p), msg),
                      scores=tuple(n for n, _ in policy.model.candidate.named_scores))
    blocking = False
    plans: dict[str, Any] = {}
    for name, spec in policy.gates.items():
        plans[name] = registry[name].make_plan(spec, setup)
        if name in NEEDS_MODEL_OBJECT and policy.model.candidate.kind == "columns":
            continue  # its checks are all skipped without a model to re-score: they block nothing
        blocking = blocking or registry[name].declares_blocking(plans[name])
    if not blocking and not policy.is_shadow:
        raise UserError(MSG_VACUOUS, location=doc.where(("gates",)))
    return replace(policy, plans=plans)



def cli_waiver(check: str, reason: str) -> Waiver:
    """Return a waiver given on the command line (``--waive CHECK --reason ...``)."""
    return Waiver(check=check, reason=reason, by=_who(), expires=None, source=CLI_SOURCE)
