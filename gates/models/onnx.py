"""ONNX graphs, run by onnxruntime on the CPU provider with no custom-op library.

Before a session exists the graph is parsed with the ``onnx`` package without its external data,
and every external-data location is checked: a relative path inside the model's own folder, no
``..``, no absolute path, no symlink that leaves the folder. The checked data is then read into
memory (each file once, the bytes the model's sha256 is computed from) and the session is built
from bytes, so onnxruntime itself never opens a file.

Inputs: one 2-D tensor takes the model's features as a matrix (the columns come from
``features`` or ``data.features``); several inputs are the features, one column each, by name
(an input skl2onnx named ``mean_radius`` takes the column ``mean radius``).
Outputs: ``outputs: {label, probabilities}`` names them, else they are found: a ZipMap
(sequence of maps, skl2onnx's default) or a 2-D float tensor for probabilities, an integer or
string tensor for labels, the first float tensor for a regressor's values. Class labels come from
the graph's ``classlabels_*`` attributes (ZipMap, the ai.onnx.ml classifiers), else ``0 .. k-1``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import pandas as pd

from gates.errors import UserError, first_line as _first_line
from gates.models.base import Output, match_names, wrong_kind
from gates.models.reads import Reads
from gates.models.trust import Trust

MSG_NOT_A_MODEL = "'{path}' is not an ONNX model ({problem})"
MSG_EXTERNAL = ("'{path}' keeps tensor '{tensor}' in '{location}', {why}; external data must be a "
                "file inside the model's own folder")
MSG_SESSION = "onnxruntime cannot run '{path}' on the CPU provider: {problem}"
MSG_CUSTOM_OP = ("'{path}' uses operator {op} of domain '{domain}', which needs a custom-op library; model-gates "
                 "runs ONNX graphs with onnxruntime's own operators only (domains: {known})")
#: operator domains onnxruntime's CPU provider implements itself (no custom-op library is ever loaded)
BUILTIN_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
MSG_NO_OUTPUT = "the graph has no output named '{name}' (outputs: {have}); fix outputs.{key}"
MSG_FIND_OUTPUT = ("cannot tell which graph output holds the {what} (outputs: {have}); name it with "
                   "{{path: ..., outputs: {{{key}: NAME}}}}")
_ONNX_NAME = re.compile(r"[^\w+]")
_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
           "tensor(int32)": np.int32, "tensor(string)": object, "tensor(bool)": np.bool_,
           "tensor(float16)": np.float16}
_LABEL_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(string)")
_FLOAT_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")


def load(path: Path, *, trust: Trust, where: str, reads: Reads,
         outputs: Mapping[str, str] | None = None) -> OnnxAdapter:
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load_model_from_string(reads.read(path))
    except Exception as exc:  # noqa: BLE001 -- a broken protobuf: the user's file
        raise UserError(MSG_NOT_A_MODEL.format(path=path.name, problem=_first_line(exc)), location=where) from None
    _check_domains(model, path, where)
    external = check_external_data(model, path, where)
    try:
        fill_external_data(model, path, reads)
    except ValueError as exc:
        raise UserError(MSG_NOT_A_MODEL.format(path=path.name, problem=exc), location=where) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 -- unknown ops, bad shapes: onnxruntime refuses the graph
        raise UserError(MSG_SESSION.format(path=path.name, problem=_first_line(exc)), location=where) from None
    files = ((path.name, path), *((loc, path.parent / loc) for loc in external))
    return OnnxAdapter(session, _class_labels(model), dict(outputs or {}), files)


def check_external_data(model: Any, path: Path, where: str) -> list[str]:
    """Return the external-data locations (sorted), each checked to be a file inside the model's folder."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    folder = path.parent.resolve()
    found: set[str] = set()
    for tensor in _tensors(model):
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location

        def refuse(why: str, tensor: Any = tensor, location: str = location) -> UserError:
            return UserError(MSG_EXTERNAL.format(path=path.name, tensor=tensor.name, location=location, why=why),
                             location=where)

        posix, windows = PurePosixPath(location), PureWindowsPath(location)
        if not location or posix.is_absolute() or windows.is_absolute() or windows.drive:
            raise refuse("an absolute path")
        if ".." in posix.parts or ".." in windows.parts:
            raise refuse("a path that climbs out with '..'")
        target = (path.parent / location)
        if not target.resolve().is_relative_to(folder):
            raise refuse("a link to a file outside the folder")
        if not target.is_file():
            raise refuse("which is not a file there")
        found.add(posix.as_posix())
    return sorted(found)


def fill_external_data(model: Any, path: Path, reads: Reads) -> None:
    """Put each external tensor's bytes into ``model`` from its (checked) file beside ``path``, read once
    through ``reads``: the bytes loaded are the bytes hashed."""
    from onnx import TensorProto
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    for tensor in _tensors(model):
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        data = reads.read(path.parent / info.location)
        start = info.offset or 0
        end = len(data) if info.length is None else start + info.length
        if start > len(data) or end > len(data):
            raise ValueError(f"tensor '{tensor.name}' needs bytes {start}..{end} of '{info.location}', "
                             f"which has {len(data)}")
        tensor.raw_data = data[start:end]
        del tensor.external_data[:]
        tensor.data_location = TensorProto.DEFAULT


def _check_domains(model: Any, path: Path, where: str) -> None:
    """Refuse a node whose operator is neither onnxruntime's own nor a function defined in the model."""
    local = {(f.domain, f.name) for f in model.functions}
    for node in _nodes(model):
        if node.domain not in BUILTIN_DOMAINS and (node.domain, node.op_type) not in local:
            raise UserError(MSG_CUSTOM_OP.format(path=path.name, op=node.op_type, domain=node.domain,
                                                 known=", ".join(repr(d) for d in BUILTIN_DOMAINS)), location=where)


