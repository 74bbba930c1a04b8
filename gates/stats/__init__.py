"""The statistics core: one settings type, one family decision, and mergeable partial statistics.

Every gate (regression, fairness, robustness) and ``calibrate`` decide interval checks with the
same machinery:

* :class:`~gates.stats.settings.IntervalSettings` holds ``decision``, ``on_inconclusive``,
  ``confidence``, ``bootstrap`` and ``multiple_testing`` (one frozen type with defaults; the
  schema ``$defs`` of the same keys is ``gates/schemas/interval_settings.schema.json``, referenced
  by every gate section). :meth:`~gates.stats.settings.IntervalSettings.replicates` says how many
  bootstrap replicates a family needs: each end of an interval at the adjusted level ``L`` rests
  on at least 50 replicates (``B >= 100 / (1 - L)``; ``bootstrap`` is the minimum).
* :func:`~gates.stats.family.decide_family` decides a gate's *blocking* interval checks together:
  levels adjusted over the family under every decision rule, ``point`` or ``non_inferiority``,
  Holm's step-down stop, ``inconclusive``. Warn-only checks are decided at the nominal level and
  never widen a blocking interval.
* :mod:`gates.stats.partials` holds each metric family's statistics as *partials*: cell counts
  (:class:`~gates.stats.partials.CellCounts`), moments of per-row statistics
  (:class:`~gates.stats.partials.Moments`) and Poisson-weighted sums
  (:class:`~gates.stats.partials.PoissonSums`). Each has ``of(batch...)``, ``merge(other)`` and a
  finalize step (``estimate``) giving a point value and an interval.
* :mod:`gates.stats.weights` draws the Poisson(1) bootstrap weight of a row from a hash of
  (row key, replicate, seed): the same row gets the same weight whichever batch it arrives in. The
  row key is the cluster key when ``data.cluster`` is set, else a declared id column, else the
  row's position in the eval data (:func:`~gates.stats.weights.row_keys`).

How an engine drives it
-----------------------
The embedded engine is one batch. A distributed engine (Dask) runs the same code in pieces:

1. The client builds the plan and the :class:`IntervalSettings`, counts the blocking interval
   checks (the family size ``k``) and fixes ``B = settings.replicates(k)`` and the seed *before*
   any worker starts; every worker gets the same ``B``, seed, cell layout (the grouping codes of
   the slices or groups, as ``CellLayout`` values) and, for Poisson sums, the same ``centre``.
2. Each worker turns its batch of rows into partials: ``CellCounts.of(...)``,
   ``Moments.of(...)``, ``PoissonSums.of(keys, ...)`` with the batch's row keys (positions are
   global: batch offset + row index, or the cluster / id key).
3. The client merges the partials **in a fixed order** (batch index order), with
   ``functools.reduce(Partial.merge, partials)``. Counts and Poisson sums are integer-exact or
   order-stable, so 1, 3 or 7 batches give the same numbers; ``Moments`` merge by Chan's formula,
   exact up to float rounding.
4. The client finalizes: ``estimate(...)`` gives each statistic's point value and its sampling
   distribution (:class:`~gates.intervals.Estimate`, replicates or a standard error), and
   :func:`decide_family` decides.

A statistic without a mergeable form (ROC AUC's DeLong variance needs every row's rank) is
computed on the client from gathered scores, or reported with ``Reason.NOT_DISTRIBUTABLE`` by an
engine that cannot gather them.
"""
from __future__ import annotations

from gates.stats.budget import MEMORY_BUDGET, chunk_rows
from gates.stats.family import Decided, FamilyDecision, Member, decide_family
from gates.stats.partials import CellCounts, Moments, Partial, PoissonSums, merge_all
from gates.stats.settings import (
    ANALYTIC_MIN_ROWS,
    Correction,
    IntervalSettings,
    Rule,
    replicates_for,
)
from gates.stats.weights import poisson_weights, row_keys

__all__ = [
    "ANALYTIC_MIN_ROWS", "MEMORY_BUDGET", "CellCounts", "Correction", "Decided", "FamilyDecision",
    "IntervalSettings", "Member", "Moments", "Partial", "PoissonSums", "Rule", "chunk_rows",
    "decide_family", "merge_all", "poisson_weights", "replicates_for", "row_keys",
]
