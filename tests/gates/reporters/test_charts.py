"""The report's performance and drift charts: stable ids, the report's own numbers, hostile curves.

Real runs use scikit-learn's bundled data sets (breast cancer, iris, diabetes) scored by scikit-learn
models, written as prediction columns; the pages are opened in headless Chromium when it is installed.
"""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from gates.reporters.charts import CANDIDATE, PRODUCTION
from gates.reporters.html import render_html
from gates.reporters.markdown import render_markdown

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "golden" / "report_all_gates.json"
REPORT = json.loads(FIXTURE.read_text())


def figure(html: str, fid: str) -> str:
    """Return the text of ``<figure id=fid>`` (the charts do not nest figures)."""
    start = html.index(f'id="{fid}"')
    return html[start:html.index("</figure>", start)]


def polyline(svg: str, stroke: str) -> list[tuple[float, float]]:
    """Return the points of the first polyline drawn in ``stroke`` (all its runs joined)."""
    runs = re.findall(r'<polyline points="([^"]+)" fill="none" stroke="' + stroke, svg)
    assert runs, stroke
    return [tuple(map(float, p.split(","))) for p in runs[0].split()]


def test_fixture_charts_have_stable_ids_and_their_order():
    html = render_html(REPORT)
    ids = re.findall(r'<figure class="chart-section[^"]*" id="(chart-[^"]+)"', html)
    # drift: the failing ks column, the warning psi one, then the passing one nearest its limit
    assert ids == ["chart-roc", "chart-pr", "chart-calibration", "chart-confusion",
                   "chart-drift-age", "chart-drift-income", "chart-drift-region"]
    assert html.index('id="blocking"') < html.index('id="chart-roc"') < html.index('id="checks"')


def test_roc_and_pr_lines_are_the_reports_points():
    html = render_html(REPORT)
    curves = REPORT["curves"]
    for fid, key, x, y in (("chart-roc", "roc", "fpr", "tpr"), ("chart-pr", "pr", "recall", "precision")):
        svg = figure(html, fid)
        for role, stroke in (("candidate", CANDIDATE), ("baseline", PRODUCTION)):
            data = curves[key][0][role]
            pts = polyline(svg, stroke)
            assert len(pts) == len(data[x])
            xs, ys = np.array(pts).T
            fx, fy = np.array(data[x]), np.array(data[y])
            # pixels are an affine image of the data: fit it on two points, check every other one
            ax_ = np.polyfit(fx, xs, 1)
            ay_ = np.polyfit(fy, ys, 1)
            assert np.abs(np.polyval(ax_, fx) - xs).max() < 0.02 and np.abs(np.polyval(ay_, fy) - ys).max() < 0.02
        summary = "AUC" if key == "roc" else "average precision"
        area = "auc" if key == "roc" else "average_precision"
        for role, name in (("candidate", "candidate"), ("baseline", "production")):
            from gates.reporters._format import num

            assert f"{name} {summary} {num(curves[key][0][role][area])}" in svg


def test_confusion_cells_and_calibration_points_are_the_reports():
    html = render_html(REPORT)
    conf = REPORT["curves"]["confusion"]
    svg = figure(html, "chart-confusion")
    for role in ("candidate", "baseline"):
        for i, row in enumerate(conf[role]):
            for j, n in enumerate(row):
                assert f"actual {conf['labels'][i]}, predicted {conf['labels'][j]}: {n}</title>" in svg
    cal = REPORT["curves"]["calibration"][0]["candidate"]
    pts = polyline(figure(html, "chart-calibration"), CANDIDATE)
    assert len(pts) == sum(1 for n in cal["count"] if n)


def test_drift_bins_are_drawn_in_axis_order_with_both_shares():
    html = render_html(REPORT)
    svg = figure(html, "chart-drift-income")
    check = next(c for c in REPORT["checks"] if c["id"] == "data.drift.max[income]")
    labels = re.findall(r'text-anchor="end"[^>]*>(\[[^<]+\))</text>', svg)
    lower = [float(x[1:].split(",")[0]) for x in labels]
    assert len(labels) == len(check["details"]["bins"]) and lower == sorted(lower)
    for b in check["details"]["bins"]:
        assert f"reference {100 * b['reference']:.2f}%" in svg and f"eval {100 * b['eval']:.2f}%" in svg


def test_many_passing_drift_checks_draw_only_the_nearest_three():
    report = copy.deepcopy(REPORT)
    region = next(c for c in report["checks"] if c["id"] == "data.drift.max[region]")
    for i, observed in enumerate((0.01, 0.15, 0.02, 0.19, 0.05)):
        report["checks"].append({**region, "id": f"data.drift.max[c{i}]", "observed": observed})
    ids = re.findall(r'id="(chart-drift-[^"]+)"', render_html(report))
    assert ids == ["chart-drift-age", "chart-drift-income", "chart-drift-c3", "chart-drift-c1", "chart-drift-c4"]


@pytest.mark.parametrize("bad", [
    {"roc": "nope"}, {"roc": [{"class": 1, "candidate": {"fpr": [0, 1], "tpr": [0]}}]},
    {"roc": [{"class": "<script>x</script>", "candidate": {"fpr": [0, "a", 1], "tpr": [0, 1, 1], "auc": "x"}}]},
    {"confusion": {"labels": [0, 1], "candidate": [[1, 2], [3]]}}, {"confusion": {"labels": "ab"}},
    {"residuals": {"edges": [0, 1], "candidate": {"counts": [1, 2, 3]}}},
    {"calibration": [{"class": 1, "candidate": {"count": [1], "score_sum": [], "positives": [1]}}]},
    {"drift": {"age": {"bins": [{"bin": "x", "reference": "a", "eval": 1}]}}},
])
def test_malformed_curves_draw_nothing_and_never_crash(bad: dict[str, Any]):
    report = {**REPORT, "curves": bad}
    html = render_html(report)
    assert "<script>x</script>" not in html
    for kind in bad:
        if kind != "drift":
            assert f'id="chart-{kind}"' not in html or "&lt;script&gt;" in html


def test_a_class_label_is_escaped_in_the_svg():
    report = copy.deepcopy(REPORT)
    for key in ("roc", "pr", "calibration"):
        report["curves"][key].append({**report["curves"][key][0], "class": '<b>"x"</b>'})
    html = render_html(report)
    assert '<b>"x"</b>' not in html and "class &lt;b&gt;&quot;x&quot;&lt;/b&gt; vs rest" not in html
    assert "class &lt;b&gt;\"x\"&lt;/b&gt; vs rest" in html


# ---------------------------------------------------------------- real runs on scikit-learn's data

POLICY = """\
version: 1
model:
  name: {name}
  task: {task}
  candidate: {candidate}
  baseline: {baseline}
{extra}data:
  eval: eval.csv
  target: target
seed: 3
gates:
  regression:
    bootstrap: 200
    metrics:
{metrics}
"""


def _binary(folder: Path) -> Path:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True)
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.5, random_state=0)
    cand = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(Xa, ya)
    base = DecisionTreeClassifier(max_depth=3, random_state=0).fit(Xa, ya)
    frame = pd.DataFrame({"target": yb, "cand_pred": cand.predict(Xb), "cand_score": cand.predict_proba(Xb)[:, 1],
                          "base_pred": base.predict(Xb), "base_score": base.predict_proba(Xb)[:, 1]})
    frame.to_csv(folder / "eval.csv", index=False)
    (folder / "gates.yaml").write_text(POLICY.format(
        name="cancer", task="binary_classification", candidate="{predictions: cand_pred, scores: cand_score}",
        baseline="{predictions: base_pred, scores: base_score}", extra="  positive_label: 1\n",
        metrics="      roc_auc: {min: 0.9, max_drop: 0.02}\n      accuracy: {max_drop: 0.03}"))
    return folder / "gates.yaml"


def _multiclass(folder: Path) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[:75], order[75:]
    cand = LogisticRegression(max_iter=500).fit(X[train], y[train])
    base = GaussianNB().fit(X[train], y[train])
    frame = pd.DataFrame({"target": y[test], "cand_pred": cand.predict(X[test]), "base_pred": base.predict(X[test])})
    for k in range(3):
        frame[f"c{k}"] = cand.predict_proba(X[test])[:, k]
        frame[f"b{k}"] = base.predict_proba(X[test])[:, k]
    frame.to_csv(folder / "eval.csv", index=False)
    (folder / "gates.yaml").write_text(POLICY.format(
        name="iris", task="multiclass_classification", candidate="{predictions: cand_pred, scores: [c0, c1, c2]}",
        baseline="{predictions: base_pred, scores: [b0, b1, b2]}", extra="",
        metrics="      accuracy: {min: 0.8}"))
    return folder / "gates.yaml"


def _regression(folder: Path) -> Path:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    cand = Ridge(alpha=0.1).fit(X[::2], y[::2])
    base = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X[::2], y[::2])
    frame = pd.DataFrame({"target": y[1::2], "cand_pred": cand.predict(X[1::2]), "base_pred": base.predict(X[1::2])})
    frame.to_csv(folder / "eval.csv", index=False)
    (folder / "gates.yaml").write_text(POLICY.format(
        name="diabetes", task="regression", candidate="{predictions: cand_pred}",
        baseline="{predictions: base_pred}", extra="", metrics="      mae: {max_drop: 5}"))
    return folder / "gates.yaml"


def _run(policy: Path) -> tuple[dict[str, Any], str]:
    out = policy.parent / "out"
    res = subprocess.run([sys.executable, "-m", "gates", "run", "-c", str(policy), "--no-register", "--report-dir",
                          str(out)], cwd=policy.parent, capture_output=True, text=True, timeout=300, check=False,
                         env={**__import__("os").environ, "CI": "true"})
    assert res.returncode in (0, 1), res.stdout + res.stderr
    again = subprocess.run([sys.executable, "-m", "gates", "report", str(out / "report.json"), "--format", "html"],
                           capture_output=True, text=True, timeout=120, check=True)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert again.stdout == html  # drawn from report.json alone
    return json.loads((out / "report.json").read_text()), html


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], str, Path]]:
    out = {}
    for name, make in (("binary", _binary), ("multiclass", _multiclass), ("regression", _regression)):
        folder = tmp_path_factory.mktemp(name)
        report, html = _run(make(folder))
        out[name] = (report, html, folder)
    return out


def test_binary_run_draws_sklearns_curves(runs):
    report, html, folder = runs["binary"]
    frame = pd.read_csv(folder / "eval.csv")
    y = frame["target"] == 1
    roc = report["curves"]["roc"][0]
    assert roc["candidate"]["auc"] == pytest.approx(skm.roc_auc_score(y, frame["cand_score"]))
    assert roc["baseline"]["auc"] == pytest.approx(skm.roc_auc_score(y, frame["base_score"]))
    for fid in ("chart-roc", "chart-pr", "chart-calibration", "chart-confusion"):
        assert f'id="{fid}"' in html
    assert 'id="chart-residuals"' not in html


def test_multiclass_run_draws_one_curve_per_class(runs):
    report, html, folder = runs["multiclass"]
    frame = pd.read_csv(folder / "eval.csv")
    assert [e["class"] for e in report["curves"]["roc"]] == [0, 1, 2]
    for k, entry in enumerate(report["curves"]["roc"]):
        assert entry["candidate"]["auc"] == pytest.approx(skm.roc_auc_score(frame["target"] == k, frame[f"c{k}"]))
    assert report["curves"]["confusion"]["candidate"] == skm.confusion_matrix(
        frame["target"], frame["cand_pred"], labels=[0, 1, 2]).tolist()
    assert figure(html, "chart-roc").count("<svg") == 3 and "class 2 vs rest" in figure(html, "chart-roc")
    assert figure(html, "chart-confusion").count("<svg") == 2


def test_regression_run_draws_residuals(runs):
    report, html, folder = runs["regression"]
    frame = pd.read_csv(folder / "eval.csv")
    res = report["curves"]["residuals"]
    r = frame["target"] - frame["cand_pred"]
    assert res["candidate"]["rmse"] == pytest.approx(np.sqrt(np.mean(r ** 2)))
    assert sum(res["candidate"]["counts"]) == len(frame)
    assert 'id="chart-residuals"' in html and 'id="chart-roc"' not in html
    assert "```mermaid" in render_markdown(report)


def _shots() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("screenshot_report", REPO / "scripts" / "screenshot_report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


SHOTS = _shots()


@pytest.mark.skipif(SHOTS.find_chromium() is None,
                    reason="chromium not installed: apt-get update && apt-get install -y chromium")
def test_real_reports_load_cleanly_in_chromium_at_phone_and_desktop_widths(runs, tmp_path: Path):
    for name, (_, _, folder) in runs.items():
        reports = SHOTS.shoot(folder / "out" / "report.html", tmp_path / name, [390, 1280], SHOTS.find_chromium())
        assert [r.problems for r in reports] == [[], []], name
