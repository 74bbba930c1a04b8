"""The lifecycle GitHub and GitLab publishing share: guarded steps and one warning per API problem.

A subclass says how to open a run on its platform (``_open``), what it writes locally
(``_write_local``), how it concludes through the API (``_conclude``) and how it closes a run that
ended without a verdict (``abandon``, registered at exit once a run is open).
"""
from __future__ import annotations

import abc
import atexit
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gates.publishers.http import MSG_SKIPPED, ApiClient


class ApiPublisher(abc.ABC):
    """Base of the API publishers; every problem becomes a warning, never an exception."""

    name = ""
    #: the warning for an unexpected failure, with ``{error}``
    unexpected = "publishing failed: {error}"

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._model = ""
        self._finished = False
        self._reported: set[str] = set()
        self._budget_said = False

    def started(self, model_name: str) -> list[str]:
        """Announce a running gate on the platform; return warnings."""
        return self._budget_once(self._guard(self._start, model_name))

    def publish(self, report: Mapping[str, Any], report_dir: Path) -> list[str]:
        """Write the local outputs, then conclude through the API; return warnings."""
        return self._budget_once(self._guard(self._publish, report, report_dir))

    def _budget_once(self, warnings: list[str]) -> list[str]:
        """Replace the warnings of steps skipped for a spent publishing budget by one warning, said once."""
        kept = [w for w in warnings if MSG_SKIPPED not in w]
        note = self._client.budget_warning()
        if note is not None and not self._budget_said:
            self._budget_said = True
            kept.append(note)
        return kept

    def _guard(self, step: Callable[..., list[str]], *args: Any) -> list[str]:
        """Run a publishing step; anything unexpected becomes a warning, since a verdict must never
        depend on publishing."""
        try:
            return step(*args)
        except Exception as exc:  # noqa: BLE001 -- see the docstring
            return [self._client.mask(self.unexpected.format(error=f"{type(exc).__name__}: {exc}"))]

    def _start(self, model_name: str) -> list[str]:
        self._model = model_name
        problem = self._api_problem()
        if problem:
            self._reported.add(problem)
            return [problem]
        atexit.register(self.abandon)
        return self._open(model_name)

    def _publish(self, report: Mapping[str, Any], report_dir: Path) -> list[str]:
        self._finished = True
        self._model = self._model or str(report["model"]["name"])
        warnings = self._write_local(report, report_dir)
        problem = self._api_problem()
        if problem:  # said once: started() may have said it already
            return warnings if problem in self._reported else warnings + [problem]
        return warnings + self._conclude(report)

    @abc.abstractmethod
    def _api_problem(self) -> str | None:
        """Return why the API cannot be used (no token, unknown commit), or None."""

    @abc.abstractmethod
    def _open(self, model_name: str) -> list[str]:
        """Mark the run as in progress on the platform; return warnings."""

    @abc.abstractmethod
    def _write_local(self, report: Mapping[str, Any], report_dir: Path) -> list[str]:
        """Write what needs no API (files, workflow commands); return warnings."""

    @abc.abstractmethod
    def _conclude(self, report: Mapping[str, Any]) -> list[str]:
        """Publish the verdict through the API (status, check run, comment); return warnings."""

    @abc.abstractmethod
    def abandon(self) -> None:
        """Close a run that ended without a verdict (called at exit)."""
