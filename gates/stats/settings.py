"""Interval settings, declared once for every gate with interval checks, and the replicates rule."""
from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

#: the keys every gate with interval checks accepts, as in gates.yaml
KEYS = ("decision", "on_inconclusive", "confidence", "bootstrap", "multiple_testing")

#: below this many rows (clusters) per slice, a score-mean interval resamples rather than using the
#: paired normal (delta-method) interval; at and above it the two agree (tests/gates/stats)
ANALYTIC_MIN_ROWS = 10_000

#: replicates beyond each end of a percentile interval (DESIGN section 5)
TAIL_REPLICATES = 50


class Rule(enum.StrEnum):
    POINT = "point"
    NON_INFERIORITY = "non_inferiority"


class Correction(enum.StrEnum):
    NONE = "none"
    BONFERRONI = "bonferroni"
    HOLM = "holm"


@dataclass(frozen=True)
class IntervalSettings:
    """How a gate's interval checks are decided; every field has the documented default.

    ``bootstrap`` is the *minimum* number of replicates: :meth:`replicates` raises it so the
    family's most adjusted interval still rests on :data:`TAIL_REPLICATES` replicates per tail.
    """

    decision: Rule = Rule.NON_INFERIORITY
    on_inconclusive: str = "fail"
    confidence: float = 0.95
    bootstrap: int = 1000
    multiple_testing: Correction = Correction.HOLM

    @classmethod
    def of(cls, section: Mapping[str, Any]) -> IntervalSettings:
        """Return the settings of a gate section (a mapping as in gates.yaml), defaults filled in."""
        given = {k: section[k] for k in KEYS if k in section}
        out = cls()
        return cls(decision=Rule(given.get("decision", out.decision)),
                   on_inconclusive=str(given.get("on_inconclusive", out.on_inconclusive)),
                   confidence=float(given.get("confidence", out.confidence)),
                   bootstrap=int(given.get("bootstrap", out.bootstrap)),
                   multiple_testing=Correction(given.get("multiple_testing", out.multiple_testing)))

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    def lowest_level(self, family_size: int) -> float:
        """Return the highest confidence level any member of a family of ``family_size`` may use.

        Bonferroni gives every member ``1 - alpha / k``; Holm gives its first member that level and
        the others less; without a correction every member uses ``confidence``.
        """
        if self.multiple_testing is Correction.NONE or family_size <= 1:
            return self.confidence
        return 1.0 - self.alpha / family_size

    def replicates(self, family_size: int) -> int:
        """Return the bootstrap replicates a family of ``family_size`` blocking checks needs."""
        return replicates_for(self.lowest_level(family_size), self.bootstrap)

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as gates.yaml spells them."""
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), enum.Enum) else v) for f in fields(self)}


def replicates_for(level: float, minimum: int = 0) -> int:
    """Return ``max(minimum, ceil(100 / (1 - level)))``: 50 replicates beyond each end at ``level``.

    >>> replicates_for(0.95), replicates_for(0.95, 5000), replicates_for(1 - 0.05 / 12)
    (2000, 5000, 24000)
    """
    tail = 1.0 - level
    if not 0.0 < tail < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return max(int(minimum), math.ceil(round(2 * TAIL_REPLICATES / tail, 6)))


class WithIntervals:
    """Read-through names for a plan that holds its gate's :class:`IntervalSettings` as ``intervals``."""

    intervals: IntervalSettings

    @property
    def rule(self) -> Rule:
        return self.intervals.decision

    @property
    def on_inconclusive(self) -> str:
        return self.intervals.on_inconclusive

    @property
    def confidence(self) -> float:
        return self.intervals.confidence

    @property
    def correction(self) -> Correction:
        return self.intervals.multiple_testing
