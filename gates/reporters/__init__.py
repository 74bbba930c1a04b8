"""Renderers of report.json: JUnit, Markdown, terminal and HTML."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gates.errors import UserError

FORMATS = ("json", "md", "junit", "html", "text")
MSG_UNKNOWN_FORMAT = "unknown report format {fmt!r}: expected one of " + ", ".join(FORMATS)


def renderer(fmt: str) -> Callable[[Mapping[str, Any]], str]:
    """Return the function that renders a report dict in ``fmt``."""
    if fmt == "json":
        from gates.reporters.json_report import dumps

        return dumps
    if fmt == "md":
        from gates.reporters.markdown import render_markdown

        return render_markdown
    if fmt == "junit":
        from gates.reporters.junit import render_junit

        return render_junit
    if fmt == "text":
        from gates.reporters.terminal import render_terminal

        return render_terminal
    if fmt == "html":
        from gates.reporters.html import render_html

        return render_html
    raise UserError(MSG_UNKNOWN_FORMAT.format(fmt=fmt))


def html_available() -> bool:
    """True: report.html needs nothing beyond the core install (its charts are SVG written directly).

    Kept for callers written when the charts needed matplotlib (the ``html`` extra, now empty).
    """
    return True


def report_files() -> list[tuple[str, str]]:
    """Return the (format, file name) pairs a run writes, report.json first."""
    return [("json", "report.json"), ("junit", "report.xml"), ("md", "report.md"), ("html", "report.html")]


def write_all(report: Mapping[str, Any], folder: Path) -> list[Path]:
    """Write report.json, report.xml, report.md and report.html into ``folder``.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, name in report_files():
        path = folder / name
        tmp = folder / f".{name}.tmp"
        tmp.write_text(renderer(fmt)(report), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
