"""Every ``uses:`` this project ships or documents is pinned by the full commit of a node24 release.

Organisations that require SHA-pinned actions check the actions a composite action calls too, and
GitHub's runners no longer have Node 20. ``../shared/contracts/github-actions-pins.json`` lists each
official action's tags, the commit each points to and the runtime its ``action.yml`` declares; a
reference passes only as ``owner/repo@<40-hex commit> # <tag>`` where the file says that tag is that
commit and runs on node24. The project's own action is referenced by this release's tag (its
commit is not known until the release is tagged).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import gates
from gates.ci_templates import ACTION_REPOSITORY, write_ci_files
from tests.contracts.stand_in import CONTRACTS

REPO = Path(__file__).resolve().parents[2]
PINS = CONTRACTS / "github-actions-pins.json"
RUNTIME = "node24"
#: folders whose YAML files are workflows, actions or starters
YAML_FOLDERS = ("actions", "templates", "starters", "gates/templates")
#: Markdown whose fenced YAML examples users copy
DOCS = ("README.md", "docs")
OWN_ACTION = f"{ACTION_REPOSITORY}/actions/model-gates"
SHA = re.compile(r"^[0-9a-f]{40}$")
USES_KEY = re.compile(r"(?:^|[\s{,-])uses\s*:")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#'\"]+)(?:\s+#\s*(?P<tag>\S+)(?:\s.*)?)?\s*$")
FENCE = re.compile(r"^\s*```(?P<lang>[\w-]*)\s*$")  # also indented, inside a list item


@dataclass(frozen=True)
class Use:
    """One ``uses:`` reference and where it is (``file:line``)."""

    where: str
    ref: str
    tag: str | None


@dataclass(frozen=True)
class Source:
    """A YAML text: a whole file, or a fenced block of a Markdown file starting at ``first_line``."""

    path: Path
    text: str
    first_line: int = 1


def pins() -> dict[str, dict[str, dict[str, str]]]:
    if not PINS.is_file():
        pytest.skip(f"the action pins are not beside the project ({PINS} is missing)")
    return json.loads(PINS.read_text(encoding="utf-8"))["actions"]


def yaml_sources(root: Path = REPO) -> list[Source]:
    """Return every YAML file under the shipped folders and every fenced YAML block of the docs."""
    out = []
    for folder in YAML_FOLDERS:
        base = root / folder
        if base.is_dir():
            out += [Source(p, p.read_text(encoding="utf-8")) for p in sorted(base.rglob("*"))
                    if p.suffix in (".yml", ".yaml") and p.is_file()]
    for doc in DOCS:
        base = root / doc
        files = sorted(base.rglob("*.md")) if base.is_dir() else [base] if base.is_file() else []
        for path in files:
            out += list(fenced_yaml(path))
    return out


def fenced_yaml(path: Path) -> Iterator[Source]:
    """Yield the ```yaml / ```yml blocks of a Markdown file (and blocks of any language naming ``uses:``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("```")), len(lines))
        body = "\n".join(lines[i + 1:end]) + "\n"
        if m["lang"] in ("yaml", "yml") or USES_KEY.search(body):
            yield Source(path, body, first_line=i + 2)
        i = end + 1


def uses_of(source: Source) -> tuple[list[Use], list[str]]:
    """Return the source's ``uses:`` references, and the lines that say ``uses`` in a form not understood.

    Only the one-per-line block form is understood; anything else (flow mappings, quoted
    references) is reported, so an edit cannot hide a reference from this check.
    """
    found, odd = [], []
    rel = source.path.relative_to(REPO) if source.path.is_relative_to(REPO) else source.path
    for n, line in enumerate(source.text.splitlines(), start=source.first_line):
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        if not USES_KEY.search(code):
            continue
        m = USES_LINE.match(line)
        if m is None:
            odd.append(f"{rel}:{n}: a `uses:` this check cannot read: {line.strip()}")
        else:
            found.append(Use(f"{rel}:{n}", m["ref"], m["tag"]))
    return found, odd


