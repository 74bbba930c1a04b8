"""Sticky comments: one pull-request comment (or merge-request note) per workflow and model.

The comment carries a hidden HTML marker; the next run finds it and edits it in place, so a busy
pull request shows one current verdict instead of a growing pile of stale ones.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gates.publishers.limits import Limit, fit
from gates.reporters.markdown import render_markdown

MARKER = "<!-- model-gates:{workflow}:{model} -->"


def marker(workflow: str, model: str) -> str:
    """Return the hidden marker for a (workflow, model) pair; text that could end the comment is removed."""
    return MARKER.format(workflow=_clean(workflow or "default"), model=_clean(model))


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("--", "-").replace(">", "")).strip()


def comment_body(report: Mapping[str, Any], mark: str, limit: Limit, where: str) -> str:
    """Return the marker line plus the Markdown report, within the platform's ``limit`` for a body.

    A report too long for it is shortened by the renderer, then cut, with a note saying ``where``
    the whole report is.
    """
    head = f"{mark}\n"
    return head + fit(lambda chars: render_markdown(report, max_chars=chars), limit, where,
                      reserve=limit.measure(head))


def shorten(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, with an ellipsis when cut (API field limits)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def find_marked(items: Iterable[Mapping[str, Any]], mark: str) -> Mapping[str, Any] | None:
    """Return the first comment (with an id) whose body carries ``mark``."""
    for item in items:
        if "id" in item and mark in str(item.get("body") or ""):
            return item
    return None


def upsert(items: Iterable[Mapping[str, Any]], mark: str, body: str,
           create: Callable[[str], Any], update: Callable[[Any, str], Any]) -> str:
    """Edit the marked comment, or create one; return ``created``, ``updated`` or ``unchanged``."""
    found = find_marked(items, mark)
    if found is None:
        create(body)
        return "created"
    if found.get("body") == body:
        return "unchanged"
    update(found["id"], body)
    return "updated"
