"""An independent re-derivation of the perturbations' row-keyed draws, one row at a time in plain ints.

Follows the documented scheme, not the vectorised code: a stream's seed is the first 8 bytes
(little endian) of blake2b over ``repr((seed, *names))``; a draw's uniform for row key ``k`` is the
top 53 bits of ``mix(mix(k ^ sub) + golden)`` with ``sub`` the seed of (stream, column, draw name)
and ``mix`` SplitMix64's finaliser; a normal is Box-Muller on the ``:radius`` and ``:angle`` uniforms.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def seed_of(seed: int, *names: str) -> int:
    return int.from_bytes(hashlib.blake2b(repr((int(seed), *names)).encode(), digest_size=8).digest(), "little")


def splitmix(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def uniforms(seed: int, names: Sequence[str], column: str, draw: str, keys: Sequence[int]) -> np.ndarray:
    sub = seed_of(seed_of(seed, *names), column, draw)
    return np.array([(splitmix((splitmix(int(k) ^ sub) + GOLDEN) & MASK) >> 11) / 2.0 ** 53 for k in keys])


def normals(seed: int, names: Sequence[str], column: str, draw: str, keys: Sequence[int]) -> np.ndarray:
    u1 = uniforms(seed, names, column, draw + ":radius", keys)
    u2 = uniforms(seed, names, column, draw + ":angle", keys)
    return np.array([math.sqrt(-2.0 * math.log(1.0 - a)) * math.cos(2.0 * math.pi * b) for a, b in zip(u1, u2)])
