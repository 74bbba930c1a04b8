"""A user's own tests marked ``@pytest.mark.model_gate`` as checks in the verdict.

A marked test's reports (setup, call, teardown) are folded into one
:class:`~gates.results.CheckResult` with id ``pytest.<nodeid>`` and gate ``pytest``. The fold reads
only report attributes that survive pytest-xdist's serialisation, so the controller can build
the same results from its workers' reports.

The session keeps the verdict's rules: a failing test that does not block (``blocking=False``, or
any marked test in shadow mode) is a ``warn`` (shadow: its real status) in the verdict and an
xfail in pytest, so it never fails the session; :func:`soften` does that where the report is made.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from gates.identity import one_line, untyped
from gates.results import CheckResult, Status

GATE = "pytest"
#: the report attribute carrying a marked test's settings from wherever it ran to the controller
REPORT_ATTR = "model_gate"
MSG_PASSED = "the test passed"
MSG_SKIPPED = "the test was skipped: {reason}"
MSG_XFAILED = "the test failed as expected (xfail): {reason}"
MSG_FAILED = "the test failed: {crash}"
MSG_ERROR = "the test errored in {when}: {crash}"
MSG_SOFT = "model_gate(blocking=False): reported as a warning, does not fail the session: {crash}"
MSG_SHADOW = "shadow mode (reported, never blocks): {crash}"

_RANK = {Status.PASS: 0, Status.SKIPPED: 1, Status.WARN: 2, Status.ERROR: 3, Status.FAIL: 4}


def marker_settings(item: pytest.Item) -> dict[str, Any] | None:
    """Return ``{"blocking": bool}`` for a test marked ``model_gate``, else None."""
    mark = item.get_closest_marker("model_gate")
    if mark is None:
        return None
    return {"blocking": bool(mark.kwargs.get("blocking", True))}


def soften(report: pytest.TestReport, settings: dict[str, Any], *, is_shadow: bool) -> dict[str, Any]:
    """Turn a failed report of a test that must not fail the session into an xfail; return its settings.

    The failure is kept in the returned settings (``failure``: phase and crash line), which travel
    with the report, so the verdict still sees what happened. A teardown failure becomes a pass in
    pytest (its test already has an outcome) and a warning in the model-gates summary.
    """
    if not report.failed or (settings["blocking"] and not is_shadow):
        return settings
    crash = _crash_line(report)
    if report.when == "teardown":
        report.outcome = "passed"
        report.longrepr = None
    else:
        report.outcome = "skipped"
        report.wasxfail = (MSG_SHADOW if is_shadow else MSG_SOFT).format(crash=crash)  # type: ignore[attr-defined]
    return {**settings, "failure": {"when": report.when, "crash": crash}}


def check_id(nodeid: str) -> str:
    r"""Return the check id of a test: ``pytest.`` + its node id as an id writes text (:func:`gates.identity.one_line`).

    Node ids are unique in a session and the escape is reversible (a backslash is written ``\\``,
    a line break ``\n``), so two tests never share a check id.
    """
    return f"{GATE}." + one_line(nodeid)


@dataclass
class _Phase:
    status: Status
    message: str
    reason: str
    when: str


class MarkedTests:
    """The marked tests seen so far, in the order they first reported."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[bool, _Phase]] = {}

    def observe(self, report: pytest.TestReport) -> None:
        """Fold one phase report of a marked test into its result; others are ignored."""
        settings = getattr(report, REPORT_ATTR, None)
        if not settings:
            return
        phase = _phase(report, blocking=settings["blocking"], failure=settings.get("failure"))
        previous = self._seen.get(report.nodeid)
        if previous is None or _RANK[phase.status] > _RANK[previous[1].status]:
            self._seen[report.nodeid] = (settings["blocking"], phase)

    @property
    def nodeids(self) -> set[str]:
        return set(self._seen)

    def results(self) -> list[CheckResult]:
        """Return one CheckResult per marked test that reported."""
        return [
            CheckResult(id=text, check_id=untyped(GATE, text), gate=GATE, status=p.status, blocking=blocking,
                        message=p.message, reason=p.reason, details={"nodeid": nodeid, "when": p.when})
            for nodeid, (blocking, p) in self._seen.items() for text in [check_id(nodeid)]  # written already
        ]


def _phase(report: pytest.TestReport, *, blocking: bool, failure: dict[str, str] | None = None) -> _Phase:
    """Return what one phase of a test says: pass, skip, fail (call) or error (setup/teardown).

    ``failure`` is a failure :func:`soften` turned into an xfail: it counts as the failure it was.
    """
    if failure is not None:
        return _failed(failure["when"], failure["crash"], blocking)
    if report.passed:
        return _Phase(Status.PASS, MSG_PASSED, "test_passed", report.when)
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return _Phase(Status.SKIPPED, MSG_XFAILED.format(reason=report.wasxfail or "no reason given"),
                          "test_xfailed", report.when)
        return _Phase(Status.SKIPPED, MSG_SKIPPED.format(reason=_skip_reason(report)), "test_skipped", report.when)
    return _failed(report.when, _crash_line(report), blocking)


def _failed(when: str, crash: str, blocking: bool) -> _Phase:
    if when == "call":
        return _Phase(Status.FAIL if blocking else Status.WARN, MSG_FAILED.format(crash=crash), "test_failed", when)
    return _Phase(Status.ERROR if blocking else Status.WARN, MSG_ERROR.format(when=when, crash=crash),
                  "test_error", when)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _crash_line(report: pytest.TestReport) -> str:
    """Return the one line that says why the test failed (the exception, as pytest shows it)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message).splitlines()[0]
    lines = [ln for ln in str(report.longrepr).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E ")]
    return (errors[0][1:].strip() if errors else lines[-1].strip()) if lines else "no details"
