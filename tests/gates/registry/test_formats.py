"""Every model format through the registry: ``register`` (CLI and gate run), ``registry:production`` as the
next run's baseline with the library's own scores, ``promote`` and ``rollback``, on both backends.

Multi-file models (an ONNX graph with external data, an MLflow model folder) are stored as one
deterministic archive and restored into a private folder; the MLflow backend logs each format's
own flavour.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gates.cli import main
from gates.config import load_policy
from gates.context import EvalContext
from gates.models.bundle import archive_sha256, folder_files
from gates.registrar import baseline_resolver, open_registry
from tests.gates.models.helpers import TASKS, dataset

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

F32 = {"rtol": 1e-5, "atol": 1e-6}
EXACT = {"rtol": 0, "atol": 1e-9}


# ---------------------------------------------------------------- one model of each format, and its own scores


def _xgb(folder: Path, name: str, trees: int, ext: str) -> tuple[Path, Callable[[Any], np.ndarray]]:
    X, y = dataset("binary")
    model = xgb.XGBClassifier(n_estimators=trees, max_depth=2, random_state=0, n_jobs=1).fit(X, y)
    path = folder / f"{name}{ext}"
    model.save_model(path)
    return path, lambda X: model.predict_proba(X)[:, 1]


def _lgb(folder: Path, name: str, trees: int) -> tuple[Path, Callable[[Any], np.ndarray]]:
    X, y = dataset("binary")
    model = lgb.LGBMClassifier(n_estimators=trees, num_leaves=4, random_state=0, n_jobs=1, verbose=-1).fit(X, y)
    path = folder / f"{name}.txt"
    model.booster_.save_model(path)
    booster = lgb.Booster(model_file=str(path))
    return path, lambda X: booster.predict(X)


def _session_scores(path: Path, output: str) -> Callable[[Any], np.ndarray]:
    """onnxruntime's own run on the graph (the library's predict), not through model-gates."""
    def scores(X: Any) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {name: X.to_numpy().astype(
            np.float32)}), strict=True))[output]
        return np.asarray(out, dtype=float).reshape(len(X), -1)[:, -1]
    return scores


def _onnx(folder: Path, name: str, c: float) -> tuple[Path, Callable[[Any], np.ndarray]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = dataset("binary")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(X.to_numpy(), y)
    graph = skl2onnx.to_onnx(model, X.to_numpy()[:1].astype(np.float32), options={id(model): {"zipmap": False}})
    path = folder / f"{name}.onnx"
    path.write_bytes(graph.SerializeToString())
    return path, _session_scores(path, "probabilities")


def _onnx_external(folder: Path, name: str, scale: float) -> tuple[Path, Callable[[Any], np.ndarray]]:
    """A linear regressor as MatMul + Add whose weights live in a data file beside the graph."""
    from sklearn.linear_model import LinearRegression

    from tests.gates.models.test_onnx import save_linear_with_external_data

    X, y = dataset("regression")
    model = LinearRegression().fit(X.to_numpy(), y * scale)
    sub = folder / name
    sub.mkdir()
    save_linear_with_external_data(model.coef_, model.intercept_, sub / "m.onnx")
    return sub / "m.onnx", _session_scores(sub / "m.onnx", "variable")


def _mlflow_folder(folder: Path, name: str, trees: int) -> tuple[Path, Callable[[Any], np.ndarray]]:
    import mlflow.xgboost

    X, y = dataset("binary")
    model = xgb.XGBClassifier(n_estimators=trees, max_depth=2, random_state=0, n_jobs=1).fit(X, y)
    path = folder / name
    mlflow.xgboost.save_model(model.get_booster(), str(path), pip_requirements=["xgboost"])
    return path, lambda X: model.predict_proba(X)[:, 1]


#: format -> (task kind, how the policy names the file, maker(folder, name, variant), the register CLI's extra args)
FORMATS: dict[str, tuple[str, Callable[[str], Any], Callable[..., Any], tuple[str, ...]]] = {
    "xgboost-ubj": ("binary", lambda p: p, lambda f, n, v: _xgb(f, n, v, ".ubj"), ()),
    "xgboost-json": ("binary", lambda p: {"path": p, "format": "xgboost"}, lambda f, n, v: _xgb(f, n, v, ".json"),
                     ("--format", "xgboost")),
    "lightgbm": ("binary", lambda p: {"path": p, "format": "lightgbm"}, _lgb, ("--format", "lightgbm")),
    "onnx": ("binary", lambda p: p, _onnx, ()),
    "onnx-external": ("regression", lambda p: p, _onnx_external, ()),
    "mlflow-folder": ("binary", lambda p: {"path": p, "format": "mlflow"}, _mlflow_folder, ()),
}
VARIANTS = {"xgboost-ubj": (3, 9), "xgboost-json": (3, 9), "lightgbm": (3, 9), "onnx": (0.01, 1.0),
            "onnx-external": (1.0, 0.5), "mlflow-folder": (3, 9)}
STORED = {"xgboost-ubj": "xgboost", "xgboost-json": "xgboost", "lightgbm": "lightgbm", "onnx": "onnx",
          "onnx-external": "onnx", "mlflow-folder": "mlflow"}


def _registry(tmp_path: Path, backend: str) -> dict[str, str]:
    if backend == "local":
        return {"backend": "local", "uri": str(tmp_path / "reg")}
    from tests.gates.registry.backends import migrated_mlflow_db

    db = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_mlflow_db(), db)
    return {"backend": "mlflow", "uri": f"sqlite:///{db}"}


def _project(tmp_path: Path, kind: str, candidate: Any, baseline: Any, registry: dict[str, str]) -> Path:
    X, y = dataset(kind)
    X.assign(target=y).to_csv(tmp_path / "eval.csv", index=False)
    policy = {
        "version": 1,
        "model": {"name": "fmt", "task": TASKS[kind], "candidate": candidate, "baseline": baseline,
                  **({"positive_label": 1} if kind == "binary" else {})},
        # a graph's one matrix input names no columns: data.features says them, for the registry's copy too
        "data": {"eval": "eval.csv", "target": "target", "features": list(X.columns)},
        "registry": {**registry, "on_pass": {"register": True, "alias": "staging"}},
        "seed": 3,
        "gates": {"data": {"checks": {"row_count": {"min": 10}}}},
    }
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


def _cli(*args: str) -> int:
    return main(list(args))


def _scores(ctx: EvalContext, role: str, kind: str) -> np.ndarray:
    pred = ctx.predictions(role)
    return np.asarray(pred.labels if kind == "regression" else pred.scores, dtype=float)


@pytest.mark.parametrize("backend", ["local", "mlflow"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_register_promote_baseline_and_rollback(tmp_path, fmt, backend, capsys):
    kind, source, make, register_args = FORMATS[fmt]
    first, second = VARIANTS[fmt]
    models = tmp_path / "models"
    models.mkdir()
    path1, scores1 = make(models, "one", first)
    path2, scores2 = make(models, "two", second)
    X = dataset(kind)[0]
    registry = _registry(tmp_path, backend)
    rel = lambda p: str(p.relative_to(tmp_path))  # noqa: E731

    # v1: a gate run on the first model registers it (on_pass), then production points at it
    cfg = _project(tmp_path, kind, source(rel(path1)), "none", registry)
    out1 = tmp_path / "out1"
    assert _cli("run", "-c", str(cfg), "--report-dir", str(out1)) == 0, capsys.readouterr().err
    report1 = json.loads((out1 / "report.json").read_text())
    assert report1["registration"]["version"] == 1
    assert _cli("promote", "fmt", "1", "--alias", "production", "-c", str(cfg)) == 0

    # v2: the second model is gated against registry:production, whose scores are the first model's own
    cfg = _project(tmp_path, kind, source(rel(path2)), "registry:production", registry)
    policy = load_policy(cfg)
    ctx = EvalContext(policy, resolve_baseline=baseline_resolver(policy))
    tol = F32 if fmt.startswith("onnx") else EXACT
    np.testing.assert_allclose(_scores(ctx, "baseline", kind), scores1(X), **tol)
    np.testing.assert_allclose(_scores(ctx, "candidate", kind), scores2(X), **tol)
    assert ctx.model("baseline").format == STORED[fmt] and ctx.model("baseline").version == 1
    out2 = tmp_path / "out2"
    assert _cli("run", "-c", str(cfg), "--no-register", "--report-dir", str(out2)) == 0, capsys.readouterr().err
    report2 = json.loads((out2 / "report.json").read_text())
    assert report2["model"]["baseline"]["version"] == 1
    assert report2["model"]["baseline"]["sha256"] == report1["model"]["candidate"]["sha256"]
    assert report2["model"]["candidate"]["format"] == STORED[fmt]

    # the register command takes the passing report of those exact bytes (an archive's for several files)
    capsys.readouterr()
    assert _cli("register", str(path2), *register_args, "-c", str(cfg), "--report", str(out2 / "report.json"),
                "--alias", "candidate", "--json") == 0, capsys.readouterr().err
    got = json.loads(capsys.readouterr().out)
    assert got["version"] == 2 and got["aliases"] == ["candidate"] and not got["forced"]
    assert _cli("show", "fmt", "2", "--json", "-c", str(cfg)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["format"] == STORED[fmt] and shown["model"]["format"] == STORED[fmt]
    assert shown["model_sha256"] == report2["model"]["candidate"]["sha256"]
    if fmt in ("onnx-external", "mlflow-folder"):
        files = folder_files(path2) if path2.is_dir() else (("m.onnx", path2), ("weights.bin", path2.parent / "weights.bin"))
        assert shown["model_sha256"] == archive_sha256(files)
        assert shown["model"]["files"] == [n for n, _ in files]
        assert _cli("show", "fmt", "2", "-c", str(cfg)) == 0
        assert f"(archive of {len(files)} files: " in capsys.readouterr().out

    # promote v2, then the baseline follows it; rollback returns production to v1 and its scores
    assert _cli("promote", "fmt", "2", "--alias", "production", "-c", str(cfg)) == 0
    ctx = EvalContext(policy, resolve_baseline=baseline_resolver(policy))
    np.testing.assert_allclose(_scores(ctx, "baseline", kind), scores2(X), **tol)
    assert _cli("rollback", "fmt", "--alias", "production", "-c", str(cfg)) == 0
    ctx = EvalContext(policy, resolve_baseline=baseline_resolver(policy))
    assert ctx.model("baseline").version == 1
    np.testing.assert_allclose(_scores(ctx, "baseline", kind), scores1(X), **tol)
    if backend == "mlflow":
        _check_flavour(registry["uri"], fmt, tmp_path, X, scores1)


def _check_flavour(uri: str, fmt: str, tmp_path: Path, X: Any, scores1: Callable[[Any], np.ndarray]) -> None:
    """The version's model/ folder holds the format's own MLflow flavour, loadable by MLflow."""
    import mlflow
    from mlflow.artifacts import download_artifacts

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version("fmt", "1")
    flavour = {"xgboost-ubj": "xgboost", "xgboost-json": "xgboost", "lightgbm": "lightgbm", "onnx": "onnx",
               "onnx-external": "onnx", "mlflow-folder": "xgboost"}[fmt]
    assert mv.tags["model_gates.flavor"] == flavour, mv.tags.get("model_gates.flavor_note")
    local = Path(download_artifacts(artifact_uri=client.get_model_version_download_uri("fmt", "1"),
                                    dst_path=str(tmp_path / "flavour"), tracking_uri=uri))
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert flavour in mlmodel["flavors"]
    assert not list(local.rglob("*.pkl")) and "pickle" not in json.dumps(mlmodel["flavors"])
    if flavour == "xgboost":
        import mlflow.xgboost

        booster = mlflow.xgboost.load_model(str(local))
        np.testing.assert_allclose(booster.predict(xgb.DMatrix(X)), scores1(X), **EXACT)
    elif flavour == "lightgbm":
        import mlflow.lightgbm

        booster = mlflow.lightgbm.load_model(str(local))
        np.testing.assert_allclose(booster.predict(X), scores1(X), **EXACT)
    else:
        import mlflow.onnx

        graph = mlflow.onnx.load_model(str(local))
        session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        out = session.run(None, {name: X.to_numpy().astype(np.float32)})
        values = np.asarray(out[-1], dtype=float).reshape(len(X), -1)[:, -1]
        np.testing.assert_allclose(values, scores1(X), **F32)


def test_a_registry_onnx_baseline_with_one_matrix_input_needs_data_features(tmp_path, capsys):
    """The registry keeps bytes, not the writer's features: the message names the version, not its blob."""
    models = tmp_path / "models"
    models.mkdir()
    path1, _ = _onnx(models, "one", 0.01)
    path2, _ = _onnx(models, "two", 1.0)
    registry = _registry(tmp_path, "local")
    columns = list(dataset("binary")[0].columns)
    cfg = _project(tmp_path, "binary", {"path": "models/one.onnx", "features": columns}, "none", registry)
    assert _cli("run", "-c", str(cfg), "--report-dir", str(tmp_path / "out1")) == 0
    assert _cli("promote", "fmt", "1", "--alias", "production", "-c", str(cfg)) == 0
    cfg = _project(tmp_path, "binary", {"path": "models/two.onnx", "features": columns}, "registry:production",
                   registry)
    policy = yaml.safe_load(cfg.read_text())
    del policy["data"]["features"]
    policy["gates"] = {"regression": {"bootstrap": 100, "metrics": {"roc_auc": {"max_drop": 0.5}}}}
    cfg.write_text(yaml.safe_dump(policy, sort_keys=False))
    capsys.readouterr()
    assert _cli("run", "-c", str(cfg), "--no-register", "--report-dir", str(tmp_path / "out2")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "cannot tell which columns the baseline model (registry:production (v1)) takes" in err[0]
    assert "data.features" in err[0] and path2.exists() and path1.exists()


def test_register_says_when_the_format_is_ambiguous_and_obeys_the_configs_trust(tmp_path, capsys):
    import joblib
    from sklearn.linear_model import LogisticRegression

    models = tmp_path / "models"
    models.mkdir()
    _lgb(models, "one", 3)
    booster, _ = _lgb(models, "two", 5)  # not the config's candidate: its format is not said anywhere
    X, y = dataset("binary")
    joblib.dump(LogisticRegression(max_iter=3000).fit(X, y), models / "lr.joblib")
    registry = _registry(tmp_path, "local")
    cfg = _project(tmp_path, "binary", {"path": "models/one.txt", "format": "lightgbm"}, "none", registry)
    forced = ("--force", "--reason", "test", "-c", str(cfg))
    capsys.readouterr()
    assert _cli("register", str(booster), *forced) == 2
    assert capsys.readouterr().err.strip() == (f"model-gates: error: {booster}: a .txt file can be more than one "
                                               "model format: say which with --format (e.g. --format lightgbm)")
    assert _cli("register", str(models / "lr.joblib"), *forced) == 2
    assert "model.trust_pickle: true" in capsys.readouterr().err
    assert not (tmp_path / "reg").exists()
    policy = yaml.safe_load(cfg.read_text())
    policy["model"]["trust_pickle"] = True
    cfg.write_text(yaml.safe_dump(policy, sort_keys=False))
    assert _cli("register", str(models / "lr.joblib"), "--json", *forced) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    # the config's candidate needs no --format: its mapping says lightgbm
    assert _cli("register", "--json", *forced) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    reg = open_registry(load_policy(cfg).registry)
    try:
        assert [v.format for v in reg.list_versions("fmt")] == ["pickle", "lightgbm"]
    finally:
        reg.close()


def test_register_knows_the_configs_candidate_named_by_an_absolute_path_through_a_link(tmp_path, capsys):
    """The config's absolute candidate path and MODEL_FILE are compared resolved, both sides: the same
    file through a linked folder takes the candidate's format from the config."""
    real = tmp_path / "real"
    real.mkdir()
    booster, _ = _lgb(real, "one", 3)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    linked = tmp_path / "link" / booster.name
    cfg = _project(tmp_path, "binary", {"path": str(linked), "format": "lightgbm"}, "none",
                   _registry(tmp_path, "local"))
    capsys.readouterr()
    assert _cli("register", str(linked), "--json", "--force", "--reason", "test", "-c", str(cfg)) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    reg = open_registry(load_policy(cfg).registry)
    try:
        assert [v.format for v in reg.list_versions("fmt")] == ["lightgbm"]
    finally:
        reg.close()
