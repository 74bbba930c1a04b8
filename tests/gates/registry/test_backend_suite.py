"""The contract every registry backend meets, run once per backend in ``BACKENDS``."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.errors import EnvironmentProblem, UserError
from gates.registry.base import (
    MSG_BAD_ALIAS,
    MSG_BAD_MODEL_NAME,
    MSG_NOTHING_TO_ROLL_BACK,
    RegistryBackend,
    RunEntry,
)

Files = Callable[..., Path]
LINEAGE = {"data": {"eval": {"sha256": "e" * 64, "rows": 442}}, "metrics": {"regression.roc_auc.min": 0.83},
           "git_sha": "abc123", "ci_url": "https://ci.example/run/1"}


def register(backend: RegistryBackend, path: Path, name: str = "credit", **kw: object):
    kw.setdefault("format", "skops")
    kw.setdefault("lineage", LINEAGE)
    kw.setdefault("by", "alice")
    kw.setdefault("verdict", "pass")
    return backend.register(name, path, **kw)  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_satisfies_the_protocol(backend):
    assert isinstance(backend, RegistryBackend)
    assert backend.kind in ("local", "mlflow")


def test_empty_registry_has_nothing_and_says_so(backend):
    assert backend.list_models() == []
    assert backend.resolve("credit", "production") is None
    assert backend.resolve("credit", "3") is None
    assert backend.audit_log() == []
    with pytest.raises(UserError, match="no model named 'credit'"):
        backend.list_versions("credit")
    with pytest.raises(UserError):
        backend.get_version("credit", 1)


def test_first_registration_is_version_1_with_its_lineage(backend, model_file):
    reg = register(backend, model_file(b"model-one"), alias="staging")
    mv = reg.version
    assert (mv.name, mv.version, reg.already_registered) == ("credit", 1, False)
    assert mv.model_sha256 == sha(b"model-one")
    assert (mv.format, mv.size, mv.verdict, mv.created_by) == ("skops", len(b"model-one"), "pass", "alice")
    assert mv.aliases == ("staging",)
    assert mv.lineage["metrics"] == LINEAGE["metrics"] and mv.lineage["data"] == LINEAGE["data"]
    again = backend.get_version("credit", 1)
    assert again.record()["aliases"] == ["staging"] and again.lineage == mv.lineage
    assert again.summary()["model_sha256"] == sha(b"model-one")


def test_identical_bytes_return_the_same_version(backend, model_file):
    first = register(backend, model_file(b"same"))
    second = register(backend, model_file(b"same"), lineage={"other": True})
    assert second.already_registered and second.version.version == first.version.version == 1
    assert [v.version for v in backend.list_versions("credit")] == [1]
    assert backend.get_version("credit", 1).lineage == LINEAGE


def test_versions_count_per_model(backend, model_file):
    assert register(backend, model_file(b"a1")).version.version == 1
    assert register(backend, model_file(b"a2")).version.version == 2
    assert register(backend, model_file(b"b1"), name="fraud").version.version == 1
    assert register(backend, model_file(b"a3")).version.version == 3
    assert [v.version for v in backend.list_versions("credit")] == [1, 2, 3]
    assert [v.model_sha256 for v in backend.list_versions("credit")] == [sha(b"a1"), sha(b"a2"), sha(b"a3")]
    assert backend.list_models() == ["credit", "fraud"]


def test_fetch_gives_back_the_exact_bytes_with_the_format_suffix(backend, model_file):
    register(backend, model_file(b"\x00binary\xffmodel" * 1000))
    path = backend.fetch("credit", 1)
    assert path.read_bytes() == b"\x00binary\xffmodel" * 1000
    assert path.suffix == ".skops"
    register(backend, model_file(b"joblib-bytes", ".joblib"), format="joblib")
    assert backend.fetch("credit", 2).suffix == ".joblib"


def test_resolve_by_alias_and_by_version(backend, model_file):
    register(backend, model_file(b"v1"), alias="production")
    register(backend, model_file(b"v2"), alias="staging")
    assert backend.resolve("credit", "production").version == 1
    assert backend.resolve("credit", "staging").version == 2
    assert backend.resolve("credit", "2").model_sha256 == sha(b"v2")
    assert backend.resolve("credit", "7") is None
    assert backend.resolve("credit", "canary") is None
    assert backend.resolve("other", "production") is None


def test_promote_moves_the_alias_and_is_audited(backend, model_file):
    register(backend, model_file(b"v1"), alias="production")
    register(backend, model_file(b"v2"))
    move = backend.set_alias("credit", "production", 2, by="bob", reason="better")
    assert (move.from_version, move.to_version, move.moved) == (1, 2, True)
    assert backend.resolve("credit", "production").version == 2
    assert backend.get_version("credit", 1).aliases == ()
    events = [e for e in backend.audit_log("credit") if e.kind == "alias"]
    assert [(e.alias, e.version, e.by, e.record["from_version"]) for e in events][-1] == ("production", 2, "bob", 1)
    assert not backend.set_alias("credit", "production", 2, by="bob").moved


def test_promote_to_a_missing_version_is_a_user_error(backend, model_file):
    register(backend, model_file(b"v1"))
    with pytest.raises(UserError, match="has no version 5"):
        backend.set_alias("credit", "production", 5, by="bob")
    with pytest.raises(UserError, match="no model named 'nope'"):
        backend.set_alias("nope", "production", 1, by="bob")


def test_rollback_returns_to_each_earlier_holder_in_turn(backend, model_file):
    for i in (1, 2, 3):
        register(backend, model_file(f"v{i}".encode()))
        backend.set_alias("credit", "production", i, by="bob")
    move = backend.rollback("credit", "production", by="carol")
    assert (move.from_version, move.to_version, move.kind) == (3, 2, "rollback")
    assert backend.resolve("credit", "production").version == 2
    assert backend.rollback("credit", "production", by="carol").to_version == 1
    with pytest.raises(UserError) as err:
        backend.rollback("credit", "production", by="carol")
    assert str(err.value) == MSG_NOTHING_TO_ROLL_BACK.format(alias="production", name="credit", held="v1")
    rollbacks = [e for e in backend.audit_log("credit") if e.kind == "rollback"]
    assert [(e.record["from_version"], e.version, e.by) for e in rollbacks] == [(3, 2, "carol"), (2, 1, "carol")]


def test_rollback_after_a_new_promote_goes_to_the_version_just_replaced(backend, model_file):
    for i in (1, 2, 3):
        register(backend, model_file(f"v{i}".encode()))
    backend.set_alias("credit", "production", 1, by="bob")
    backend.set_alias("credit", "production", 2, by="bob")
    backend.rollback("credit", "production", by="bob")
    backend.set_alias("credit", "production", 3, by="bob")
    assert backend.rollback("credit", "production", by="bob").to_version == 1


def test_rollback_of_an_unset_alias_is_a_user_error(backend, model_file):
    register(backend, model_file(b"v1"), alias="staging")
    with pytest.raises(UserError, match="no alias 'production'"):
        backend.rollback("credit", "production", by="bob")
    with pytest.raises(UserError, match="no earlier version"):
        backend.rollback("credit", "staging", by="bob")


def test_runs_are_audited_in_order_with_their_verdicts(backend, model_file):
    failed = RunEntry(verdict="fail", by="ci", ci_url="https://ci/1", record={"failing": ["regression.auc.min"]})
    backend.record_run("credit", failed)
    passed = RunEntry(verdict="pass", by="ci", ci_url="https://ci/2", record={"failing": []})
    register(backend, model_file(b"v1"), run=passed, alias="staging")
    log = backend.audit_log("credit")
    assert [e.kind for e in log] == ["run", "run", "register", "alias"]
    assert (log[0].verdict, log[0].ci_url, log[0].record["failing"]) == ("fail", "https://ci/1", ["regression.auc.min"])
    assert log[0].version is None
    assert (log[1].verdict, log[1].version, log[1].record["registered_version"]) == ("pass", 1, 1)
    assert [e.seq for e in log] == sorted(e.seq for e in log)
    assert [v.version for v in backend.list_versions("credit")] == [1]


def test_a_second_run_of_the_same_bytes_is_audited_as_already_registered(backend, model_file):
    run = RunEntry(verdict="pass", by="ci", ci_url=None, record={})
    register(backend, model_file(b"v1"), run=run)
    register(backend, model_file(b"v1"), run=run)
    runs = [e for e in backend.audit_log("credit") if e.kind == "run"]
    assert [r.record["already_registered"] for r in runs] == [False, True]
    assert len([e for e in backend.audit_log("credit") if e.kind == "register"]) == 1


def test_forced_registration_is_marked_and_audited(backend, model_file):
    reg = register(backend, model_file(b"v1"), verdict="fail", forced_reason="hotfix, gates waived by CTO")
    assert reg.version.verdict == "fail"
    forced = [e for e in backend.audit_log("credit") if e.kind == "forced_register"]
    assert len(forced) == 1 and forced[0].record["reason"] == "hotfix, gates waived by CTO"


def test_bytes_that_changed_since_gating_are_refused(backend, model_file):
    with pytest.raises(EnvironmentProblem, match="changed since it was gated"):
        register(backend, model_file(b"new bytes"), expected_sha256=sha(b"gated bytes"))
    assert backend.resolve("credit", "1") is None


def test_tags(backend, model_file):
    register(backend, model_file(b"v1"), tags={"team": "risk"})
    backend.set_tag("credit", 1, "ticket", "RISK-12", by="bob")
    assert dict(backend.get_version("credit", 1).tags) == {"team": "risk", "ticket": "RISK-12"}


def test_everything_survives_reopening(reopen, model_file):
    first = reopen()
    register(first, model_file(b"v1"), alias="production")
    register(first, model_file(b"v2"))
    first.set_alias("credit", "production", 2, by="bob")
    first.close()
    second = reopen()
    assert [v.version for v in second.list_versions("credit")] == [1, 2]
    assert second.resolve("credit", "production").version == 2
    assert second.rollback("credit", "production", by="bob").to_version == 1
    assert second.fetch("credit", 2).read_bytes() == b"v2"
    assert register(second, model_file(b"v1")).already_registered


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "..", ".hidden", "a b", "x" * 200, "a\\b", "-lead", "a..b"])
def test_bad_model_names_are_refused_everywhere(backend, model_file, name):
    path = model_file(b"v1")
    expected = MSG_BAD_MODEL_NAME.format(name=name)
    for call in (lambda: register(backend, path, name=name), lambda: backend.resolve(name, "production"),
                 lambda: backend.list_versions(name), lambda: backend.get_version(name, 1),
                 lambda: backend.rollback(name, "production", by="x"),
                 lambda: backend.record_run(name, RunEntry("fail", "x", None, {}))):
        with pytest.raises(UserError) as err:
            call()
        assert str(err.value) == expected
    assert backend.list_models() == []


@pytest.mark.parametrize("alias", ["", "v3", "V12", "latest", "1abc", "a/b", "../prod", "pro duction", "x" * 65])
def test_bad_aliases_are_refused(backend, model_file, alias):
    register(backend, model_file(b"v1"))
    with pytest.raises(UserError) as err:
        backend.set_alias("credit", alias, 1, by="bob")
    assert str(err.value) == MSG_BAD_ALIAS.format(alias=alias)
    with pytest.raises(UserError):
        register(backend, model_file(b"v2"), alias=alias)
    assert [v.version for v in backend.list_versions("credit")] == [1]


@pytest.mark.parametrize("version", [0, -1, "x", "1.5"])
def test_bad_versions_are_refused(backend, model_file, version):
    register(backend, model_file(b"v1"))
    with pytest.raises(UserError, match="invalid version"):
        backend.get_version("credit", version)  # type: ignore[arg-type]
