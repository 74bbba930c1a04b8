"""Typed results: one CheckResult per check, one Verdict per run."""
from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gates.identity import CheckId, Reason, one_line, untyped

__all__ = ["FAILING", "CheckId", "CheckResult", "Outcome", "Reason", "Status", "Verdict"]


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"
    WAIVED = "waived"
    ERROR = "error"


#: statuses that make a blocking check fail the verdict
FAILING = frozenset({Status.FAIL, Status.INCONCLUSIVE, Status.ERROR})


class Outcome(enum.StrEnum):
    """What a check measured, before severity and ``on_inconclusive`` turn it into a Status."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class CheckResult:
    """The result of one check: a stable id, a status and the numbers behind it.

    ``reason`` is a stable machine code (:class:`~gates.identity.Reason`: ``threshold_breached``,
    ``no_baseline``, ...) beside the human ``message``. ``details`` holds small JSON-able tables,
    never row-level arrays. ``check_id`` is the typed identity ``id`` is the text of; gates set
    it where they plan the check, and :attr:`key` gives it for every result. A result given a text
    id only (a third-party gate's) holds its values as they are: it is written once, like every id
    writes text (:func:`gates.identity.one_line`: a backslash ``\\\\``, a line break ``\\n``), and read
    back as its ``check_id``, so the id round-trips through report.json and :func:`~gates.identity.untyped`.
    """

    id: str
    gate: str
    status: Status
    blocking: bool
    message: str
    reason: str = ""
    observed: float | None = None
    baseline: float | None = None
    delta: float | None = None
    threshold: Mapping[str, Any] = field(default_factory=dict)
    ci: tuple[float, float] | None = None
    ci_method: str | None = None
    half_width: float | None = None
    confidence: float | None = None
    adjusted_confidence: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    waiver: Mapping[str, Any] | None = None
    check_id: CheckId | None = None

    def __post_init__(self) -> None:
        if self.check_id is None:  # a text id holds values as they are: write it as every id writes text, once
            text = one_line(self.id)
            object.__setattr__(self, "id", text)
            object.__setattr__(self, "check_id", untyped(self.gate, text))  # a copy (a waiver's) keeps this text

    @property
    def key(self) -> CheckId:
        """Return the typed identity (:func:`gates.identity.untyped` for a result built with a text id only)."""
        return self.check_id if self.check_id is not None else untyped(self.gate, self.id)

    @property
    def is_failing(self) -> bool:
        """True when this check makes the verdict fail."""
        return self.blocking and self.status in FAILING


@dataclass(frozen=True)
class Verdict:
    """The run's outcome: ``fail`` if a blocking check failed, else ``incomplete`` when something
    blocking was left out (``incomplete`` says what: a pytest session that deselected a blocking
    check), else ``pass``. Only ``pass`` registers.
    """

    checks: Sequence[CheckResult]
    incomplete: str | None = None

    @property
    def passed(self) -> bool:
        return self.value == "pass"

    @property
    def value(self) -> str:
        if any(c.is_failing for c in self.checks):
            return "fail"
        return "incomplete" if self.incomplete else "pass"

    def counts(self) -> dict[str, int]:
        """Return the number of checks per status, every status listed."""
        out = {s.value: 0 for s in Status}
        for c in self.checks:
            out[c.status.value] += 1
        return out
