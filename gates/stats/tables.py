"""Sums over the short axes of count tables, the way every replicate table is reduced.

Replicate tables have a long leading axis (the replicates, often tens of thousands under a
multiple-testing correction) and short trailing ones: slices or groups, true label, candidate
label, baseline label, each of length 2 for a binary task. ``ndarray.sum`` over such a short,
strided axis walks it element by element and is 10-30x slower than adding the axis' slices as
whole arrays. :func:`axis_sum` adds them in index order, which is the order numpy accumulates a
short axis in, so the result is the same number (exactly so for counts: sums of integers below
2**53 are exact in float64, in any order).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: axes up to this length are summed slice by slice; longer ones by ``ndarray.sum``
SHORT_AXIS = 16


def axis_sum(a: np.ndarray, axis: int | Sequence[int]) -> np.ndarray:
    """Return ``a.sum(axis=axis)`` for a float array, adding short axes' slices in index order.

    Examples
    --------
    >>> t = np.arange(24.0).reshape(3, 2, 2, 2)
    >>> bool((axis_sum(t, -1) == t.sum(axis=-1)).all()), bool((axis_sum(t, (-2, -1)) == t.sum(axis=(-2, -1))).all())
    (True, True)
    """
    a = np.asarray(a)
    axes = sorted({ax % a.ndim for ax in ([axis] if isinstance(axis, int) else axis)}, reverse=True)
    if a.dtype.kind != "f" or any(a.shape[ax] == 0 or a.shape[ax] > SHORT_AXIS for ax in axes):
        return np.asarray(a.sum(axis=tuple(axes)))
    out = a
    for ax in axes:  # highest first, so the lower axes keep their numbers
        out = _one_axis(out, ax)
    return out


def diagonal_sum(a: np.ndarray) -> np.ndarray:
    """Return the trace of each ``(..., K, K)`` table, ``np.trace(a, axis1=-2, axis2=-1)`` for floats."""
    a = np.asarray(a)
    k = a.shape[-1]
    if a.dtype.kind != "f" or a.shape[-2] != k or k == 0 or k > SHORT_AXIS:
        return np.asarray(np.trace(a, axis1=-2, axis2=-1))
    out = a[..., 0, 0].copy()
    for i in range(1, k):
        out += a[..., i, i]
    return out


def _one_axis(a: np.ndarray, axis: int) -> np.ndarray:
    lead = (slice(None),) * axis
    out = a[(*lead, 0)].copy()
    for i in range(1, a.shape[axis]):
        out += a[(*lead, i)]
    return out
