"""CI files ``model-gates init --ci github|gitlab`` writes into a project.

The files ship inside the package (``gates/templates/``) as copies of the user-facing sources in
the repository: the GitLab component in ``templates/`` (the CI/CD catalog's folder, which holds
components only) and the starters in ``starters/`` (the GitHub workflow, the pipeline that includes
the component, the commented gates.yaml), so a wheel install can scaffold a project offline.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from gates.errors import UserError

PLATFORMS = ("github", "gitlab")
#: where the composite action lives (``uses: ACTION_REPOSITORY/actions/model-gates@vVERSION``)
ACTION_REPOSITORY = "model-gates/model-gates"
#: packaged template -> path written, relative to the project folder
GITHUB_FILES = {"github-workflow.yml": ".github/workflows/model-gates.yml"}
GITLAB_COMPONENT = ("gitlab-component.yml", ".gitlab/model-gates.yml")
GITLAB_PIPELINE = ("gitlab-ci.yml", ".gitlab-ci.yml")

MSG_UNKNOWN_PLATFORM = "unknown CI platform {platform!r}: expected one of " + ", ".join(PLATFORMS)
MSG_EXISTS = "already exists (use --force to overwrite)"
NEXT_STEPS = {
    "github": ("commit .github/workflows/model-gates.yml; pull requests then get a model-gates check and "
               "comment (see docs/ci.md for forks and registries)"),
    "gitlab": ("add a project access token (scope api) as the masked CI/CD variable MODEL_GATES_GITLAB_TOKEN, "
               "then commit .gitlab/model-gates.yml and .gitlab-ci.yml"),
    "gitlab-include": ("your .gitlab-ci.yml was left as it is: add\n  include:\n    - local: .gitlab/model-gates.yml\n"
                       "      inputs: {config: gates.yaml}"),
}


def template_text(name: str) -> str:
    """Return a packaged CI template (``github-workflow.yml``, ``gitlab-component.yml``, ``gitlab-ci.yml``)."""
    return resources.files("gates").joinpath("templates", name).read_text(encoding="utf-8")


def write_ci_files(platform: str, folder: Path, *, force: bool = False) -> list[Path]:
    """Write the CI files for ``platform`` into the project ``folder``; return the paths written.

    GitHub gets ``.github/workflows/model-gates.yml``. GitLab gets the component as
    ``.gitlab/model-gates.yml`` and a ``.gitlab-ci.yml`` that includes it; an existing
    ``.gitlab-ci.yml`` is left alone (``NEXT_STEPS["gitlab-include"]`` says what to add).
    A model-gates file that already exists is a ``UserError`` unless ``force`` (an existing
    ``.gitlab-ci.yml`` is the project's whole pipeline and is never overwritten).

    Examples
    --------
    >>> write_ci_files("github", Path("."))  # doctest: +SKIP
    [PosixPath('.github/workflows/model-gates.yml')]
    """
    if platform not in PLATFORMS:
        raise UserError(MSG_UNKNOWN_PLATFORM.format(platform=platform))
    if platform == "github":
        plan = list(GITHUB_FILES.items())
    else:
        plan = [GITLAB_COMPONENT]
        if not (folder / GITLAB_PIPELINE[1]).exists():
            plan.append(GITLAB_PIPELINE)
    targets = [(name, folder / rel) for name, rel in plan]
    for _, target in targets:
        if target.exists() and not force:
            raise UserError(MSG_EXISTS, location=str(target))
    for name, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(template_text(name), encoding="utf-8")
    return [target for _, target in targets]
