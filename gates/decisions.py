"""Turn estimates into outcomes: the names :mod:`gates.stats.family` defines, for existing imports."""
from __future__ import annotations

from gates.stats.family import (
    adjusted_levels,
    decide_bounds,
    decide_margin,
    holm_gate,
    holm_order,
    to_status,
)
from gates.stats.settings import Correction, Rule

__all__ = ["Correction", "Rule", "adjusted_levels", "decide_bounds", "decide_margin", "holm_gate", "holm_order",
           "to_status"]