def yaml_uses(text: str) -> list[str] | None:
    """Return every ``uses`` value of a YAML document set (None when the text is not YAML on its own)."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return None
    out: list[str] = []
    stack: list[Any] = docs
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            out += [str(v) for k, v in node.items() if k == "uses"]
            stack += list(node.values())
        elif isinstance(node, list):
            stack += node
    return out


def problem(use: Use, known: Mapping[str, Mapping[str, Mapping[str, str]]], version: str) -> str | None:
    """Return why a reference is not acceptable, or None."""
    ref = use.ref
    if ref.startswith("./"):
        return None  # an action in the same repository: no outside code
    if ref.startswith("docker://"):
        return f"{use.where}: {ref}: a container image, not an action listed in the pins file"
    name, at, commit = ref.partition("@")
    if not at or not commit:
        return f"{use.where}: {ref}: no ref at all (the default branch, whatever it holds)"
    if name == OWN_ACTION:
        if commit == f"v{version}" or (SHA.match(commit) and use.tag == f"v{version}"):
            return None
        return f"{use.where}: {ref}: the model-gates action must be this release (v{version})"
    repo = "/".join(name.split("/")[:2])
    tags = known.get(repo)
    if tags is None:
        return f"{use.where}: {ref}: {repo} is not in github-actions-pins.json (unknown action)"
    if not SHA.match(commit):
        return f"{use.where}: {ref}: pinned by a tag or branch, not by a full commit SHA"
    if use.tag is None:
        return f"{use.where}: {ref}: no `# <tag>` comment naming the release"
    entry = tags.get(use.tag)
    if entry is None:
        return f"{use.where}: {ref}: tag {use.tag} of {repo} is not in github-actions-pins.json"
    if entry["sha"] != commit:
        return f"{use.where}: {ref}: {repo} {use.tag} is {entry['sha']}, not {commit}"
    if entry["runs_using"] != RUNTIME:
        return f"{use.where}: {ref}: {repo} {use.tag} runs on {entry['runs_using']}, not {RUNTIME}"
    return None


def check_sources(sources: Iterable[Source], known: Mapping[str, Any], version: str) -> list[str]:
    """Return every problem in ``sources`` (unreadable lines, YAML references the lines missed, bad pins)."""
    out = []
    for source in sources:
        found, odd = uses_of(source)
        out += odd
        parsed = yaml_uses(source.text)
        if parsed is not None and sorted(parsed) != sorted(u.ref for u in found):
            read = sorted(u.ref for u in found)
            out.append(f"{source.path}: the YAML holds uses {sorted(parsed)}, the lines read {read}")
        out += [p for p in (problem(u, known, version) for u in found) if p]
    return out


# -- the project's own files ----------------------------------------------------------------------

def test_every_shipped_and_documented_reference_is_a_pinned_node24_release():
    sources = yaml_sources()
    refs = [u.ref for s in sources for u in uses_of(s)[0]]
    assert any(r.startswith("actions/setup-python@") for r in refs)  # the scan reaches the action
    assert any(r.startswith("actions/checkout@") for r in refs)  # ... the starter and the docs
    assert check_sources(sources, pins(), gates.__version__) == []


#: an official action named with a ref anywhere in prose or tables: `actions/x@ref # tag`
PROSE_REF = re.compile(r"(?<![\w/.-])(?P<ref>actions/[\w.-]+@[\w.-]+)(?:\s*#\s*(?P<tag>v[\w.]+))?")


def test_actions_named_in_the_docs_prose_are_pinned_too():
    """Tables and sentences that name an official action at a ref say the pinned form as well."""
    found = []
    for doc in DOCS:
        base = REPO / doc
        for path in sorted(base.rglob("*.md")) if base.is_dir() else [base]:
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                found += [Use(f"{path.relative_to(REPO)}:{n}", m["ref"], m["tag"]) for m in PROSE_REF.finditer(line)]
    assert len(found) >= 3
    assert [p for p in (problem(u, pins(), gates.__version__) for u in found) if p] == []


def test_the_workflow_init_writes_is_pinned(tmp_path):
    (written,) = write_ci_files("github", tmp_path)
    source = Source(written, written.read_text(encoding="utf-8"))
    assert len(uses_of(source)[0]) >= 2
    assert check_sources([source], pins(), gates.__version__) == []


def test_each_official_action_is_pinned_to_one_release_everywhere():
    """The action, the starter and the docs agree: one upgrade changes every copy."""
    seen: dict[str, set[tuple[str, str | None]]] = {}
    for source in yaml_sources():
        for use in uses_of(source)[0]:
            name, _, commit = use.ref.partition("@")
            seen.setdefault(name, set()).add((commit, use.tag))
    official = {k: v for k, v in seen.items() if k.startswith("actions/")}
    assert official and all(len(v) == 1 for v in official.values()), official


# -- the check itself fails on what it must refuse -------------------------------------------------

KNOWN = {"actions/setup-python": {"v7.0.0": {"sha": "a" * 40, "runs_using": "node24"},
                                  "v5.6.0": {"sha": "b" * 40, "runs_using": "node20"}}}


@pytest.mark.parametrize("line, why", [
    ("uses: actions/setup-python@v7", "not by a full commit SHA"),
    ("uses: actions/setup-python@" + "b" * 40 + " # v5.6.0", "runs on node20"),
    ("uses: actions/setup-python@" + "a" * 40, "no `# <tag>` comment"),
    ("uses: actions/setup-python@" + "c" * 40 + " # v7.0.0", "is " + "a" * 40),
    ("uses: actions/setup-python@" + "a" * 40 + " # v9.9.9", "tag v9.9.9"),
    ("uses: actions/setup-python@" + "A" * 40 + " # v7.0.0", "not by a full commit SHA"),
    ("uses: evil/setup-python@" + "a" * 40 + " # v7.0.0", "unknown action"),
    ("uses: actions/cache@" + "a" * 40 + " # v7.0.0", "unknown action"),
    ("uses: actions/setup-python", "no ref at all"),
    ("uses: docker://alpine:3", "container image"),
    (f"uses: {OWN_ACTION}@main", "must be this release"),
    ("- {name: x, uses: actions/setup-python@v7}", "cannot read"),
    ("  - uses: 'actions/setup-python@v7'", "cannot read"),
])
def test_the_check_refuses(tmp_path, line, why):
    path = tmp_path / "wf.yml"
    path.write_text(f"steps:\n  {line}\n" if not line.startswith(" ") else f"steps:\n{line}\n")
    problems = check_sources([Source(path, path.read_text())], KNOWN, "0.1.0")
    assert problems and why in " ".join(problems), problems


def test_the_check_accepts_a_pinned_node24_release_and_this_release_of_model_gates(tmp_path):
    path = tmp_path / "wf.yml"
    path.write_text(f"steps:\n  - uses: actions/setup-python@{'a' * 40} # v7.0.0\n"
                    f"    with: {{python-version: '3.12'}}\n  - uses: {OWN_ACTION}@v0.1.0\n"
                    f"  - uses: {OWN_ACTION}@{'d' * 40} # v0.1.0\n  - uses: ./local/action\n")
    assert check_sources([Source(path, path.read_text())], KNOWN, "0.1.0") == []


def test_docs_blocks_are_scanned_with_their_line_numbers(tmp_path):
    doc = tmp_path / "guide.md"
    doc.write_text("Intro\n\n```yaml\nsteps:\n  - uses: actions/setup-python@v7\n```\n\n"
                   "```\n- uses: actions/checkout@v4\n```\n* a list item:\n\n  ```yaml\n"
                   "  - uses: actions/upload-artifact@v4\n  ```\n")
    blocks = list(fenced_yaml(doc))
    assert [b.first_line for b in blocks] == [4, 9, 14]
    assert [u.where.rsplit(":", 1)[1] for b in blocks for u in uses_of(b)[0]] == ["5", "9", "14"]
    assert len(check_sources(blocks, KNOWN, "0.1.0")) == 3
