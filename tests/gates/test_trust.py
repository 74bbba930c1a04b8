"""Model trust is skops' own audit plus the policy's trusted_types; nothing else, whatever its module."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from gates.errors import UserError
from gates.loading import MSG_NOT_A_FILE, load_model
from gates.models.trust import MSG_RUNS_CODE, MSG_SKOPS_UNREADABLE, audit_skops, runs_code, trusted_types_line
from tests.hostile import skops_exec_alone, skops_exec_nested

HOSTILE = {"alone": skops_exec_alone, "nested": skops_exec_nested}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_the_hostile_file_really_runs_code_when_trusted(tmp_path, kind):
    """Control: the payload is real, so the refusals below can fail."""
    marker = tmp_path / "ran"
    data = HOSTILE[kind](marker)
    assert sio.get_untrusted_types(data=data) == ["builtins.exec"]
    sio.loads(data, trusted=["builtins.exec"])
    assert marker.read_text() == "payload ran"


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_exec_in_a_skops_file_is_refused_and_never_runs(tmp_path, kind):
    marker = tmp_path / "ran"
    path = tmp_path / "model.skops"
    path.write_bytes(HOSTILE[kind](marker))
    with pytest.raises(UserError) as err:
        load_model(path, location="gates.yaml:5")
    assert not marker.exists()
    assert err.value.location == "gates.yaml:5"
    assert "builtins.exec" in err.value.message and "trusted_types: [builtins.exec]" in err.value.message
    assert err.value.message.endswith(MSG_RUNS_CODE.format(types="builtins.exec"))


@pytest.mark.parametrize("name, dangerous", [
    ("builtins.exec", True), ("builtins.eval", True), ("os.system", True), ("subprocess.Popen", True),
    ("os.path.join", True), ("builtins.int", False), ("sklearn.tree._tree.Tree", False), ("numpy.dtype", False),
    ("cosmos.Model", False),
])
def test_names_that_run_code_are_flagged(name, dangerous):
    assert runs_code(name) is dangerous


def test_builtins_types_are_not_trusted_by_their_module(tmp_path):
    """A type from builtins, numpy or sklearn is trusted only when skops' audit says so."""
    marker = tmp_path / "ran"
    with pytest.raises(UserError):
        audit_skops(skops_exec_nested(marker), ("builtins.eval", "builtins.execfile"), "m.skops")
    assert not marker.exists()


def forest(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "forest.skops"
    sio.dump(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y), path)
    return path, X


def test_a_forest_needs_its_tree_type_trusted_and_the_error_gives_the_line(tmp_path):
    path, X = forest(tmp_path)
    needed = sio.get_untrusted_types(file=path)
    assert "sklearn.tree._tree.Tree" in needed
    with pytest.raises(UserError) as err:
        load_model(path)
    line = re.search(r"trusted_types: \[.*\]$", err.value.message).group(0)
    assert line == trusted_types_line(needed)
    trusted = yaml.safe_load(line)["trusted_types"]
    assert sorted(trusted) == sorted(needed)
    loaded = load_model(path, trusted_types=tuple(trusted))
    reference = sio.load(path, trusted=needed)
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X), reference.predict_proba(X))


def test_the_suggested_line_keeps_the_types_already_trusted(tmp_path):
    path, _ = forest(tmp_path)
    with pytest.raises(UserError) as err:
        load_model(path, trusted_types=("my.Own",))
    assert err.value.message.endswith(trusted_types_line(["my.Own", *sio.get_untrusted_types(file=path)]))


def test_a_model_of_only_default_types_needs_no_settings(tmp_path):
    path = tmp_path / "lr.skops"
    sio.dump(LogisticRegression().fit(np.eye(4), [0, 1, 0, 1]), path)
    assert sio.get_untrusted_types(file=path) == []
    assert load_model(path).format == "skops"


def test_a_file_that_is_not_a_skops_archive_is_a_user_error(tmp_path):
    path = tmp_path / "junk.skops"
    path.write_bytes(b"not a zip")
    with pytest.raises(UserError) as err:
        load_model(path)
    assert err.value.message.startswith(MSG_SKOPS_UNREADABLE.split("{")[0])


def test_quoted_type_names_are_valid_yaml():
    line = trusted_types_line(["a.B", "weird name: x", "it's"])
    assert yaml.safe_load(line)["trusted_types"] == sorted(["a.B", "weird name: x", "it's"])


@pytest.mark.parametrize("make", ["folder", "loop"])
def test_a_model_path_that_is_not_a_regular_file_is_a_user_error(tmp_path, make):
    path = tmp_path / "model.skops"
    if make == "folder":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "other.skops")
        (tmp_path / "other.skops").symlink_to(path)
    with pytest.raises(UserError) as err:
        load_model(path)
    assert err.value.message == MSG_NOT_A_FILE.format(path=path)


def test_a_skops_file_is_audited_and_built_from_one_parse(tmp_path, monkeypatch):
    """One read of the file's schema serves skops' audit and the load; the result is skops' own load."""
    import zipfile

    path, X = forest(tmp_path)
    needed = sio.get_untrusted_types(file=path)
    reads: list[str] = []
    read = zipfile.ZipFile.read

    def counting(self, name, pwd=None):
        reads.append(name if isinstance(name, str) else name.filename)
        return read(self, name, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "read", counting)
    loaded = load_model(path, trusted_types=tuple(needed))
    assert reads.count("schema.json") == 1
    monkeypatch.undo()
    np.testing.assert_array_equal(loaded.estimator.predict_proba(X), sio.load(path, trusted=needed).predict_proba(X))


def test_one_parse_refuses_what_the_audit_lists_and_builds_what_the_policy_trusts(tmp_path):
    """The single-parse load follows skops' audit both ways: refused unless trusted, built when trusted."""
    from gates.models.trust import load_skops

    marker = tmp_path / "ran"
    data = skops_exec_nested(marker)
    with pytest.raises(UserError) as err:
        load_skops(data, ("builtins.eval",), "m.skops")
    assert "builtins.exec" in err.value.message and not marker.exists()
    load_skops(data, ("builtins.exec",), "m.skops")  # what the policy vouches for is built, as skops.io.loads would
    assert marker.read_text() == "payload ran"


@pytest.mark.parametrize("data", [b"", b"PK\x05\x06" + b"\0" * 18])
def test_empty_bytes_and_an_empty_archive_are_unreadable_skops_files(data):
    from gates.models.trust import load_skops

    with pytest.raises(UserError) as err:
        load_skops(data, (), "m.skops")
    assert err.value.message.startswith(MSG_SKOPS_UNREADABLE.split("{")[0])
    assert err.value.location == "m.skops"