def _nodes(model: Any) -> Iterator[Any]:
    """Yield every node of the model: the graph's, its subgraphs' and its functions'."""
    graphs = [model.graph]
    pending = [n for f in model.functions for n in f.node]
    while graphs or pending:
        if graphs:
            pending.extend(graphs.pop().node)
            continue
        node = pending.pop()
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                graphs.append(attr.g)
            graphs.extend(attr.graphs)


def _tensors(model: Any) -> Iterator[Any]:
    """Yield every tensor of the model: initializers and attribute tensors, in every subgraph and function."""
    graphs = [model.graph]
    nodes = [n for f in model.functions for n in f.node]
    while graphs or nodes:
        if graphs:
            g = graphs.pop()
            yield from g.initializer
            yield from (s.values for s in g.sparse_initializer)
            yield from (s.indices for s in g.sparse_initializer)
            nodes.extend(g.node)
            continue
        node = nodes.pop()
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            if attr.HasField("g"):
                graphs.append(attr.g)
            graphs.extend(attr.graphs)


def _class_labels(model: Any) -> tuple[Any, ...] | None:
    """Return the class labels the graph states (ZipMap first, then any ai.onnx.ml classifier)."""
    nodes = sorted(model.graph.node, key=lambda n: n.op_type != "ZipMap")
    for node in nodes:
        for attr in node.attribute:
            if attr.name.startswith("classlabels_"):
                if attr.ints:
                    return tuple(int(v) for v in attr.ints)
                if attr.strings:
                    return tuple(v.decode("utf-8") for v in attr.strings)
    return None


class OnnxAdapter:
    """An onnxruntime session and the facts needed to feed it and read its outputs."""

    format = "onnx"

    def __init__(self, session: Any, labels: tuple[Any, ...] | None, outputs: dict[str, str],
                 files: tuple[tuple[str, Path], ...]) -> None:
        self.native = session
        self.files = files
        self._labels = labels
        self._width: int | None = None
        self._inputs = session.get_inputs()
        have = {o.name: o for o in session.get_outputs()}
        for key, name in outputs.items():
            if name not in have:
                raise UserError(MSG_NO_OUTPUT.format(name=name, have=", ".join(have), key=key))
        self._outputs = outputs
        self._have = have

    # ------------------------------------------------------------ protocol

    def feature_names(self, columns: Sequence[str]) -> tuple[str, ...] | None:
        if len(self._inputs) == 1 and len(self._inputs[0].shape or ()) == 2:
            return None  # one matrix input: its columns are not named in the graph
        # skl2onnx names an input after its column with every character but [\w+] made '_'
        return match_names([i.name for i in self._inputs], columns, lambda c: _ONNX_NAME.sub("_", str(c)))

    def classes(self) -> tuple[Any, ...] | None:
        if self._labels is not None:
            return self._labels
        return None if self._width is None else tuple(range(self._width))

    def predict(self, X: pd.DataFrame, task: str) -> Output:
        results = dict(zip(self._have, self.native.run(None, self._feed(X)), strict=True))
        if task == "regression":
            name = self._outputs.get("label") or self._find(_FLOAT_TYPES, "values", "label", regression=True)
            return Output(labels=np.asarray(results[name], dtype=float).reshape(len(X), -1)[:, 0])
        proba_name = self._outputs.get("probabilities") or self._find_proba()
        label_name = self._outputs.get("label") or self._find_label()
        if proba_name is None and label_name is None:
            raise wrong_kind("regressor", "no label or probability output", task)
        proba = None if proba_name is None else self._proba(results[proba_name])
        labels = None if label_name is None else np.asarray(results[label_name]).reshape(-1)
        return Output(labels=labels, proba=proba)

    # ------------------------------------------------------------ inputs and outputs

    def _feed(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        if len(self._inputs) == 1 and len(self._inputs[0].shape or ()) == 2:
            only = self._inputs[0]
            return {only.name: _as(X.to_numpy(), only.type)}
        # X holds the model's columns in feature_names() order: input k is column k
        return {i.name: _as(X.iloc[:, k].to_numpy().reshape(-1, 1), i.type) for k, i in enumerate(self._inputs)}

    def _find(self, types: tuple[str, ...], what: str, key: str, *, regression: bool = False) -> str:
        names = [n for n, o in self._have.items() if o.type in types]
        if not names:
            raise UserError(MSG_FIND_OUTPUT.format(what=what, have=", ".join(self._have), key=key))
        return names[0]

    def _find_proba(self) -> str | None:
        for name, out in self._have.items():
            if out.type.startswith("seq(map("):
                return name
        matrices = [n for n, o in self._have.items() if o.type in _FLOAT_TYPES and len(o.shape or ()) == 2]
        named = [n for n in matrices if "prob" in n.lower()]
        return (named or matrices or [None])[0]

    def _find_label(self) -> str | None:
        labels = [n for n, o in self._have.items() if o.type in _LABEL_TYPES]
        named = [n for n in labels if "label" in n.lower()]
        return (named or labels or [None])[0]

    def _proba(self, value: Any) -> np.ndarray:
        if isinstance(value, list):  # ZipMap: one {class: probability} per row
            keys = self._labels or (tuple(value[0]) if value else ())
            self._labels = tuple(keys)
            return np.array([[row[k] for k in keys] for row in value], dtype=float).reshape(len(value), len(keys))
        proba = np.asarray(value, dtype=float)
        self._width = proba.shape[1]
        return proba


def _as(values: np.ndarray, onnx_type: str) -> np.ndarray:
    dtype = _DTYPES.get(onnx_type, np.float32)
    if dtype is object:
        return values.astype(str).astype(object)
    return values.astype(dtype)
