"""A model's sha256 is computed from the very bytes it was loaded from: each model file is read once.

Each test arms an audit hook that replaces a model file with other, valid model bytes the second
time the file is opened (a swap between a hashing read and a loading read). With one read, the
model loaded and the sha256 reported are both the original's; with two, the loaded model would be
reported under the other bytes' digest.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from gates.models import Trust, load_model
from gates.models.bundle import archive_sha256, folder_files
from tests.gates.models.helpers import dataset

#: absolute path -> [opens seen, bytes to write before the second open]
_ARMED: dict[str, list] = {}


def _hook(event: str, args: tuple) -> None:
    if event != "open" or not _ARMED or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    key = os.path.abspath(os.fsdecode(args[0]))
    armed = _ARMED.get(key)
    if armed is None:
        return
    armed[0] += 1
    if armed[0] == 2:
        other = armed[1]
        del _ARMED[key]  # writing opens the file too
        with open(key, "wb") as fh:
            fh.write(other)
        _ARMED[key] = armed


sys.addaudithook(_hook)


@pytest.fixture
def swap():
    """Return arm(path, other_bytes) -> the list whose first item counts the opens of ``path``."""
    def arm(path: Path, other: bytes) -> list:
        _ARMED[os.path.abspath(path)] = [0, other]
        return _ARMED[os.path.abspath(path)]

    yield arm
    _ARMED.clear()


def _binary():
    X, y = dataset("binary")
    return X.iloc[:, :4], y


def _two_xgboosts():
    """Return (X, the xgboost model to load, another whose bytes replace it)."""
    xgb = pytest.importorskip("xgboost")
    X, y = _binary()
    return (X, xgb.XGBClassifier(n_estimators=3, max_depth=2, random_state=0, n_jobs=1).fit(X, y),
            xgb.XGBClassifier(n_estimators=9, max_depth=3, random_state=0, n_jobs=1).fit(X, y))


def _two_classifiers():
    """Return (X, the model to load, another model whose bytes replace it)."""
    X, y = _binary()
    return X, LogisticRegression(C=1.0).fit(X, y), LogisticRegression(C=1e-4).fit(X, y)


def _load(path: Path, fmt: str, **trust: object):
    return load_model(path, fmt, trust=Trust(**trust), role="candidate", where="gates.yaml:3")


def _check_one_file(path: Path, fmt: str, other: bytes, swap: Callable, scores: Callable, X, **trust) -> None:
    original = path.read_bytes()
    assert original != other
    opens = swap(path, other)
    loaded = _load(path, fmt, **trust)
    assert opens[0] == 1, f"{path.name} was opened {opens[0]} times"
    assert loaded.sha256 == hashlib.sha256(original).hexdigest()
    out = loaded.adapter.predict(X, "binary_classification")
    np.testing.assert_allclose(out.proba[:, 1], scores(X), rtol=1e-6, atol=1e-7)


def test_a_skops_file_is_hashed_and_loaded_from_one_read(tmp_path, swap):
    X, first, other = _two_classifiers()
    path = tmp_path / "m.skops"
    sio.dump(first, path)
    _check_one_file(path, "skops", sio.dumps(other), swap, lambda X: first.predict_proba(X)[:, 1], X)


def test_the_plain_skops_loader_hashes_and_loads_one_read(tmp_path, swap):
    from gates.loading import load_model as load_plain

    X, first, other = _two_classifiers()
    path = tmp_path / "m.skops"
    sio.dump(first, path)
    original = path.read_bytes()
    opens = swap(path, sio.dumps(other))
    loaded = load_plain(path)
    assert opens[0] == 1 and loaded.sha256 == hashlib.sha256(original).hexdigest()
    np.testing.assert_allclose(loaded.estimator.coef_, first.coef_)


def test_a_pickle_is_hashed_and_loaded_from_one_read(tmp_path, swap):
    import io

    import joblib

    X, first, other = _two_classifiers()
    path = tmp_path / "m.joblib"
    joblib.dump(first, path)
    buf = io.BytesIO()
    joblib.dump(other, buf)
    _check_one_file(path, "pickle", buf.getvalue(), swap, lambda X: first.predict_proba(X)[:, 1], X,
                    trust_pickle=True)


def test_boosters_are_hashed_and_loaded_from_one_read(tmp_path, swap):
    lgb = pytest.importorskip("lightgbm")
    X, first, other = _two_xgboosts()
    y = dataset("binary")[1]
    first.save_model(tmp_path / "m.ubj")
    other.save_model(tmp_path / "other.ubj")
    _check_one_file(tmp_path / "m.ubj", "xgboost", (tmp_path / "other.ubj").read_bytes(), swap,
                    lambda X: first.predict_proba(X)[:, 1], X)
    kw = {"num_leaves": 4, "random_state": 0, "n_jobs": 1, "verbose": -1}
    one, two = lgb.LGBMClassifier(n_estimators=3, **kw).fit(X, y), lgb.LGBMClassifier(n_estimators=9, **kw).fit(X, y)
    one.booster_.save_model(tmp_path / "m.txt")
    two.booster_.save_model(tmp_path / "other.txt")
    _check_one_file(tmp_path / "m.txt", "lightgbm", (tmp_path / "other.txt").read_bytes(), swap,
                    lambda X: one.predict_proba(X)[:, 1], X)


def test_an_onnx_graph_and_its_external_data_are_hashed_and_loaded_from_one_read(tmp_path, swap):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from tests.gates.models.test_onnx import save_linear_with_external_data

    X, _ = dataset("regression")
    coef, intercept = np.linspace(-1, 1, X.shape[1]), 2.0
    for name, (c, b) in {"orig": (coef, intercept), "other": (coef * 50, -7.0)}.items():
        (tmp_path / name).mkdir()
        save_linear_with_external_data(c, b, tmp_path / name / "m.onnx")
    names = ("m.onnx", "weights.bin")
    want = archive_sha256([(n, tmp_path / "orig" / n) for n in names])
    for swapped in names:
        model = tmp_path / f"swap-{swapped}"
        shutil.copytree(tmp_path / "orig", model)
        opens = swap(model / swapped, (tmp_path / "other" / swapped).read_bytes())
        loaded = _load(model / "m.onnx", "onnx")
        assert opens[0] == 1, f"{swapped} was opened {opens[0]} times"
        assert loaded.sha256 == want
        out = loaded.adapter.predict(X, "regression")
        np.testing.assert_allclose(out.labels, X.to_numpy() @ coef + intercept, rtol=1e-5, atol=1e-5)


def test_an_mlflow_folder_is_hashed_and_loaded_from_one_read_of_each_file(tmp_path, swap):
    mlflow_xgb = pytest.importorskip("mlflow.xgboost")
    X, first, other = _two_xgboosts()
    mlflow_xgb.save_model(first.get_booster(), str(tmp_path / "model"), pip_requirements=["xgboost"])
    mlflow_xgb.save_model(other.get_booster(), str(tmp_path / "other"), pip_requirements=["xgboost"])
    data = next(n for n, _ in folder_files(tmp_path / "model") if n.endswith((".ubj", ".json", ".xgb")))
    want = archive_sha256(folder_files(tmp_path / "model"))
    opens = swap(tmp_path / "model" / data, (tmp_path / "other" / data).read_bytes())
    loaded = _load(tmp_path / "model", "mlflow")
    assert opens[0] == 1 and loaded.sha256 == want
    out = loaded.adapter.predict(X, "binary_classification")
    np.testing.assert_allclose(out.proba[:, 1], first.predict_proba(X)[:, 1], rtol=1e-6, atol=1e-7)
    assert loaded.uri == str(tmp_path / "model")
