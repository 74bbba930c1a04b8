"""Check ids: any text in the scope, one line always."""
from __future__ import annotations

import pytest

from gates.identity import CheckId, of_report, one_line, untyped
from gates.results import CheckResult, Status


@pytest.mark.parametrize("value", ["north west", "a=b", "x&y", "[EU]", "Zürich", "🚀", "semi;colon", "tab\there"])
def test_a_scope_of_any_text_but_a_line_break_is_kept_as_it_is(value):
    cid = CheckId("regression", "accuracy", "min", f"region={value}")
    assert str(cid) == f"regression.accuracy.min[region={value}]"
    assert untyped("regression", str(cid)) == cid


def test_a_line_break_in_a_scope_is_written_as_an_escape():
    cid = CheckId("regression", "accuracy", "min", "region=north\nwest\r")
    assert cid.scope == "region=north\\nwest\\r"
    assert str(cid) == "regression.accuracy.min[region=north\\nwest\\r]"
    assert "\n" not in str(cid) and untyped("regression", str(cid)) == cid
    assert of_report({"gate": "regression", **cid.as_dict()}) == cid  # escaping twice changes nothing
    assert one_line(one_line("a\nb")) == "a\\nb"


def test_a_text_id_with_a_line_break_stays_on_one_line():
    r = CheckResult(id="data.min[a\nb]", gate="data", status=Status.PASS, blocking=True, message="ok")
    assert r.id == "data.min[a\\nb]"
    assert r.key == CheckId("data", "min", scope="a\\nb")


@pytest.mark.parametrize("field, value", [("gate", "da.ta"), ("name", "acc[1]"), ("kind", "m\nin")])
def test_gate_name_and_kind_come_from_the_policy_and_must_be_plain(field, value):
    fields = {"gate": "regression", "name": "accuracy", "kind": "min", field: value}
    with pytest.raises(ValueError, match=field):
        CheckId(**fields)
