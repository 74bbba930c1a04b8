"""The distribution's metadata as setuptools builds it: packages, classifiers, license, URLs."""
from __future__ import annotations

import email
import subprocess
import sys
import tomllib
from email.message import Message

import pytest

from gates.ci_templates import ACTION_REPOSITORY
from tests.contracts.sandbox import REPO, build_backend_problem, copy_checkout

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
HOME = f"https://github.com/{ACTION_REPOSITORY}"


def test_every_package_folder_is_shipped():
    """A subpackage missing from ``packages`` imports in a checkout and fails in every wheel install."""
    tool = PYPROJECT["tool"]["setuptools"]
    listed = set(tool["packages"])
    found = set()
    for name, folder in tool["package-dir"].items():
        for init in sorted((REPO / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join((name, *rel.parts)))
    assert found == listed


def test_python_versions_follow_requires_python():
    versions = [c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"]
                if c.startswith("Programming Language :: Python :: 3.")]
    assert versions == ["3.11", "3.12", "3.13"] and PROJECT["requires-python"] == ">=3.11"


def test_the_project_urls_use_the_actions_repository():
    """The docs, the starter workflow and the URLs name one home."""
    urls = PROJECT["urls"]
    assert {"Homepage", "Repository", "Issues", "Documentation"} <= set(urls)
    assert all(u == HOME or u.startswith(HOME + "/") for u in urls.values())
    starter = (REPO / "starters" / "github" / "model-gates.yml").read_text(encoding="utf-8")
    assert f"uses: {ACTION_REPOSITORY}/actions/model-gates@" in starter


@pytest.fixture(scope="module")
def metadata(tmp_path_factory: pytest.TempPathFactory) -> Message:
    """The METADATA setuptools writes for a wheel of this checkout (built offline, in a copy)."""
    problem = build_backend_problem()
    if problem:
        pytest.skip(problem)
    src = copy_checkout(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("meta")
    code = ("import sys; from setuptools import build_meta as b; "
            "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning:setuptools", "-c", code, str(out)],
                          cwd=src, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TOML table is deprecated" not in done.stderr and "License classifiers" not in done.stderr
    folder = out / done.stdout.strip().splitlines()[-1]
    return email.message_from_string((folder / "METADATA").read_text(encoding="utf-8"))


def test_pytest_finds_the_plugin_by_its_classifier(metadata):
    """pytest's plugin list is built from PyPI projects classified ``Framework :: Pytest``."""
    classifiers = metadata.get_all("Classifier")
    assert "Framework :: Pytest" in classifiers
    assert {"Programming Language :: Python :: 3.11", "Programming Language :: Python :: 3.12",
            "Programming Language :: Python :: 3.13"} <= set(classifiers)
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert any(c.startswith("Topic :: ") for c in classifiers)


def test_the_license_is_an_spdx_expression(metadata):
    assert metadata["License-Expression"] == "Apache-2.0"
    assert not [c for c in metadata.get_all("Classifier") if c.startswith("License ::")]


def test_urls_and_keywords_reach_the_metadata(metadata):
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert urls["Repository"] == HOME and urls["Issues"] == f"{HOME}/issues"
    assert "pytest" in metadata["Keywords"].split(",")


def test_the_extras_reach_the_metadata(metadata):
    assert set(metadata.get_all("Provides-Extra")) == set(PROJECT["optional-dependencies"])
