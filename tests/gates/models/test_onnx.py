"""ONNX graphs through onnxruntime: scores equal scikit-learn's to float32 precision; external data
outside the model's folder is refused before any session exists."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gates.errors import UserError
from gates.models.bundle import archive_sha256
from tests.gates.models.helpers import context, dataset, run_cli, write_project

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

F32 = {"rtol": 1e-5, "atol": 1e-6}  # float32 graphs: their own precision


def _fit(kind: str):
    X, y = dataset(kind)
    if kind == "regression":
        model = LinearRegression().fit(X.to_numpy(), y)
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X.to_numpy(), y)
    return X, y, model


def _save(model, X, path: Path, **options) -> Path:
    graph = skl2onnx.to_onnx(model, X.to_numpy()[:1].astype(np.float32), **options)
    path.write_bytes(graph.SerializeToString())
    return path


def test_binary_zipmap_scores_equal_predict_proba(tmp_path):
    X, y, model = _fit("binary")
    _save(model, X, tmp_path / "m.onnx")  # skl2onnx's default: label + ZipMap probabilities
    ctx = context(write_project(tmp_path, "binary", "m.onnx", data={"features": list(X.columns)}))
    pred = ctx.predictions("candidate")
    np.testing.assert_allclose(pred.scores, model.predict_proba(X.to_numpy())[:, 1], **F32)
    assert pred.classes == (0, 1)
    assert (pred.labels != model.predict(X.to_numpy())).mean() < 0.01  # float32 may flip a row at 0.5


def test_multiclass_tensor_outputs_named_in_the_policy(tmp_path):
    X, y, model = _fit("multiclass")
    _save(model, X, tmp_path / "m.onnx", options={id(model): {"zipmap": False}})
    source = {"path": "m.onnx", "features": list(X.columns),
              "outputs": {"label": "label", "probabilities": "probabilities"}}
    ctx = context(write_project(tmp_path, "multiclass", source))
    pred = ctx.predictions("candidate")
    np.testing.assert_allclose(pred.scores, model.predict_proba(X.to_numpy()), **F32)
    np.testing.assert_array_equal(pred.labels, model.predict(X.to_numpy()))
    bad = {**source, "outputs": {"probabilities": "probs"}}
    with pytest.raises(UserError, match=r"no output named 'probs' \(outputs: label, probabilities\)"):
        context(write_project(tmp_path, "multiclass", bad)).predictions("candidate")


def test_regression_values_equal_predict(tmp_path):
    X, y, model = _fit("regression")
    _save(model, X, tmp_path / "m.onnx")
    ctx = context(write_project(tmp_path, "regression", "m.onnx", data={"features": list(X.columns)}))
    np.testing.assert_allclose(ctx.predictions("candidate").labels, model.predict(X.to_numpy()), **F32)


def test_one_matrix_input_without_features_is_a_config_error(tmp_path):
    X, y, model = _fit("regression")
    _save(model, X, tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"which columns the candidate model \(m.onnx\) takes"):
        context(write_project(tmp_path, "regression", "m.onnx")).predictions("candidate")


def save_linear_with_external_data(coef: np.ndarray, intercept: float, path: Path) -> None:
    """Save ``X @ coef + intercept`` as MatMul + Add at ``path``, its weights in weights.bin beside it."""
    save_linear(coef, intercept, path, data="weights.bin")


def save_linear(coef: np.ndarray, intercept: float, path: Path, data: str | None = None) -> None:
    """Save ``X @ coef + intercept`` as MatMul + Add at ``path``; its weights in the file ``data`` beside it,
    else inside the graph."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(coef.astype(np.float32).reshape(-1, 1), "W")
    b = numpy_helper.from_array(np.array([intercept], dtype=np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["variable"])],
        "linear", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, coef.size])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])], initializer=[w, b])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if data is None:
        onnx.save_model(proto, str(path))
    else:
        onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data, size_threshold=0)


def _external(folder: Path) -> tuple[Path, object, object]:
    """Save a linear regressor as MatMul + Add whose weights live in weights.bin beside the graph."""
    X, _, model = _fit("regression")
    save_linear_with_external_data(model.coef_, model.intercept_, folder / "m.onnx")
    return folder / "m.onnx", X, model


def test_external_data_in_the_folder_loads_and_is_hashed_as_an_archive(tmp_path):
    path, X, model = _external(tmp_path)
    assert (tmp_path / "weights.bin").stat().st_size > 0
    ctx = context(write_project(tmp_path, "regression", "m.onnx", data={"features": list(X.columns)}))
    np.testing.assert_allclose(ctx.predictions("candidate").labels, model.predict(X.to_numpy()), **F32)
    loaded = ctx.model("candidate")
    assert [n for n, _ in loaded.files] == ["m.onnx", "weights.bin"]
    assert loaded.sha256 == archive_sha256([("m.onnx", path), ("weights.bin", tmp_path / "weights.bin")])
    code, report = run_cli(tmp_path / "gates.yaml")
    assert code == 0 and report["model"]["candidate"] == {"uri": "m.onnx", "sha256": loaded.sha256, "format": "onnx"}


