"""Interval settings: defaults, parsing a section, the replicates rule, and the one schema of the keys."""
from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from gates.checks import gate_registry
from gates.stats import Correction, IntervalSettings, Rule, replicates_for
from gates.stats.settings import KEYS


def test_defaults_are_the_documented_ones():
    s = IntervalSettings()
    assert (s.decision, s.on_inconclusive, s.confidence, s.bootstrap, s.multiple_testing) == (
        Rule.NON_INFERIORITY, "fail", 0.95, 1000, Correction.HOLM)
    assert IntervalSettings.of({}) == s


def test_of_reads_only_the_interval_keys():
    s = IntervalSettings.of({"decision": "point", "confidence": 0.9, "bootstrap": 300,
                             "multiple_testing": "bonferroni", "on_inconclusive": "warn", "metrics": {}})
    assert s == IntervalSettings(Rule.POINT, "warn", 0.9, 300, Correction.BONFERRONI)
    assert s.as_dict() == {"decision": "point", "on_inconclusive": "warn", "confidence": 0.9, "bootstrap": 300,
                           "multiple_testing": "bonferroni"}


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99, 1 - 0.05 / 12, 1 - 0.05 / 40])
def test_replicates_leave_fifty_beyond_each_end(level):
    b = replicates_for(level)
    # the percentile interval's ends sit at ranks (1-L)/2 * B from each side
    assert (1 - level) / 2 * b >= 50 - 1e-9
    assert (1 - level) / 2 * (b - 1) < 50
    assert replicates_for(level, b + 7) == b + 7


def test_family_replicates_follow_the_most_adjusted_level():
    s = IntervalSettings(bootstrap=1000)
    assert s.replicates(1) == 2000
    assert s.replicates(12) == 24000
    assert IntervalSettings(multiple_testing=Correction.NONE).replicates(12) == 2000
    assert IntervalSettings(bootstrap=50_000).replicates(3) == 50_000


def test_replicates_reject_levels_outside_the_unit_interval():
    with pytest.raises(ValueError):
        replicates_for(1.0)


def test_every_interval_gate_references_the_one_declaration():
    shared = json.loads(resources.files("gates").joinpath("schemas", "interval_settings.schema.json").read_text())
    assert set(shared["$defs"]) == set(KEYS)
    for name in ("regression", "fairness", "robustness"):
        raw = json.loads(resources.files("gates").joinpath("schemas", f"gate_{name}.schema.json").read_text())
        for key in KEYS:
            assert raw["properties"][key] == {"$ref": f"#/$defs/{key}"}, (name, key)
        assert gate_registry()[name].schema()["$defs"] == shared["$defs"]


def test_settings_schema_rejects_what_the_type_rejects():
    import jsonschema

    schema = gate_registry()["fairness"].schema()
    ok = {"metrics": {"demographic_parity_ratio": {"min": 0.8}}}
    jsonschema.Draft7Validator(schema).validate(ok)
    for bad in ({"confidence": 1.0}, {"bootstrap": 10}, {"multiple_testing": "sidak"}, {"decision": "exact"}):
        assert list(jsonschema.Draft7Validator(schema).iter_errors({**ok, **bad})), bad
    assert np.isclose(IntervalSettings.of({"confidence": 0.9}).alpha, 0.1)


def test_report_schema_enumerates_the_one_reason_list():
    from gates.identity import Reason
    from gates.reporters.json_report import report_schema

    check = report_schema()["definitions"]["check"]["properties"]
    assert check["reason"]["enum"] == [r.value for r in Reason]
    assert "not_distributable" in check["reason"]["enum"]
    assert "interval_straddles_margin" not in check["reason"]["enum"] and "no_scores" not in check["reason"]["enum"]
