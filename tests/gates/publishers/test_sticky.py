"""Sticky-comment helpers: marker, body limits, upsert."""
from __future__ import annotations

from gates.publishers.limits import CHARS, Limit
from gates.publishers.sticky import comment_body, find_marked, marker, shorten, upsert
from tests.gates.publishers.reports import check, report


def test_marker_cannot_close_the_html_comment_early():
    mark = marker("wf --> <b>", "m\nodel")
    assert mark.startswith("<!-- model-gates:") and mark.count("-->") == 1 and "\n" not in mark


def test_comment_body_fits_and_starts_with_the_marker():
    rep = report([check(f"regression.m{i}.min", "fail", message="y" * 200) for i in range(500)])
    mark = marker("wf", "credit-risk")
    body = comment_body(rep, mark, Limit(5000, CHARS, "a test's"), "see report.md")
    assert body.startswith(mark + "\n") and len(body) <= 5000 and "`regression.m0.min`" in body
    assert body.endswith("_This report was shortened to fit a test's limit of 5,000 characters; see report.md._\n")


def test_upsert_creates_updates_or_leaves_alone():
    made, edited = [], []
    items = [{"id": 1, "body": "hello"}]
    assert upsert(items, "<!-- k -->", "<!-- k -->\nA", made.append, lambda i, b: edited.append((i, b))) == "created"
    items.append({"id": 2, "body": "<!-- k -->\nA"})
    assert upsert(items, "<!-- k -->", "<!-- k -->\nA", made.append, lambda i, b: edited.append((i, b))) == "unchanged"
    assert upsert(items, "<!-- k -->", "<!-- k -->\nB", made.append, lambda i, b: edited.append((i, b))) == "updated"
    assert made == ["<!-- k -->\nA"] and edited == [(2, "<!-- k -->\nB")]
    assert find_marked(items, "<!-- other -->") is None


def test_shorten():
    assert shorten("abc", 3) == "abc" and shorten("abcdef", 4) == "abc…"
