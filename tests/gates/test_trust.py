"""Model trust is skops' own audit plus the policy's trusted_types; nothing else, whatever its module."""
from __future__ import annotations

import io
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
from gates.models.trust import (
    MAX_SKOPS_MEMBER,
    MAX_SKOPS_TOTAL,
    MSG_RUNS_CODE,
    MSG_SKOPS_UNREADABLE,
    audit_skops,
    runs_code,
    trusted_types_line,
)
from tests.hostile import declaring_sizes, skops_exec_alone, skops_exec_nested

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


def _small_skops() -> bytes:
    rng = np.random.default_rng(0)
    return sio.dumps(LogisticRegression().fit(rng.normal(size=(40, 2)), np.tile([0, 1], 20)))


def _never_parsed(monkeypatch) -> None:
    """Make skops' schema reader and audit fail the test if they are reached."""
    import skops.io as skio
    import skops.io._utils as utils

    def reached(*args, **kwargs):
        raise AssertionError("skops read the archive")

    monkeypatch.setattr(utils, "read_schema", reached)
    monkeypatch.setattr(skio, "get_untrusted_types", reached)


def test_a_skops_zip_declaring_a_huge_member_is_refused_before_skops_reads_it(tmp_path, monkeypatch):
    import zipfile

    from gates.models import Trust
    from gates.models import load_model as load_any

    data = _small_skops()
    assert len(data) < 10_000
    huge = 0xF0000000  # 3.75 GiB declared by a member of a few hundred bytes
    bomb = declaring_sizes(data, {"schema.json": huge})
    assert zipfile.ZipFile(io.BytesIO(bomb)).getinfo("schema.json").file_size == huge > MAX_SKOPS_MEMBER
    path = tmp_path / "model.skops"
    path.write_bytes(bomb)
    _never_parsed(monkeypatch)
    with pytest.raises(UserError) as err:
        load_any(path, "skops", trust=Trust(), role="candidate", where="gates.yaml:3")
    assert err.value.location == "gates.yaml:3"
    message = err.value.message
    assert message.startswith("the candidate model (model.skops): the .skops file declares member 'schema.json' ")
    assert f"{huge:,} bytes uncompressed, over the {MAX_SKOPS_MEMBER:,}-byte limit" in message
    assert "\n" not in message
    with pytest.raises(UserError, match="declares member 'schema.json'"):
        load_model(path)
    with pytest.raises(UserError, match="declares member 'schema.json'"):
        audit_skops(bomb, (), "model.skops")


def test_a_skops_zip_whose_members_declare_too_much_in_all_is_refused(tmp_path, monkeypatch):
    import zipfile

    data = _small_skops()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    each = 0x60000000  # 1.5 GiB: under the per-member limit, 4.5 GiB in all
    assert len(names) >= 3 and each <= MAX_SKOPS_MEMBER < 3 * each and MAX_SKOPS_TOTAL < 3 * each
    bomb = declaring_sizes(data, dict.fromkeys(names[:3], each))
    path = tmp_path / "model.skops"
    path.write_bytes(bomb)
    _never_parsed(monkeypatch)
    with pytest.raises(UserError) as err:
        load_model(path)
    assert err.value.location == str(path)
    total = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(bomb)).infolist())
    assert f"declares {len(names)} members of {total:,} bytes uncompressed" in err.value.message
    assert f"over the {MAX_SKOPS_TOTAL:,}-byte limit" in err.value.message


def test_a_skops_zip_within_the_limits_loads_unchanged(tmp_path):
    data = _small_skops()
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    loaded = load_model(path)
    assert loaded.estimator.coef_.shape == (1, 2)


def test_run_refuses_a_skops_zip_bomb_with_one_line_and_exit_2(tmp_path, capsys):
    from tests.gates.models.helpers import run_cli, write_project

    (tmp_path / "model.skops").write_bytes(declaring_sizes(_small_skops(), {"schema.json": 0xF0000000}))
    config = write_project(tmp_path, "binary", "model.skops")
    capsys.readouterr()
    code, report = run_cli(config)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and report is None and len(err) == 1
    assert "the candidate model (model.skops): the .skops file declares member 'schema.json'" in err[0]
