"""Publishers: show a verdict where a team looks (GitHub, GitLab). Chosen by ``--ci``.

A publisher never changes the verdict: every failure to publish comes back as a warning line.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from gates.errors import UserError

CI_CHOICES = ("auto", "github", "gitlab", "none")
MSG_UNKNOWN_CI = "unknown --ci value {value!r}: expected one of " + ", ".join(CI_CHOICES)


class Publisher(Protocol):
    """One CI platform's view of a run."""

    name: str

    def ci_info(self) -> dict[str, Any]:
        """Return the report's ``run.ci`` block (platform, run URL, commit, PR/MR number)."""

    def started(self, model_name: str) -> list[str]:
        """Announce a running gate (e.g. a pending commit status); return warnings."""

    def publish(self, report: Mapping[str, Any], report_dir: Path) -> list[str]:
        """Publish a finished report (status, comment, summary, outputs); return warnings."""


def detect(env: Mapping[str, str] | None = None) -> str:
    """Return ``github``, ``gitlab`` or ``none`` from the CI's own environment variables."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    return "none"


def select_publisher(choice: str, env: Mapping[str, str] | None = None) -> Publisher | None:
    """Return the publisher for ``--ci`` (``auto`` detects it), or None for ``none``."""
    env = dict(os.environ if env is None else env)
    if choice not in CI_CHOICES:
        raise UserError(MSG_UNKNOWN_CI.format(value=choice))
    platform = detect(env) if choice == "auto" else choice
    if platform == "github":
        from gates.publishers.github import GitHubPublisher

        return GitHubPublisher(env)
    if platform == "gitlab":
        from gates.publishers.gitlab import GitLabPublisher

        return GitLabPublisher(env)
    return None
