"""Hostile multi-file models: archives planted in the registry and MLflow model folders that try to leave
their folder or to run code. Each is refused with one line (exit 2) and writes nothing outside."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from gates.cli import main
from gates.registry import open_backend
from tests.gates.models.helpers import TASKS, dataset
from tests.hostile import skops_exec_alone

xgb = pytest.importorskip("xgboost")
mlflow = pytest.importorskip("mlflow")


def _project(tmp_path: Path, candidate: str, baseline: str, **model: object) -> Path:
    X, y = dataset("binary")
    X.assign(target=y).to_csv(tmp_path / "eval.csv", index=False)
    booster = xgb.XGBClassifier(n_estimators=3, max_depth=2, random_state=0, n_jobs=1).fit(X, y)
    booster.save_model(tmp_path / "cand.ubj")
    policy = {"version": 1,
              "model": {"name": "fmt", "task": TASKS["binary"], "candidate": candidate, "baseline": baseline,
                        "positive_label": 1, **model},
              "data": {"eval": "eval.csv", "target": "target"},
              "registry": {"uri": str(tmp_path / "reg")},
              "gates": {"data": {"checks": {"row_count": {"min": 10}}}}}
    (tmp_path / "gates.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    return tmp_path / "gates.yaml"


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    sparse = any(info.type == tarfile.GNUTYPE_SPARSE for info, _ in members)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT if sparse else tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def _plant(tmp_path: Path, data: bytes, format: str) -> None:
    """Put ``data`` into the registry as version 1 at production, as another writer could."""
    staged = tmp_path / f"planted.{format}"
    staged.write_bytes(data)
    reg = open_backend("local", str(tmp_path / "reg"))
    try:
        reg.register("fmt", staged, format=format, lineage={}, by="mallory", verdict="none", alias="production",
                     forced_reason="attack")
    finally:
        reg.close()


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


ESCAPES = {
    "dotdot": [_file("model.onnx"), _file("../escaped.bin")],
    "nested-dotdot": [_file("model.onnx"), _file("data/../../escaped.bin")],
    "absolute": [_file("model.onnx"), _file("/tmp/model-gates-escaped.bin")],
    "symlink": [_link("model.onnx", "/etc/passwd", tarfile.SYMTYPE)],
    "hardlink": [_link("model.onnx", "/etc/passwd", tarfile.LNKTYPE)],
    "device": [_link("model.onnx", "", tarfile.CHRTYPE)],
    "sparse": [_link("model.onnx", "", tarfile.GNUTYPE_SPARSE)],
}


@pytest.mark.parametrize("how", sorted(ESCAPES))
def test_a_registry_archive_leaving_its_folder_is_refused(tmp_path, how, capsys):
    _plant(tmp_path, _tar(ESCAPES[how]), "onnx")
    cfg = _project(tmp_path, "cand.ubj", "registry:production")
    before = set(tmp_path.parent.iterdir())
    code = main(["run", "-c", str(cfg), "--no-register", "--report-dir", str(tmp_path / "out")])
    line = _one_line(capsys)
    assert code == 2 and not (tmp_path / "out" / "report.json").exists()
    assert "the baseline model's archive from the registry (registry:production (v1)) is refused" in line
    assert "is not a plain file inside the archive" in line
    assert set(tmp_path.parent.iterdir()) == before and not Path("/tmp/model-gates-escaped.bin").exists()


def test_a_well_formed_registry_archive_of_junk_is_a_load_error_not_a_crash(tmp_path, capsys):
    _plant(tmp_path, _tar([_file("model.onnx", b"\x08\x07not a graph")]), "onnx")
    code = main(["run", "-c", str(_project(tmp_path, "cand.ubj", "registry:production")), "--no-register",
                 "--report-dir", str(tmp_path / "out")])
    assert code == 2 and "is not an ONNX model" in _one_line(capsys)


def _mlflow_folder(tmp_path: Path, flavors: dict, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "mlmodel"
    folder.mkdir()
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _mlflow_archive(flavors: dict, files: dict[str, bytes]) -> bytes:
    return _tar([_file("MLmodel", yaml.safe_dump({"flavors": flavors}).encode()),
                 *(_file(n, d) for n, d in files.items())])


def _bytes(files: dict[str, object], root: Path) -> dict[str, bytes]:
    return {n: d(root) if callable(d) else d for n, d in files.items()}


HOSTILE_MLMODELS = {
    "data-outside": ({"xgboost": {"data": "../../../../etc/passwd"}}, {}, "is outside the model folder"),
    "data-absolute": ({"xgboost": {"data": "/etc/passwd"}}, {}, "is outside the model folder"),
    "pickled-sklearn": ({"sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle"}},
                        {"model.pkl": b"cos\nsystem\n(S'touch pwned'\ntR."}, "model.trust_pickle: true"),
    "pyfunc-loader": ({"python_function": {"loader_module": "os", "data": "x"}}, {"x": b""},
                      "model.trust_pickle: true"),
    "skops-types-said": ({"sklearn": {"pickled_model": "model.skops", "serialization_format": "skops",
                                      "skops_trusted_types": ["builtins.exec"]}},
                         {"model.skops": lambda root: skops_exec_alone(root / "pwned")}, "builtins.exec"),
}


@pytest.mark.parametrize("how", sorted(HOSTILE_MLMODELS))
def test_a_hostile_mlmodel_from_the_registry_is_refused(tmp_path, how, capsys):
    flavors, files, said = HOSTILE_MLMODELS[how]
    _plant(tmp_path, _mlflow_archive(flavors, _bytes(files, tmp_path)), "mlflow")
    code = main(["run", "-c", str(_project(tmp_path, "cand.ubj", "registry:production")), "--no-register",
                 "--report-dir", str(tmp_path / "out")])
    line = _one_line(capsys)
    assert code == 2 and said in line, line
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


@pytest.mark.parametrize("how", sorted(HOSTILE_MLMODELS))
def test_register_refuses_a_hostile_mlflow_folder(tmp_path, how, capsys):
    flavors, files, said = HOSTILE_MLMODELS[how]
    folder = _mlflow_folder(tmp_path, flavors, _bytes(files, tmp_path))
    cfg = _project(tmp_path, "cand.ubj", "none")
    code = main(["register", str(folder), "-c", str(cfg), "--name", "fmt", "--force", "--reason", "attack"])
    line = _one_line(capsys)
    assert code == 2 and said in line and "mlmodel" in line, line
    assert not (tmp_path / "reg").exists()


def test_register_refuses_an_mlflow_folder_linking_outside(tmp_path, capsys):
    import mlflow.xgboost

    X, y = dataset("binary")
    model = xgb.XGBClassifier(n_estimators=3, max_depth=2, random_state=0, n_jobs=1).fit(X, y)
    folder = tmp_path / "mlmodel"
    mlflow.xgboost.save_model(model.get_booster(), str(folder), pip_requirements=["xgboost"])
    (tmp_path / "secret.txt").write_text("do not archive me")
    (folder / "extra.txt").symlink_to(tmp_path / "secret.txt")
    code = main(["register", str(folder), "-c", str(_project(tmp_path, "cand.ubj", "none")), "--name", "fmt",
                 "--force", "--reason", "attack"])
    line = _one_line(capsys)
    assert code == 2 and "'extra.txt' in the model folder is a link to a file outside it" in line
    assert not (tmp_path / "reg").exists()
    (folder / "extra.txt").unlink()  # control: without the link the same folder registers
    assert main(["register", str(folder), "-c", str(_project(tmp_path, "cand.ubj", "none")), "--name", "fmt",
                 "--force", "--reason", "control"]) == 0
    assert np.isfinite(model.predict_proba(X)).all()


def test_a_registry_archive_model_gates_did_not_write_is_refused(tmp_path, capsys):
    # members out of order, as a tar of other files or a file that is both a graph and a tar would be:
    # its files do not archive back to its bytes, so it never loads in place of what was gated
    _plant(tmp_path, _tar([_file("z.bin", b"weights"), _file("model.onnx", b"\x08\x07")]), "onnx")
    code = main(["run", "-c", str(_project(tmp_path, "cand.ubj", "registry:production")), "--no-register",
                 "--report-dir", str(tmp_path / "out")])
    line = _one_line(capsys)
    assert code == 2 and "is not one model-gates wrote" in line and not (tmp_path / "out" / "report.json").exists()


def test_duplicate_and_pax_sparse_members_are_refused_before_anything_is_written(tmp_path):
    import shutil
    import subprocess

    from gates.models.bundle import extract_archive

    twice = tmp_path / "twice.tar"
    twice.write_bytes(_tar([_file("model.onnx", b"a"), _file("model.onnx", b"b")]))
    with pytest.raises(ValueError, match="holds 'model.onnx' twice"):
        extract_archive(twice, tmp_path / "out-twice")
    assert not any((tmp_path / "out-twice").iterdir())
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to write a PAX sparse member")
    hole = tmp_path / "src" / "model.onnx"
    hole.parent.mkdir()
    with hole.open("wb") as fh:  # 1 GiB of hole behind one byte: a few KB as a sparse member
        fh.seek(2**30)
        fh.write(b"x")
    sparse = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=pax", "-cf", str(sparse), "-C", str(hole.parent), "model.onnx"],
                   check=True)
    assert sparse.stat().st_size < 2**20
    with tarfile.open(sparse) as tar:
        (member,) = tar.getmembers()
        assert member.type == tarfile.REGTYPE and member.issparse()  # a plain type, sparse by its PAX headers
    with pytest.raises(ValueError, match="is not a plain file inside the archive"):
        extract_archive(sparse, tmp_path / "out-sparse")
    assert not any((tmp_path / "out-sparse").iterdir())
