"""The one memory budget of the statistics core: how many array cells a chunk of replicates may hold."""
from __future__ import annotations

#: cells (replicates x rows, or replicates x table cells) in one chunk: 8M float64 = 64 MB
MEMORY_BUDGET = 8_000_000


def chunk_rows(total: int, width: int, budget: int = MEMORY_BUDGET) -> int:
    """Return how many of ``total`` replicates fit in one chunk of ``width`` cells each (at least 1)."""
    return max(1, min(total, budget // max(width, 1)))
