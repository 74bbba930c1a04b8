"""Check ids: any text in the scope, one line always."""
from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gates.identity import CheckId, of_report, one_line, plain_kind, unescape, untyped
from gates.reporters.json_report import check_to_dict, dumps
from gates.results import CheckResult, Status


@pytest.mark.parametrize("value", ["north west", "a=b", "x&y", "[EU]", "Zürich", "🚀", "semi;colon", "tab\there"])
def test_a_scope_of_any_text_but_a_line_break_is_kept_as_it_is(value):
    cid = CheckId("regression", "accuracy", "min", f"region={value}")
    assert str(cid) == f"regression.accuracy.min[region={value}]"
    assert untyped("regression", str(cid)) == cid


def test_a_line_break_in_a_scope_is_written_as_an_escape():
    cid = CheckId("regression", "accuracy", "min", "region=north\nwest\r")
    assert cid.scope == "region=north\nwest\r"  # the value as it is
    assert str(cid) == "regression.accuracy.min[region=north\\nwest\\r]"
    assert cid.as_dict()["scope"] == "region=north\\nwest\\r"  # report.json's scope: as in the id, one line
    assert "\n" not in str(cid) and untyped("regression", str(cid)) == cid
    assert of_report({"gate": "regression", **cid.as_dict()}) == cid


def test_a_literal_backslash_n_and_a_line_break_get_different_ids():
    broken, literal = CheckId("data", "min", scope="a\nb"), CheckId("data", "min", scope="a\\nb")
    assert (str(broken), str(literal)) == ("data.min[a\\nb]", "data.min[a\\\\nb]")
    assert untyped("data", str(literal)) == literal and untyped("data", str(broken)) == broken
    assert of_report({"gate": "data", **literal.as_dict()}) == literal


ODD = ["", "\\", "\n", "\\n", "\\\n", "\r\n", "\\\\", "a\\", "\\x2e", "]", "[", "x]\n[y", "é\\u00e9", "\t"]


@given(st.lists(st.text(alphabet=st.sampled_from(["a", "\\", "n", "r", "\n", "\r", "[", "]", " ", "x"]), max_size=8)
                | st.lists(st.sampled_from(ODD), max_size=3).map("".join), min_size=2, max_size=6, unique=True))
def test_distinct_scopes_give_distinct_ids_that_read_back_exactly(scopes):
    ids = [CheckId("regression", "accuracy", "min", s) for s in scopes]
    texts = [str(c) for c in ids]
    assert len(set(texts)) == len(texts)
    assert all("\n" not in t and "\r" not in t for t in texts)
    assert [untyped("regression", t) for t in texts] == ids
    assert [unescape(one_line(s)) for s in scopes] == scopes


@given(st.lists(st.text(alphabet=st.sampled_from(["a", "_", ".", "[", "]", "\\", "x", "2", "e", "\n"]), max_size=8),
                min_size=2, max_size=6, unique=True))
def test_distinct_schema_names_give_distinct_kinds_an_id_can_hold(names):
    kinds = [plain_kind(n) for n in names]
    assert len(set(kinds)) == len(kinds)
    for kind in kinds:
        if kind:
            assert untyped("data", str(CheckId("data", "pandera", kind, "col"))) == CheckId("data", "pandera", kind, "col")


def test_ordinary_names_and_values_keep_their_ids():
    assert plain_kind("expect_column_values_to_be_between") == "expect_column_values_to_be_between"
    assert plain_kind("str_length#2") == "str_length#2"
    assert (plain_kind("a.b"), plain_kind("a_b"), plain_kind("in[0]")) == ("a\\x2eb", "a_b", "in\\x5b0\\x5d")
    assert one_line("region=Zürich & co [EU] 🚀") == "region=Zürich & co [EU] 🚀"


def test_a_text_id_with_a_line_break_stays_on_one_line():
    r = CheckResult(id="data.min[a\nb]", gate="data", status=Status.PASS, blocking=True, message="ok")
    assert r.id == "data.min[a\\nb]"
    assert r.key == CheckId("data", "min", scope="a\nb")


def text_result(text: str, gate: str = "data") -> CheckResult:
    return CheckResult(id=text, gate=gate, status=Status.FAIL, blocking=True, message="no")


def read_back(r: CheckResult) -> tuple[CheckId, CheckId]:
    """The identity report.json gives back: from its fields, and from its id text alone (a report before the fields)."""
    check = json.loads(dumps({"checks": [check_to_dict(r)]}))["checks"][0]
    return of_report(check), untyped(check["gate"], check["id"])


@pytest.mark.parametrize("value", ["C:\\new", "a\nb", "a\nb\n", "north\nwest", "\\", "a\\", "x\\\nq",
                                   "\\x2e", "C:\\data\\new", "tab\\there"])
def test_a_text_id_holding_backslashes_reads_back_as_written(value):
    """A gate that writes its ids as text puts values in them as they are: the result writes the id
    as every id writes text, so a backslash is never read back as the start of a line break."""
    r = text_result(f"data.x[{value}]")
    want = CheckId("data", "x", scope=value)
    assert r.id == str(want) and "\n" not in r.id and "\r" not in r.id
    assert r.key == want and untyped("data", r.id) == want
    assert read_back(r) == (want, want)
    again = dataclasses.replace(r, status=Status.WAIVED)  # a waiver re-creates the result: written once, not twice
    assert (again.id, again.key) == (r.id, want)


def test_a_literal_backslash_n_and_a_line_break_in_text_ids_stay_apart():
    literal, broken = text_result("data.min[C:\\new]"), text_result("data.min[C:\new]")
    assert (literal.id, broken.id) == ("data.min[C:\\\\new]", "data.min[C:\\new]")
    assert read_back(literal) == (CheckId("data", "min", scope="C:\\new"),) * 2
    assert read_back(broken) == (CheckId("data", "min", scope="C:\new"),) * 2
    odd = text_result("data.a]b[c]")  # not the shape of an id (a NAME holds no ]): read whole as its name
    assert odd.key == CheckId("data", "a)b(c)") and read_back(odd) == (odd.key, odd.key)


@given(st.lists(st.lists(st.sampled_from(ODD + ["a", "n", "\\n"]), max_size=4).map("".join), min_size=2, max_size=6,
                unique=True))
def test_distinct_values_in_text_ids_give_distinct_ids_that_read_back_exactly(values):
    results = [text_result(f"regression.accuracy.min[region={v}]", "regression") for v in values]
    assert len({r.id for r in results}) == len(values)
    for r, v in zip(results, values):
        want = CheckId("regression", "accuracy", "min", f"region={v}")
        assert "\n" not in r.id and r.key == want and read_back(r) == (want, want)


@pytest.mark.parametrize("field, value", [("gate", "da.ta"), ("name", "acc[1]"), ("kind", "m\nin")])
def test_gate_name_and_kind_come_from_the_policy_and_must_be_plain(field, value):
    fields = {"gate": "regression", "name": "accuracy", "kind": "min", field: value}
    with pytest.raises(ValueError, match=field):
        CheckId(**fields)
