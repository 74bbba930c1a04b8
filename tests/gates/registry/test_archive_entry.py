"""A multi-file model is loaded from its archive at the entry its lineage records, never "the first
graph": a registry archive holding a second graph never has it loaded in place of the gated one, and
the MLflow flavour of a graph with external data keeps that data external."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from gates.cli import main
from gates.config import load_policy
from gates.context import EvalContext
from gates.models.bundle import archive_sha256, save_archive
from gates.registrar import baseline_resolver
from gates.registry import open_backend
from tests.gates.models.helpers import TASKS, dataset
from tests.gates.models.test_onnx import save_linear

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

F32 = {"rtol": 1e-5, "atol": 1e-5}


def _graphs(tmp_path: Path, n_features: int) -> tuple[list[tuple[str, Path]], dict[str, tuple[np.ndarray, float]]]:
    """Return the files of an archive holding two linear graphs: m.onnx (weights in weights.bin) and a.onnx
    (other weights, inline), and each graph's (coef, intercept)."""
    rng = np.random.default_rng(11)
    gated = (rng.normal(size=n_features), 0.5)
    other = (rng.normal(size=n_features) * 100, -40.0)
    folder = tmp_path / "files"
    folder.mkdir()
    save_linear(*gated, folder / "m.onnx", data="weights.bin")
    save_linear(*other, folder / "a.onnx")
    files = [(p.name, p) for p in sorted(folder.iterdir())]
    assert [n for n, _ in files] == ["a.onnx", "m.onnx", "weights.bin"]
    return files, {"m.onnx": gated, "a.onnx": other}


def _plant(tmp_path: Path, files: list[tuple[str, Path]], lineage: dict) -> None:
    staged = save_archive(files, tmp_path / "planted.onnx")
    reg = open_backend("local", str(tmp_path / "reg"))
    try:
        reg.register("fmt", staged, format="onnx", lineage=lineage, by="mallory", verdict="none",
                     alias="production", forced_reason="attack")
    finally:
        reg.close()


def _project(tmp_path: Path, candidate: str) -> Path:
    X, y = dataset("regression")
    X.assign(target=y).to_csv(tmp_path / "eval.csv", index=False)
    policy = {"version": 1,
              "model": {"name": "fmt", "task": TASKS["regression"], "candidate": candidate,
                        "baseline": "registry:production"},
              "data": {"eval": "eval.csv", "target": "target", "features": list(X.columns)},
              "registry": {"uri": str(tmp_path / "reg")},
              "seed": 3,
              "gates": {"regression": {"bootstrap": 100, "metrics": {"r2": {"max_drop": 1000.0}}}}}
    (tmp_path / "gates.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    return tmp_path / "gates.yaml"


def test_a_registry_baseline_loads_the_recorded_entry_when_its_data_file_is_named_like_a_graph(tmp_path, capsys):
    """m.onnx keeps its weights in a.onnx: the archive's first *.onnx is data, the lineage says which is the graph."""
    X, y = dataset("regression")
    coef, intercept = np.linspace(-2, 2, X.shape[1]), 3.0
    (tmp_path / "files").mkdir()
    save_linear(coef, intercept, tmp_path / "files" / "m.onnx", data="a.onnx")
    cfg = _project(tmp_path, "files/m.onnx")
    assert main(["register", "-c", str(cfg), "--force", "--reason", "test", "--alias", "production"]) == 0
    capsys.readouterr()
    assert main(["show", "fmt", "1", "--json", "-c", str(cfg)]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert model["files"] == ["m.onnx", "a.onnx"] and model["entry"] == "m.onnx"
    policy = load_policy(cfg)
    ctx = EvalContext(policy, resolve_baseline=baseline_resolver(policy))
    np.testing.assert_allclose(ctx.predictions("baseline").labels, X.to_numpy() @ coef + intercept, **F32)
    assert ctx.model("baseline").path.name == "m.onnx" and ctx.model("baseline").version == 1


@pytest.mark.parametrize("entry, said", [
    ("m.onnx", "it holds a.onnx, which the model loaded from it does not use"),
    ("a.onnx", "it holds m.onnx, weights.bin, which the model loaded from it does not use"),
    (None, "it holds 2 ONNX graphs (a.onnx, m.onnx) and its lineage does not record which one is the model"),
    ("../m.onnx", "its lineage names '../m.onnx' as the model, which is not a file in the archive"),
    ("b.onnx", "its lineage names 'b.onnx' as the model, which is not a file in the archive"),
])
def test_a_registry_archive_with_a_second_graph_is_refused_with_one_line(tmp_path, capsys, entry, said):
    files, _ = _graphs(tmp_path, 10)
    _plant(tmp_path, files, {} if entry is None else {"model": {"files": [n for n, _ in files], "entry": entry}})
    capsys.readouterr()
    code = main(["run", "-c", str(_project(tmp_path, "files/m.onnx")), "--no-register",
                 "--report-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not (tmp_path / "out" / "report.json").exists()
    assert "the baseline model's archive from the registry (registry:production (v1)) is refused: " + said in err[0]


def test_the_mlflow_flavour_of_a_graph_with_external_data_keeps_it_external_and_is_the_entrys(tmp_path):
    """MLflow's onnx flavour gets save_as_external_data from the gated graph (checked before its data is
    loaded), and is made from the recorded entry, not the archive's first graph."""
    pytest.importorskip("mlflow")
    import mlflow.onnx
    from onnx.external_data_helper import uses_external_data

    from gates.registry.mlflow_artifacts import write_model_folder

    n = 400  # 1,600 bytes of weights: over the size onnx keeps inline when saving external data
    files, coefs = _graphs(tmp_path, n)
    staged = save_archive(files, tmp_path / "staged.onnx")
    folder = tmp_path / "version"
    tags = write_model_folder(folder, staged, "onnx", archive_sha256(files), None, entry="m.onnx")
    assert tags["model_gates.flavor"] == "onnx", tags
    graph_file = folder / yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["onnx"]["data"]
    saved = onnx.load(str(graph_file), load_external_data=False)
    weights = {t.name: t for t in saved.graph.initializer}["W"]
    assert uses_external_data(weights)
    assert graph_file.stat().st_size < n * 4  # the weights are not inside the graph file
    X = np.random.default_rng(2).normal(size=(25, n)).astype(np.float32)
    session = ort.InferenceSession(mlflow.onnx.load_model(str(folder)).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {"X": X})[0].reshape(-1)
    coef, intercept = coefs["m.onnx"]
    np.testing.assert_allclose(got, X.astype(np.float64) @ coef + intercept, **F32)
