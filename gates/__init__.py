"""model-gates: decide whether a candidate ML model version may be registered."""
from __future__ import annotations

__version__ = "0.1.0"
