"""The policy file as a pytest collector, and one test item per check.

Items carry a check in report form (the dict report.json holds), so a pytest-xdist worker can be
handed the controller's results instead of running the gates again. An item never computes
anything: its outcome is the check's status, mapped as DESIGN section 10 says.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gates.errors import GateError
from gates.identity import CheckId, of_report
from gates.reporters.junit import failure_text

HINT_FAIL = ("hint: the candidate breaches this threshold; the numbers behind it are in {report}. "
             "To accept it anyway, add a waiver for {id} (waivers: in the policy) with a reason.")
HINT_INCONCLUSIVE = ("hint: the interval straddles the margin, so the data cannot tell; more eval rows "
                     "narrow it{half_width}, or on_inconclusive: warn reports it without blocking.")
HINT_ERROR = ("hint: this check could not be computed (bad or missing data, or a model that raised); "
              "fix the cause, or add a waiver for {id} with a reason.")
MSG_SHADOW = "shadow mode (reported, never blocks): {status}: {text}"
MSG_LOCATION = "model-gates check {id}"


class PolicyFile(pytest.File):
    """The policy file: collecting it yields one :class:`CheckItem` per check of the run."""

    def collect(self) -> Iterator[CheckItem]:
        from pytest_model_gates.session import session_of

        gate = session_of(self.config)
        gate.is_collected = True
        try:
            checks = gate.checks()
        except GateError as exc:
            raise self.CollectError(str(exc)) from None
        for check in checks:
            yield CheckItem.from_parent(self, name=check["id"], nodeid=f"{self.nodeid}::{check['id']}",
                                        check=check, is_shadow=gate.policy.is_shadow,
                                        report_dir=gate.settings.report_dir,
                                        line=declaring_line(gate.policy.lines, of_report(check)))


def declaring_line(lines: Mapping[tuple[str | int, ...], int], check_id: CheckId) -> int | None:
    """Return the 1-based line of the policy key that best matches ``check_id``, or None.

    The id's fields are matched against key paths under ``gates.GATE``: the path naming most of
    NAME, KIND and the SCOPE's columns wins, so a failure points at the threshold that produced it
    (``metrics: {accuracy: {min: ...}}``), or at least at the gate's section.
    """
    gate = check_id.gate
    columns = [part.partition("=")[0] for part in check_id.scope.split("&")] if check_id.scope else []
    parts = {check_id.name, check_id.kind, check_id.scope, *columns} - {""}
    best: tuple[int, int] | None = None
    for path, line in lines.items():
        if path[:2] != ("gates", gate):
            continue
        score = len(parts.intersection(str(p) for p in path[2:]))
        if best is None or score > best[0]:
            best = (score, line)
    return None if best is None else best[1]


def policy_file(parent: pytest.Collector, path: Path) -> PolicyFile:
    """Return the collector of ``path``, its node id relative to the rootdir like any test file."""
    rel = Path(os.path.relpath(path, parent.config.rootpath)).as_posix()
    return PolicyFile.from_parent(parent, path=path, nodeid=rel)


class CheckItem(pytest.Item):
    """One check: passes, fails, skips or errors as the check's status says."""

    def __init__(self, *, check: Mapping[str, Any], is_shadow: bool, report_dir: Path, line: int | None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.line = line
        self.is_shadow = is_shadow
        self.report_dir = report_dir
        self.add_marker(pytest.mark.model_gate(gate=check["gate"], blocking=check["blocking"]))
        self.extra_keyword_matches.add(check["gate"])
        self.user_properties.extend([("model_gates.status", check["status"]),
                                     ("model_gates.blocking", check["blocking"])])

    @property
    def status(self) -> str:
        return str(self.check["status"])

    def setup(self) -> None:
        """Fail here for an ``error`` check, so pytest reports it as an error, not a failure."""
        if self.status == "error" and not self.is_shadow:
            pytest.fail(self.explain(), pytrace=False)

    def runtest(self) -> None:
        status = self.status
        if status in ("fail", "inconclusive", "error") and self.is_shadow:
            pytest.xfail(MSG_SHADOW.format(status=status, text=failure_text(self.check)))
        if status in ("fail", "inconclusive"):
            pytest.fail(self.explain(), pytrace=False)
        if status == "skipped":
            pytest.skip(self.check["message"])
        if status in ("warn", "waived"):
            self.user_properties.append(("model_gates.note", self.note()))

    def explain(self) -> str:
        """Return observed vs threshold, the interval, the message and a hint."""
        return f"{self.status.upper()}: {failure_text(self.check)}\n{self.hint()}"

    def hint(self) -> str:
        cid = self.check["id"]
        if self.status == "inconclusive":
            hw = self.check.get("half_width")
            return HINT_INCONCLUSIVE.format(half_width="" if hw is None else f" (half-width now {hw:.4g})")
        if self.status == "error":
            return HINT_ERROR.format(id=cid)
        return HINT_FAIL.format(id=cid, report=self.report_dir / "report.json")

    def note(self) -> str:
        """Return why a warn or waived check passes anyway."""
        waiver = self.check.get("waiver") or {}
        if self.status == "waived":
            return (f"WAIVED ({waiver.get('original_status', '?')}): {waiver.get('reason', '')} "
                    f"(by {waiver.get('by', '?')})")
        return f"WARN: {self.check['message']}"

    def reportinfo(self) -> tuple[Path, int, str]:
        """Point at the policy line declaring the check (0-based, as pytest expects)."""
        return self.path, (self.line or 1) - 1, MSG_LOCATION.format(id=self.check["id"])

    def skip_location(self, longrepr: Any) -> Any:
        """Return a skip's ``(path, line, reason)`` pointing into the policy, not into this plugin."""
        if not (isinstance(longrepr, tuple) and len(longrepr) == 3):
            return longrepr
        return str(self.path), self.line or 1, longrepr[2]
