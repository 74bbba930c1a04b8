"""Sandboxes for CI end-to-end tests: a gated project, a checkout of this repository, a fresh Python.

The CI files install model-gates themselves (``pip install`` from the action's checkout, or the
component's ``package`` input). Tests run those commands for real, into a throwaway virtual
environment that borrows this environment's already-installed dependencies through a ``.pth``
file, so nothing is downloaded and the development environment is never modified.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BASE_POLICY, scored_frame

REPO = Path(__file__).resolve().parents[2]
#: what a checkout needs so that ``pip install CHECKOUT`` works
CHECKOUT_PARTS = ("gates", "pytest_plugin", "actions", "templates", "starters", "pyproject.toml", "README.md")
#: pip arguments that install from a local checkout without the network
OFFLINE_PIP_ARGS = "--no-deps --no-build-isolation --no-index"


def write_project(folder: Path, *, passing: bool, with_model: bool = False) -> Path:
    """Write eval.csv and gates.yaml (a regression gate) into ``folder``; return the policy path.

    ``with_model`` gates a real .skops model (registrable) instead of prediction columns.
    """
    folder.mkdir(parents=True, exist_ok=True)
    frame = scored_frame(1500, cand_shift=0.4 if passing else -0.8, seed=3)
    frame.to_csv(folder / "eval.csv", index=False)
    if with_model:
        return _model_policy(folder, frame)
    metrics = "accuracy: {min: 0.6, max_drop: 0.01}\nroc_auc: {max_drop: 0.01}"
    path = folder / "gates.yaml"
    path.write_text(BASE_POLICY.format(metrics=textwrap.indent(metrics, " " * 6)).replace("bootstrap: 500",
                                                                                         "bootstrap: 200"))
    return path


def _model_policy(folder: Path, frame: pd.DataFrame) -> Path:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    sio.dump(LogisticRegression().fit(frame[["x"]], frame["label"]), folder / "model.skops")
    path = folder / "gates.yaml"
    path.write_text(textwrap.dedent("""\
        version: 1
        model:
          name: demo
          task: binary_classification
          candidate: model.skops
          baseline: none
          positive_label: 1
        data:
          eval: eval.csv
          target: label
          features: [x]
        seed: 7
        gates:
          regression:
            bootstrap: 200
            metrics:
              accuracy: {min: 0.5}
        """))
    return path


def copy_checkout(dest: Path) -> Path:
    """Copy the parts of this repository an action checkout or a pip install needs."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for part in CHECKOUT_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore)
        elif src.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
    return dest


def build_backend_problem() -> str | None:
    """Return why this environment cannot build the checkout without build isolation, or None.

    Offline, pip cannot fetch ``[build-system] requires``: the environment's own setuptools and
    wheel build it (``scripts/test-tools.sh`` installs them), so they must meet those requirements.
    """
    import tomllib
    from importlib import metadata

    from packaging.requirements import Requirement

    requires = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    for spec in map(Requirement, requires):
        try:
            version = metadata.version(spec.name)
        except metadata.PackageNotFoundError:
            return f"building the checkout offline needs {spec} (bash scripts/test-tools.sh installs it)"
        if not spec.specifier.contains(version, prereleases=True):
            return f"building the checkout offline needs {spec}, not {spec.name} {version} (bash scripts/test-tools.sh)"
    return None


def can_build_offline() -> str | None:
    """Return why ``pip install --no-build-isolation CHECKOUT`` cannot work here, or None."""
    from importlib.util import find_spec

    if find_spec("pip") is None:
        return "installing the checkout needs pip in this environment (bash scripts/test-tools.sh installs it)"
    return build_backend_problem()


def fresh_python(dest: Path) -> Path:
    """Create a virtual environment that sees this environment's packages but not its model-gates.

    The ``.pth`` line adds this environment's site-packages as a plain path: ``.pth`` files
    there (the editable install of model-gates) are not processed, so ``import gates`` works
    only after something installs model-gates into the new environment.
    """
    problem = can_build_offline()
    if problem:
        pytest.skip(problem)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True, timeout=120)
    site = Path(subprocess.run([str(dest / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return dest / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    """Return this process's environment without CI platform variables (a test sets its own)."""
    drop = ("GITHUB_", "GITLAB_", "CI_", "RUNNER_", "MODEL_GATES_")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop) and k not in ("CI", "VIRTUAL_ENV", "PYTHONPATH")}
    env.update({"CI": "true", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra})
    return env


def read_report(folder: Path) -> dict[str, object]:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))
