"""Shared fixtures: small policies on prediction columns, written to tmp folders."""
from __future__ import annotations

import os

# OpenMP thread pools thrash on a loaded 2-core machine; one thread per test process is faster.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: pytester runs the pytest plugin's tests; pytest accepts pytest_plugins only in this top-level conftest
pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = (REPO / ".." / "shared" / "contracts").resolve()

BASE_POLICY = """\
version: 1
model:
  name: demo
  task: binary_classification
  candidate: {{predictions: cand_pred, scores: cand_score}}
  baseline: {{predictions: base_pred, scores: base_score}}
  positive_label: 1
data:
  eval: eval.csv
  target: label
seed: 7
gates:
  regression:
    bootstrap: 500
    metrics:
{metrics}
"""


def scored_frame(n: int = 2000, *, cand_shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Return labels plus two correlated scorers; ``cand_shift`` < 0 makes the candidate worse."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.normal(size=n)
    base = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + signal)))
    cand = 1 / (1 + np.exp(-((1.2 + cand_shift) * (2 * y - 1) + signal + 0.3 * rng.normal(size=n))))
    return pd.DataFrame({
        "label": y, "x": signal, "group": np.where(rng.random(n) < 0.5, "a", "b"),
        "cand_score": cand, "cand_pred": (cand >= 0.5).astype(int),
        "base_score": base, "base_pred": (base >= 0.5).astype(int),
    })


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """Write eval.csv and a gates.yaml (regression metrics given as YAML lines); return its path."""

    def write(metrics: str = "accuracy: {min: 0.5, max_drop: 0.05}", *, frame: pd.DataFrame | None = None,
              text: str | None = None) -> Path:
        (frame if frame is not None else scored_frame()).to_csv(tmp_path / "eval.csv", index=False)
        body = text if text is not None else BASE_POLICY.format(
            metrics=textwrap.indent(metrics, " " * 6))
        path = tmp_path / "gates.yaml"
        path.write_text(body, encoding="utf-8")
        return path

    return write


def trusted_types_for(*paths: Path) -> str:
    """Return the ``trusted_types: [...]`` line that lets these .skops files load ('' when none is needed).

    Tests trust exactly what skops' audit lists in the models they fitted themselves, as a user does
    after reviewing those types (docs/security.md).
    """
    import skops.io as sio

    from gates.models.trust import trusted_types_line

    found = {str(t) for p in paths if p.suffix == ".skops" and p.is_file() for t in sio.get_untrusted_types(file=p)}
    return trusted_types_line(found) if found else ""


def whole_frame(policy: object, **options: object) -> object:
    """Run ``policy`` on the embedded engine reading the data whole (``engine.batches: false``):
    the baseline that batched and dask runs are compared with."""
    from gates.policy import EngineSpec
    from gates.runner import RunOptions, run_policy

    return run_policy(policy, options=RunOptions(engine=EngineSpec("local", batches=False), **options))  # type: ignore[arg-type]


def write_parquet_parts(folder: Path, frame: pd.DataFrame, pieces: int, row_group: int | None = None) -> None:
    """Write ``frame`` into ``folder`` (created) as ``pieces`` Parquet files part-0.parquet, part-1.parquet, ..."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), pieces)):
        pq.write_table(pa.Table.from_pandas(frame.iloc[rows], preserve_index=False),
                       folder / f"part-{i}.parquet", row_group_size=row_group)


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[tuple[object, ...]]:
    """Replace ``owner.name`` by a wrapper that records each call's positional arguments; return the record."""
    calls: list[tuple[object, ...]] = []
    real = getattr(owner, name)

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls
