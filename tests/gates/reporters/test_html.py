"""report.html: structure, self-containment, escaping, and a real browser load.

The fixture ``tests/golden/report_all_gates.json`` is written by hand and has failures in every
gate. The browser test needs Chromium (``apt-get update && apt-get install -y chromium``) and is
skipped with that hint when it is missing.
"""
from __future__ import annotations

import importlib.util
import json
import re
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gates.reporters import write_all
from gates.reporters.html import render_html

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden"
FIXTURE = GOLDEN / "report_all_gates.json"
REPORT = json.loads(FIXTURE.read_text())
CI_URL = REPORT["run"]["ci"]["url"]


class Page(HTMLParser):
    """Collect what the assertions need: elements with attributes, text, SVGs per chart section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.sections: list[dict[str, Any]] = []  # chart sections: kind, id, svg count, svg text
        self.text: list[str] = []
        self._open: list[str] = []
        self._section_depth: list[int] = []
        self._in_svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag in VOID:
            return
        self._open.append(tag)
        if "chart-section" in a.get("class", "").split():
            self.sections.append({"kind": a.get("data-kind"), "id": a.get("id"), "svgs": 0, "svg_text": []})
            self._section_depth.append(len(self._open))
        if tag == "svg":
            self._in_svg += 1
            if self._section_depth and self._in_svg == 1:
                self.sections[-1]["svgs"] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self._open and self._open[-1] == tag, f"</{tag}> closes <{self._open[-1] if self._open else None}>"
        if self._section_depth and self._section_depth[-1] == len(self._open):
            self._section_depth.pop()
        if tag == "svg":
            self._in_svg -= 1
        self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_svg and self._section_depth:
            self.sections[-1]["svg_text"].append(data)


VOID = frozenset({"meta", "link", "br", "wbr", "img", "hr", "input", "col", "source"})


@pytest.fixture(scope="module")
def html() -> str:
    return render_html(REPORT)


@pytest.fixture(scope="module")
def page(html: str) -> Page:
    p = Page()
    p.feed(html)
    p.close()
    assert not p._open, f"unclosed elements: {p._open}"
    return p


def test_fixture_is_valid_and_fails_in_every_gate():
    import jsonschema

    from gates.reporters.json_report import report_schema

    jsonschema.Draft7Validator(report_schema()).validate(REPORT)
    failing = {c["gate"] for c in REPORT["checks"] if c["status"] in ("fail", "inconclusive", "error")}
    assert failing == {"data", "regression", "fairness", "robustness"}


def test_every_check_has_a_row(page: Page):
    rows = {a["id"] for tag, a in page.elements if tag == "tr" and a.get("id", "").startswith("check-")}
    assert rows == {"check-" + c["id"] for c in REPORT["checks"]}


def test_one_chart_per_section(page: Page):
    kinds = [s["kind"] for s in page.sections]
    # independent count: one fairness section per (metric, scope) with groups, one robustness
    # section per perturbation carrying a curve, one section for all intervals
    fairness = {(c["id"].split(".")[1], c["id"][c["id"].index("["):]) for c in REPORT["checks"]
                if c["gate"] == "fairness" and c["details"].get("groups")}
    perturbations = {c["details"]["perturbation"] for c in REPORT["checks"] if c["details"].get("curve")}
    assert kinds.count("intervals") == 1
    assert kinds.count("fairness") == len(fairness) == 2
    assert kinds.count("robustness") == len(perturbations) == 2
    single = [s for s in page.sections if s["kind"] != "confusion"]
    assert all(s["svgs"] == 1 for s in single), [(s["id"], s["svgs"]) for s in single]
    # candidate and production side by side: one matrix each
    assert [s["svgs"] for s in page.sections if s["kind"] == "confusion"] == [2]
    assert sum(1 for tag, _ in page.elements if tag == "svg") == sum(s["svgs"] for s in page.sections)


def test_forest_plot_has_a_row_per_interval_check(page: Page):
    svg_text = " ".join(next(s for s in page.sections if s["kind"] == "intervals")["svg_text"])
    with_ci = [c for c in REPORT["checks"] if c.get("ci")]
    without = [c for c in REPORT["checks"] if not c.get("ci")]
    assert all(c["id"] in svg_text for c in with_ci)
    assert not any(c["id"] in svg_text for c in without)
    # the threshold lines are labelled in the units of the plotted value
    for label in ("margin -0.005", "margin 0.005", "margin -0.0128", "gain 0.01", "min 0.8", "max 0.1"):
        assert label in svg_text, label


def test_fairness_chart_shows_sizes_exclusions_and_undefined(page: Page):
    section = next(s for s in page.sections if s["kind"] == "fairness")
    text = " ".join(section["svg_text"])
    assert "n=512" in text and "n=600" in text and "n=12 · excluded" in text
    assert "tpr undefined" in text
    # mathtext is off: a dollar sign in a group value is drawn as written
    inter = " ".join(next(s for s in page.sections if s["id"] == "fairness-1")["svg_text"])
    assert "other $50k" in inter


def test_no_external_resources(html: str, page: Page):
    assert "<script" not in html.lower()
    for tag, attrs in page.elements:
        assert "src" not in attrs, (tag, attrs)
        if tag == "link":
            assert attrs.get("href", "").startswith("data:"), attrs
        if "href" in attrs and tag != "a":
            assert attrs["href"].startswith(("#", "data:")), (tag, attrs)
        for value in attrs.values():
            for url in re.findall(r"url\(([^)]*)\)", value):
                assert url.startswith("#"), (tag, url)
    links = [a["href"] for tag, a in page.elements if tag == "a" and not a["href"].startswith("#")]
    assert links == [CI_URL]
    urls = re.findall(r"(?:https?:)?//[\w.-]+", html)
    assert set(urls) == {"https://github.example"}, set(urls)
    assert "@import" not in html and "@font-face" not in html
    csp = next(a["content"] for tag, a in page.elements if a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp


def test_text_from_the_report_is_escaped(html: str):
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>astronaut</b>" not in html and "&lt;b&gt;astronaut&lt;/b&gt;" in html
    assert 'sex=<X & "Y">' not in html
    assert "sex=&lt;X &amp; &quot;Y&quot;&gt;" in html  # in tables and in the SVG text


def test_ids_are_unique_and_svg_references_resolve(page: Page):
    ids = [a["id"] for _, a in page.elements if "id" in a]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]
    refs = {a[k][1:] for _, a in page.elements for k in ("href",) if a.get(k, "").startswith("#")}
    refs |= {u[1:] for _, a in page.elements for v in a.values() for u in re.findall(r"url\((#[^)]*)\)", v)}
    assert refs and refs <= set(ids), sorted(refs - set(ids))[:5]


def test_data_failures_show_their_examples(page: Page):
    text = "".join(page.text)
    assert "<b>astronaut</b>" in text and "pilot & co" in text  # decoded text of escaped cells
    assert all(c["id"] in text for c in REPORT["checks"] if c["gate"] == "data" and c["status"] != "pass")


def test_lineage_lists_hashes_and_versions(page: Page):
    text = " ".join(page.text)
    for value in (REPORT["model"]["candidate"]["sha256"], REPORT["model"]["baseline"]["sha256"],
                  REPORT["data"]["eval"]["sha256"], REPORT["data"]["reference"]["sha256"],
                  REPORT["policy"]["sha256"], REPORT["run"]["git_sha"], "model-gates 0.1.0", "version 3"):
        assert value in text, value
    assert "upstream backfill pending" in text and "matched no check" in text


PASSING = {**{k: v for k, v in REPORT.items() if k != "curves"}, "verdict": "pass", "summary": {"pass": 1}, "waivers": [],
           "checks": [{"id": "regression.accuracy.min", "gate": "regression", "status": "pass", "blocking": True,
                       "observed": 0.9, "baseline": None, "threshold": {"min": 0.8}, "message": "ok", "details": {}}],
           "model": {**REPORT["model"], "baseline": None},
           "registration": {"registered": True, "version": 4, "backend": "local", "aliases": ["staging"]}}


def test_passing_report_without_baseline_or_charts():
    out = render_html(PASSING)
    assert "PASSED" in out and "<svg" not in out and "none (first model" in out
    assert "Registered as version 4 (staging) in the local registry." in out


def test_cli_renders_offline_from_the_file_deterministically(tmp_path: Path, html: str):
    out = tmp_path / "report.html"
    result = subprocess.run([sys.executable, "-m", "gates", "report", str(FIXTURE), "--format", "html", "-o", str(out)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == html  # a second render gives the same bytes


def test_write_all_writes_report_html(tmp_path: Path):
    written = write_all(PASSING, tmp_path)
    assert tmp_path / "report.html" in written
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == render_html(PASSING)


def test_rendering_imports_no_plotting_library():
    code = ("import json, sys; from gates.reporters.html import render_html; "
            f"render_html(json.load(open({str(FIXTURE)!r}))); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'PIL', 'pyplot')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- in a real browser


def _screenshot_module() -> Any:
    spec = importlib.util.spec_from_file_location("screenshot_report", REPO / "scripts" / "screenshot_report.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SHOTS = _screenshot_module()
needs_chromium = pytest.mark.skipif(
    SHOTS.find_chromium() is None,
    reason="chromium not installed: apt-get update && apt-get install -y chromium")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@needs_chromium
def test_chromium_loads_the_page_cleanly_at_phone_and_desktop_widths(tmp_path: Path, html: str):
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    reports = SHOTS.shoot(page, tmp_path / "shots", [390, 1280], SHOTS.find_chromium())
    assert [r.problems for r in reports] == [[], []]
    phone, desktop = (_png_size(r.screenshot) for r in reports)
    assert phone[0] == 2 * 390 and desktop[0] == 1280  # the phone is emulated at 2x
    assert phone[1] > desktop[1] > 1280  # the whole page, taller when narrow


@needs_chromium
def test_chromium_check_reports_console_errors_and_requests(tmp_path: Path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width">'
                   '</head><body><img src="http://127.0.0.1:9/x.png">'
                   '<div style="width:900px">wide</div><script>console.error("boom")</script></body></html>')
    [report] = SHOTS.shoot(bad, tmp_path / "shots", [390], SHOTS.find_chromium())
    text = "\n".join(report.problems)
    assert "console.error: boom" in text
    assert "request: http://127.0.0.1:9/x.png" in text
    assert "horizontal scrolling" in text


def test_only_the_worst_panels_are_drawn(monkeypatch: pytest.MonkeyPatch):
    from gates.reporters import html as html_module

    monkeypatch.setattr(html_module, "MAX_CHARTS", 1)
    p = Page()
    p.feed(render_html(REPORT))
    drawn = {s["kind"]: s["id"] for s in p.sections if s["kind"] in ("fairness", "robustness")}
    # the failing eod-by-sex panel outranks the erroring ratio, the failing noise curve the warning one
    assert drawn == {"fairness": "fairness-0", "robustness": "robustness-0"}
    undrawn = [a["id"] for tag, a in p.elements if tag == "article" and a.get("class") == "no-chart"]
    assert undrawn == ["fairness-1", "robustness-1"]
    assert html_module.MSG_NOT_DRAWN.format(n=1) in "".join(p.text)


def _min_check(i: int, low: float, high: float, status: str = "pass") -> dict[str, Any]:
    """Return a ``min 0.8`` accuracy check on slice ``r{i}`` whose interval is [low, high]."""
    return {"id": f"regression.accuracy.min[region=r{i}]", "gate": "regression", "status": status,
            "blocking": True, "observed": (low + high) / 2, "baseline": None, "threshold": {"min": 0.8},
            "ci": [low, high], "half_width": (high - low) / 2, "message": "synthetic", "details": {}}


#: 14 passing slices, each clearing min 0.8 by (i + 1) percent of a 0.02-wide interval: r0 is closest
SLICES = [_min_check(i, 0.8 + 0.0002 * (i + 1), 0.82 + 0.0002 * (i + 1)) for i in (7, 2, 11, 0, 13, 5, 9, 1, 12, 3, 8, 4, 10, 6)]
MANY = {**REPORT, "checks": [*REPORT["checks"], *SLICES]}


def test_forest_plot_draws_only_the_worst_interval_rows():
    from gates.reporters.html import MAX_CHARTS, MSG_NOT_DRAWN

    p = Page()
    p.feed(render_html(MANY))
    section = next(s for s in p.sections if s["kind"] == "intervals")
    svg_text = " ".join(section["svg_text"])
    with_ci = [c for c in MANY["checks"] if c.get("ci")]
    drawn = [c["id"] for c in with_ci if c["id"] in svg_text]
    assert len(with_ci) == 9 + 14 and len(drawn) == MAX_CHARTS == 12 and section["svgs"] == 1
    # every check that did not pass is drawn (7 of the fixture's); the 5 remaining rows are the
    # passes nearest their line: every slice (0.01-0.14 widths clear) is nearer than the fixture's
    # recall min_gain (0.008 / 0.024 = 0.33) and roc_auc.min (0.0377 / 0.007 = 5.4), so r0..r4
    not_passed = {c["id"] for c in with_ci if c["status"] != "pass"}
    assert len(not_passed) == 7 and not_passed <= set(drawn)
    assert set(drawn) - not_passed == {f"regression.accuracy.min[region=r{i}]" for i in range(5)}
    # the rest are listed below the chart with their numbers and links to their rows
    text = " ".join(p.text)
    assert MSG_NOT_DRAWN.format(n=MAX_CHARTS) in text and "11 more interval checks" in text
    links = {a["href"] for tag, a in p.elements if tag == "a"}
    undrawn = {c["id"] for c in with_ci} - set(drawn)
    assert len(undrawn) == 11 and {f"#check-{i}" for i in undrawn} <= links
    assert "[0.8028, 0.8228]" in text  # r13's interval, in the table only


def test_forest_rows_are_ordered_worst_first_and_deterministic():
    from gates.reporters import _chartdata as cd

    rows = cd.worst_intervals_first(cd.interval_rows(MANY["checks"]))
    assert [r.status for r in rows[:7]] == ["fail"] * 4 + ["inconclusive"] * 2 + ["warn"]
    slices = [r.check_id for r in rows if "region=r" in r.check_id]
    assert slices == [f"regression.accuracy.min[region=r{i}]" for i in range(14)]
    # the inconclusive roc_auc difference crosses its -0.001 line by 0.0009 of a 0.008 width
    roc = next(r for r in rows if r.check_id == "regression.roc_auc.max_drop")
    assert cd.crossing(roc) == pytest.approx((-0.001 - -0.0019) / 0.008)
    assert render_html(MANY) == render_html({**MANY, "checks": list(MANY["checks"])})


def test_blocking_section_comes_first_and_links_to_each_row(html: str, page: Page):
    blocking = [c for c in REPORT["checks"] if c["blocking"] and c["status"] in ("fail", "inconclusive", "error")]
    assert blocking
    start = html.index('<section id="blocking"')
    section = html[start:html.index("</section>", start)]
    assert start < html.index('id="summary"') < html.index('id="checks"')
    links = re.findall(r'href="#([^"]+)"', section)
    rows = {a["id"] for tag, a in page.elements if tag == "tr" and a.get("id")}
    from html import unescape
    assert [unescape(x) for x in links] == ["check-" + c["id"] for c in
                                          sorted(blocking, key=lambda c: ["fail", "inconclusive", "error"].index(c["status"]))]
    assert all(unescape(x) in rows for x in links)
    for c in blocking:  # the one-line reason is the check's message
        from html import escape
        assert escape(c["message"], quote=True) in section
    # the rest: one table per gate, in gate order
    gates = re.findall(r'<h3 id="gate-(\w+)">', html)
    assert gates == [g for g in ("data", "regression", "fairness", "robustness")
                     if any(c["gate"] == g for c in REPORT["checks"])]


def test_passing_report_says_no_blocking_check_fails():
    out = render_html(PASSING)
    assert '<section id="blocking"><h2>Blocking checks</h2><p>None fails.' in out
