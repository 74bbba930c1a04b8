"""Platform field limits: byte-exact cuts on character boundaries, closed blocks, the cut note."""
from __future__ import annotations

import random

import pytest

from gates.publishers import limits
from gates.publishers.limits import BYTES, CHARS, Limit, cut, cut_note, encodable, fit, prefix, shorten, truncate
from tests.contracts.stand_in import CHECK_RUN_ENDPOINTS, GitHubLimits, contract_file

#: user-perceived characters, each written out whole: a cut must fall between two of them
CLUSTERS = ["a", " ", "\n", "−", "Ω", "λ", "北", "京", "서", "é", "e\u0301", "ñ", "🚀", "👍🏽", "👩🏽\u200d💻",
            "👨\u200d👩\u200d👧", "🇬🇷", "🇯🇵", "❤️", "Ⅻ", "𝔸", "\u0915\u093f"]  # the last: Devanagari ki


def clustered(rng: random.Random, n: int) -> tuple[str, set[int]]:
    """Return a text of ``n`` clusters and the set of character offsets between clusters."""
    parts = [rng.choice(CLUSTERS) for _ in range(n)]
    bounds, at = {0}, 0
    for p in parts:
        at += len(p)
        bounds.add(at)
    return "".join(parts), bounds


@pytest.mark.parametrize("unit", [BYTES, CHARS])
def test_a_prefix_fits_and_ends_between_two_characters(unit):
    rng = random.Random(21)
    for _ in range(60):
        text, bounds = clustered(rng, rng.randint(1, 40))
        whole = len(text.encode()) if unit == BYTES else len(text)
        for size in range(0, whole + 2):
            head = prefix(text, size, unit)
            used = len(head.encode()) if unit == BYTES else len(head)
            assert text.startswith(head) and used <= size
            assert len(head) in bounds, (text, size, head)
            if size >= whole:
                assert head == text
            # nothing longer that also ends between clusters would have fitted
            longer = [b for b in bounds if b > len(head)]
            if longer:
                nxt = text[:min(longer)]
                assert (len(nxt.encode()) if unit == BYTES else len(nxt)) > size


def test_bytes_and_characters_differ_by_the_encoding():
    text = "−" * 100  # U+2212: three bytes each
    assert prefix(text, 100, CHARS) == text
    assert prefix(text, 100, BYTES) == "−" * 33
    assert Limit(100, BYTES, "x").measure(text) == 300 == len(text.encode("utf-8"))


def test_shorten_keeps_an_ellipsis_inside_the_limit():
    limit = Limit(10, BYTES, "a field")
    assert shorten("abc", limit) == "abc"
    out = shorten("北京北京北京", limit)  # 18 bytes
    assert out == "北京…" and len(out.encode()) == 9
    assert shorten("\ud83d oops", limit) == "\ufffd oops"  # a lone surrogate cannot be sent as UTF-8


def test_encodable_replaces_only_lone_surrogates():
    assert encodable("ok 🚀") == "ok 🚀"
    assert encodable("a\udc80b") == "a\ufffdb"


def test_a_cut_closes_open_blocks_and_ends_with_the_note():
    text = "# head\n\n<details><summary>x</summary>\n\n```mermaid\n" + "Ω line\n" * 400 + "```\n</details>\n"
    limit = Limit(600, BYTES, "GitHub's check-run")
    out = cut(text, limit, "the whole report is report.md")
    assert len(out.encode()) <= 600
    note = cut_note(limit, "the whole report is report.md")
    assert out.endswith(note) and "limit of 600 bytes" in note
    body = out[: -len(note)]
    assert body.count("<details") == body.count("</details>") == 1
    assert sum(1 for ln in body.splitlines() if ln.startswith("```")) == 2
    assert body.startswith("# head\n") and "Ω line\n```" in body  # cut at a line end, then closed


def test_a_text_that_fits_is_left_alone():
    limit = Limit(10, BYTES, "x")
    assert cut("北京市", limit, "w") == "北京市"  # 9 bytes
    assert truncate("北京市xy", limit, "") == "北京市x"  # 11 bytes: one ASCII letter goes


def test_a_note_longer_than_the_limit_is_itself_cut():
    out = truncate("anything", Limit(12, BYTES, "x"), "\n\n_a long note about the limits_\n")
    assert len(out.encode()) <= 12 and out == "_a long note"


def test_fit_prefers_the_renderers_own_short_form():
    calls = []

    def render(chars):
        calls.append(chars)
        return "Ω" * 500 if chars is None else "short form " + "Ω" * min(chars, 500)

    limit = Limit(400, BYTES, "GitHub's check-run")
    out = fit(render, limit, "see report.md")
    assert len(out.encode()) <= 400 and out.startswith("short form Ω")
    assert out.endswith(cut_note(limit, "see report.md"))
    assert calls[0] is None and len(calls) <= 9


def test_fit_reserves_room_for_what_goes_in_front():
    limit = Limit(200, CHARS, "GitLab's note")
    out = fit(lambda chars: "x" * (300 if chars is None else min(chars, 300)), limit, "w", reserve=50)
    assert len(out) <= 150 and "limit of 200 characters" in out


def test_fit_returns_a_short_text_unchanged():
    assert fit(lambda chars: "👍🏽 fine", limits.CHECK_RUN_TEXT, "w") == "👍🏽 fine"


def test_the_limits_are_the_contracts():
    github = contract_file("github-rest-subset.json")
    stated = GitHubLimits.from_contract(github)
    assert (limits.CHECK_RUN_TEXT.size, limits.CHECK_RUN_TEXT.unit) == (stated.output_bytes["summary"], BYTES)
    assert stated.output_bytes["text"] == limits.CHECK_RUN_TEXT.size
    assert limits.ANNOTATION_MESSAGE.unit == BYTES and limits.ANNOTATION_MESSAGE.size < stated.annotation_message_bytes
    assert (limits.GITHUB_COMMENT.size, limits.GITHUB_COMMENT.unit) == (stated.comment_chars, CHARS)
    output = github["endpoints"][CHECK_RUN_ENDPOINTS[0]]["requestBody"]["properties"]["output"]["properties"]
    assert output["annotations"]["maxItems"] == limits.ANNOTATIONS_PER_REQUEST
    gitlab = contract_file("gitlab-rest-subset.json")["endpoints"]
    for key in ("POST /projects/:id/merge_requests/:merge_request_iid/notes",
                "PUT /projects/:id/merge_requests/:merge_request_iid/notes/:note_id"):
        assert gitlab[key]["requestBody"]["properties"]["body"]["maxLength"] == limits.GITLAB_NOTE.size
    assert limits.GITLAB_NOTE.unit == CHARS  # JSON Schema's maxLength counts characters
