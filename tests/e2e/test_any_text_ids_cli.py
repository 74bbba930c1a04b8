"""Check ids with any text in their scope, through ``model-gates run``, ``report`` and ``register`` in a subprocess.

Slice and group values hold spaces, ``=``, ``&``, brackets, accents, emoji and a line break; the
run's own report must validate against the shipped schema, render in every format, be accepted
by ``register``, and a waiver keyed on such an id must apply.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from gates.registry.local import LocalRegistry
from gates.reporters.json_report import report_schema
from tests.e2e.test_cli import cli

#: region values; the last one's model is wrong (its labels are flipped), so its checks fail
REGIONS = ["engineering crew", "a=b", "x&y", "[EU]", "Zürich", "north\nwest", "🚀 launch"]
TEAMS = ["crew & co", "Zoë=1", "[first] class", "😀"]
BAD = "🚀 launch"

POLICY = """\
version: 1
model:
  name: odd-ids
  task: binary_classification
  candidate: cand.skops
  baseline: none
data:
  eval: eval.csv
  target: label
  features: [x]
  sensitive: [team]
registry:
  uri: registry
seed: 3
{waivers}gates:
  regression:
    bootstrap: 200
    slices: [region, [region, team]]
    min_slice_size: 20
    metrics:
      accuracy: {{min: 0.6}}
  fairness:
    bootstrap: 200
    groups: [team, [region, team]]
    metrics:
      demographic_parity_difference: {{max: 0.95}}
"""
WAIVER = """\
waivers:
  - {{check: "regression.accuracy.min[region={bad}]", reason: launch cohort relabelled, expires: "2999-01-01"}}
"""


def project(folder: Path, waived: bool = True, n: int = 3500) -> pd.DataFrame:
    """Write eval.csv, a candidate trained off the bad region, and gates.yaml; return the eval frame."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=n)
    region = rng.choice(REGIONS, n)
    label = (x + 0.3 * rng.normal(size=n) > 0).astype(int)
    bad = region == BAD
    label = np.where(bad, 1 - label, label)
    frame = pd.DataFrame({"x": x, "region": region, "team": rng.choice(TEAMS, n), "label": label})
    sio.dump(LogisticRegression().fit(frame.loc[~bad, ["x"]], label[~bad]), folder / "cand.skops")
    frame.to_csv(folder / "eval.csv", index=False)
    (folder / "gates.yaml").write_text(POLICY.format(waivers=WAIVER.format(bad=BAD) if waived else ""),
                                       encoding="utf-8")
    return frame


def scope(region: str, team: str | None = None) -> str:
    text = f"region={region}".replace("\n", "\\n")
    return text if team is None else f"{text}&team={team}"


def intersection_waivers() -> list[str]:
    out = []
    for team in TEAMS:
        out += ["--waive", f"regression.accuracy.min[{scope(BAD, team)}]"]
    return [*out, "--reason", "launch cohort relabelled"]


def test_ids_of_any_text_validate_render_waive_and_register(tmp_path: Path) -> None:
    frame = project(tmp_path)
    res = cli("run", "--no-register", *intersection_waivers(), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verdict: PASS" in res.stdout and "Traceback" not in res.stderr
    out = tmp_path / "model-gates-report"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, report_schema())
    by_id = {c["id"]: c for c in report["checks"]}
    # every value is its own slice, named as it is (a line break written \n), with the typed fields beside it
    for region in REGIONS:
        cid = f"regression.accuracy.min[{scope(region)}]"
        assert (by_id[cid]["name"], by_id[cid]["kind"], by_id[cid]["scope"]) == ("accuracy", "min", scope(region))
        rows = frame[frame["region"] == region]
        model = sio.load(tmp_path / "cand.skops", trusted=sio.get_untrusted_types(file=tmp_path / "cand.skops"))
        assert by_id[cid]["observed"] == pytest.approx(accuracy_score(rows["label"], model.predict(rows[["x"]])),
                                                       abs=1e-12)
        for team in TEAMS:
            assert f"regression.accuracy.min[{scope(region, team)}]" in by_id
    # the waiver in gates.yaml and the four on the command line turned exactly the bad slices' failures into waived
    waived = sorted(i for i, c in by_id.items() if c["status"] == "waived")
    assert waived == sorted([f"regression.accuracy.min[{scope(BAD)}]",
                             *(f"regression.accuracy.min[{scope(BAD, t)}]" for t in TEAMS)])
    assert by_id[f"regression.accuracy.min[{scope(BAD)}]"]["waiver"]["reason"] == "launch cohort relabelled"
    assert by_id[f"regression.accuracy.min[{scope(BAD)}]"]["waiver"]["original_status"] == "fail"
    assert all(c["status"] == "pass" for i, c in by_id.items() if i not in waived)
    # JUnit is well-formed XML holding the ids verbatim
    cases = {c.get("name") for c in ET.parse(out / "report.xml").getroot().iter("testcase")}
    assert set(by_id) <= cases
    # the run's own report re-renders in every format, offline
    for fmt in ("md", "junit", "html", "text", "json"):
        rendered = cli("report", str(out / "report.json"), "--format", fmt, "-o", f"again.{fmt}", cwd=tmp_path)
        assert rendered.returncode == 0, (fmt, rendered.stderr)
    again = ET.parse(tmp_path / "again.junit").getroot()
    assert f"regression.accuracy.min[{scope(BAD, '😀')}]" in {c.get("name") for c in again.iter("testcase")}
    assert f"regression.accuracy.min[{scope('x&y', 'crew & co')}]" in (tmp_path / "again.md").read_text(encoding="utf-8")
    # and register accepts it for these bytes
    reg = cli("register", cwd=tmp_path)
    assert reg.returncode == 0, reg.stdout + reg.stderr
    with LocalRegistry(tmp_path / "registry") as registry:
        assert [v.version for v in registry.list_versions("odd-ids")] == [1]


def test_without_the_waivers_the_bad_slices_fail_by_their_ids(tmp_path: Path) -> None:
    project(tmp_path, waived=False)
    res = cli("run", "--no-register", cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    report = json.loads((tmp_path / "model-gates-report" / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, report_schema())
    failing = sorted(c["id"] for c in report["checks"] if c["status"] == "fail")
    assert failing == sorted([f"regression.accuracy.min[{scope(BAD)}]",
                              *(f"regression.accuracy.min[{scope(BAD, t)}]" for t in TEAMS)])
    refused = cli("register", cwd=tmp_path)
    assert refused.returncode == 2
    assert "does not admit this model: its verdict is fail" in refused.stderr
