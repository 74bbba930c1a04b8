"""Field limits of the CI platforms, measured the way each platform measures them.

GitHub counts a check run's ``output.summary`` and ``output.text`` in UTF-8 bytes (65,535), so a
report full of slice values in Greek, CJK or emoji, or of "−" signs, is three or four times longer
than its character count says; comment and note bodies are limited in characters. Text that does
not fit is first shortened by its renderer (which drops what matters least), and only then cut: at
a character boundary (never inside a multi-byte sequence or between a character and its combining
marks), at a line end where one is near, with any open ``<details>`` or code fence closed, and with
a note saying that it was cut and where the whole report is.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

BYTES = "bytes"
CHARS = "characters"
ZWJ = "\u200d"
#: how far back (as a share of the kept text) a cut may move to end at a line break
LINE_BACKOFF = 0.25


@dataclass(frozen=True)
class Limit:
    """A platform's limit on one field: ``size`` in ``unit`` (UTF-8 bytes or characters)."""

    size: int
    unit: str
    what: str  # how the note names it: "GitHub's check-run summary"

    def measure(self, text: str) -> int:
        return len(text.encode("utf-8")) if self.unit == BYTES else len(text)

    def fits(self, text: str) -> bool:
        return self.measure(text) <= self.size

    def describe(self) -> str:
        return f"{self.what} limit of {self.size:,} {self.unit}"


#: GitHub check runs: ``output.summary`` and ``output.text`` (bytes, whatever the schema's maxLength says)
CHECK_RUN_TEXT = Limit(65535, BYTES, "GitHub's check-run")
#: GitHub annotations: ``message`` ("The maximum size is 64 KB")
ANNOTATION_MESSAGE = Limit(65535, BYTES, "GitHub's annotation")
#: GitHub issue and pull-request comments
GITHUB_COMMENT = Limit(65536, CHARS, "GitHub's comment")
#: GitLab merge-request notes
GITLAB_NOTE = Limit(1_000_000, CHARS, "GitLab's note")
#: the check-run API takes at most this many annotations per request (the rest go in PATCHes)
ANNOTATIONS_PER_REQUEST = 50


def encodable(text: str) -> str:
    """Return ``text`` with lone surrogates (which UTF-8 cannot encode) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def fit(render: Callable[[int | None], str], limit: Limit, where: str, *, reserve: int = 0) -> str:
    """Return ``render(None)`` when it fits ``limit``; else the renderer's own shortened form, cut if
    still too long, followed by the cut note (it was shortened, and ``where`` the whole report is).

    ``render(n)`` must return a text of about ``n`` characters at most (``None``: all of it); it is
    called a few times with smaller budgets until its output, in the limit's unit, leaves room for
    the note. ``reserve`` units of the limit are kept free for what the caller puts in front.
    """
    room_limit = Limit(limit.size - reserve, limit.unit, limit.what)
    full = encodable(render(None))
    if room_limit.fits(full):
        return full
    tail = cut_note(limit, where)
    room = room_limit.size - limit.measure(tail)
    chars = max(0, room)
    text = full
    for _ in range(8):
        text = encodable(render(chars))
        size = limit.measure(text)
        if size <= room:
            return text + tail
        chars = max(0, int(chars * room / size) - 16)
    return truncate(text, room_limit, tail)


def cut_note(limit: Limit, where: str) -> str:
    """Return the note that ends a shortened text."""
    return f"\n\n_This report was shortened to fit {limit.describe()}; {where}._\n"


def cut(text: str, limit: Limit, where: str) -> str:
    """Return ``text`` if it fits ``limit``, else its longest clean prefix followed by the cut note."""
    text = encodable(text)
    return text if limit.fits(text) else truncate(text, limit, cut_note(limit, where))


def truncate(text: str, limit: Limit, tail: str) -> str:
    """Return the longest clean prefix of ``text`` that fits ``limit`` together with ``tail``, then ``tail``.

    The prefix ends at a line break when one is near, and closes the code fence or ``<details>``
    elements it leaves open, so the note after it is not swallowed by an unclosed block.
    """
    if not limit.fits(tail):
        return prefix(tail.strip(), limit.size, limit.unit)
    budget = limit.size - limit.measure(tail)
    for _ in range(4):
        head = at_line_end(prefix(text, budget, limit.unit))
        closed = head + closers(head)
        if limit.fits(closed + tail):
            return closed + tail
        budget -= limit.measure(closers(head)) or 1
    return prefix(text, limit.size - limit.measure(tail), limit.unit) + tail


def shorten(text: str, limit: Limit) -> str:
    """Return ``text`` cut to ``limit`` with an ellipsis when cut (single fields: titles, messages)."""
    text = encodable(text)
    if limit.fits(text):
        return text
    return prefix(text, limit.size - limit.measure("…"), limit.unit) + "…"


def prefix(text: str, size: int, unit: str) -> str:
    """Return the longest prefix of ``text`` within ``size`` units that ends between two characters.

    A cut never splits a UTF-8 sequence, never separates a character from the combining marks,
    variation selectors or skin-tone modifiers after it, never falls inside a zero-width-joiner
    sequence (an emoji made of several), and never halves a flag.
    """
    if size <= 0:
        return ""
    head = text.encode("utf-8")[:size].decode("utf-8", "ignore") if unit == BYTES else text[:size]
    n = len(head)
    while 0 < n < len(text) and (_extends(text[n]) or text[n - 1] == ZWJ):
        n -= 1
    if 0 < n < len(text) and _is_flag_half(text[n]) and _flag_run(text, n) % 2:
        n -= 1
    return text[:n]


def _extends(ch: str) -> bool:
    """True for a code point that belongs to the character before it."""
    code = ord(ch)
    return (unicodedata.category(ch) in ("Mn", "Me", "Mc") or ch == ZWJ or 0xFE00 <= code <= 0xFE0F
            or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F)


def _is_flag_half(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF  # regional indicator symbols: two make a flag


def _flag_run(text: str, end: int) -> int:
    """Return how many regional indicators come right before ``end``."""
    start = end
    while start > 0 and _is_flag_half(text[start - 1]):
        start -= 1
    return end - start


def at_line_end(text: str) -> str:
    """Return ``text`` up to its last line break when that break is near the end, else ``text``."""
    br = text.rfind("\n")
    return text[:br + 1] if br >= 0 and br >= len(text) * (1 - LINE_BACKOFF) else text


def closers(text: str) -> str:
    """Return what closes the Markdown ``text`` leaves open: a code fence, ``<details>`` elements."""
    out = "" if not text or text.endswith("\n") else "\n"
    fences = sum(1 for line in text.splitlines() if line.lstrip().startswith("```"))
    if fences % 2:
        out += "```\n"
    open_details = text.count("<details") - text.count("</details>")
    out += "</details>\n" * max(0, open_details)
    return out if out.strip() else ""
