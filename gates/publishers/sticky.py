"""Sticky comments: one pull-request comment (or merge-request note) per workflow and model.

The comment carries a hidden HTML marker; the next run finds it and edits it in place, so a busy
pull request shows one current verdict instead of a growing pile of stale ones.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gates.reporters.markdown import render_markdown

MARKER = "<!-- model-gates:{workflow}:{model} -->"


def marker(workflow: str, model: str) -> str:
    """Return the hidden marker for a (workflow, model) pair; text that could end the comment is removed."""
    return MARKER.format(workflow=_clean(workflow or "default"), model=_clean(model))


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("--", "-").replace(">", "")).strip()


def comment_body(report: Mapping[str, Any], mark: str, max_chars: int) -> str:
    """Return the marker line plus the Markdown report, at most ``max_chars`` characters long."""
    room = max_chars - len(mark) - 1
    return f"{mark}\n{render_markdown(report, max_chars=room)}"


def fit_utf8(render: Callable[[int], str], max_bytes: int) -> str:
    """Return ``render(max_chars)`` for the largest ``max_chars`` whose UTF-8 encoding fits ``max_bytes``.

    Markdown reports are mostly ASCII with a few 4-byte emoji, so a character budget equal to
    the byte budget is tried first and shrunk in proportion to the overshoot.
    """
    chars = max(0, max_bytes)
    for _ in range(8):
        text = render(chars)
        size = len(text.encode("utf-8"))
        if size <= max_bytes:
            return text
        chars = max(0, int(chars * max_bytes / size) - 16)
    return ""


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