def _point_weights_at(path: Path, location: str) -> None:
    graph = onnx.load(str(path), load_external_data=False)
    for tensor in graph.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(graph.SerializeToString())


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_external_data_outside_the_folder_is_refused(tmp_path, how, capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    path, X, _ = _external(folder)
    outside = tmp_path / "weights.bin"
    os.replace(folder / "weights.bin", outside)  # the bytes exist, but outside the model's folder
    location = {"dotdot": "../weights.bin", "absolute": str(outside), "symlink": "link.bin"}[how]
    if how == "symlink":
        (folder / "link.bin").symlink_to(outside)
    _point_weights_at(path, location)
    cfg = write_project(tmp_path, "regression", "model/m.onnx", data={"features": list(X.columns)})
    code, report = run_cli(cfg)
    err = capsys.readouterr().err
    assert code == 2 and report is None
    assert f"'m.onnx' keeps tensor" in err and f"in '{location}'" in err
    assert "external data must be a file inside the model's own folder" in err and "candidate" in err


def test_not_an_onnx_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07garbage that is no protobuf \xff\xfe")
    code, _ = run_cli(write_project(tmp_path, "binary", "m.onnx", data={"features": ["mean radius"]}))
    err = capsys.readouterr().err
    assert code == 2 and "the candidate model (m.onnx)" in err and "Traceback" not in err


def test_binary_runs_end_to_end_against_a_skops_baseline(tmp_path):
    import skops.io as sio

    X, y, model = _fit("binary")
    _save(model, X, tmp_path / "cand.onnx")
    prod = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000)).fit(X, y)
    sio.dump(prod, tmp_path / "prod.skops")
    cfg = write_project(tmp_path, "binary", {"path": "cand.onnx", "features": list(X.columns)}, "prod.skops",
                        gates={"regression": {"bootstrap": 200, "metrics": {"roc_auc": {"max_drop": 0.05}}},
                               "fairness": {"groups": ["band"], "min_group_size": 20,
                                            "metrics": {"tpr_difference": {"max": 0.5}}}},
                        frame=X.assign(target=y, band=np.where(X["mean radius"] > 14, "big", "small")),
                        data={"sensitive": ["band"]})
    code, report = run_cli(cfg)
    assert code == 0, report
    assert report["model"]["candidate"]["format"] == "onnx" and report["model"]["baseline"]["format"] == "skops"
    assert {c["gate"] for c in report["checks"]} >= {"regression", "fairness"}


def test_a_custom_op_domain_is_refused_before_any_session(tmp_path, capsys):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["X"], ["variable"], domain="com.example.custom")], "custom",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 10])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example.custom", 1)])
    (tmp_path / "m.onnx").write_bytes(proto.SerializeToString())
    code, report = run_cli(write_project(tmp_path, "regression", "m.onnx",
                                         data={"features": list(dataset("regression")[0].columns)}))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and report is None and len(err) == 1, err
    assert "the candidate model (m.onnx)" in err[0] and "operator Frobnicate of domain 'com.example.custom'" in err[0]
    assert "needs a custom-op library" in err[0]


def test_a_custom_op_is_refused_by_onnxruntime_too(tmp_path):
    """Control: onnxruntime without a custom-op library cannot build that graph either."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Frobnicate", ["X"], ["Y"], domain="com.example.custom")], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example.custom", 1)])
    with pytest.raises(Exception, match="Frobnicate"):
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def test_a_multi_input_graph_is_fed_each_column_by_input_name(tmp_path):
    """skl2onnx from a ColumnTransformer with one named input per column: no features list is needed."""
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.compose import ColumnTransformer

    X, y = dataset("binary")
    cols = ["mean radius", "mean texture", "worst area"]
    model = make_pipeline(ColumnTransformer([("scale", StandardScaler(), cols)]),
                          LogisticRegression(max_iter=2000)).fit(X[cols], y)
    graph = skl2onnx.to_onnx(model, initial_types=[(c, FloatTensorType([None, 1])) for c in cols],
                             options={id(model): {"zipmap": False}})
    (tmp_path / "m.onnx").write_bytes(graph.SerializeToString())
    shuffled = X[["worst area", "mean smoothness", "mean radius", "mean texture"]].assign(target=y)
    ctx = context(write_project(tmp_path, "binary", "m.onnx", frame=shuffled))
    assert ctx.features_of("candidate") == cols  # the inputs skl2onnx named mean_radius ... in the data's spelling
    pred = ctx.predictions("candidate")
    np.testing.assert_allclose(pred.scores, model.predict_proba(X[cols])[:, 1], **F32)
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == ["mean_radius", "mean_texture", "worst_area"]
    own = session.run(["probabilities"], {n: X[[c]].to_numpy().astype(np.float32)
                                          for n, c in zip(names, cols, strict=True)})[0][:, 1]
    np.testing.assert_allclose(pred.scores, own, rtol=0, atol=1e-7)
