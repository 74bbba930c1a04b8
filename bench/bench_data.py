"""Benchmark the data gate against plain pandas, pandera and Great Expectations doing the same checks.

Data: 1,000,000 rows x 20 columns (8 floats, 5 ints, 5 string categories, a unique id, a coded
string column), about 1% nulls in the float and category columns, a few hundred values breaking a
rule so failure cases are produced and summarised. The reference for drift is another 1,000,000
rows drawn from slightly shifted distributions.

Each workload runs in its own subprocess (fresh memory): it loads the Parquet files, imports what
it needs, then runs ``--repeat`` times. Time is the best run's CPU time of the process (all
threads; on a shared machine wall time mostly measures the neighbours), with the best wall time
beside it. Peak memory is the largest resident-set growth above the level before the first run
(sampled every 2 ms from /proc/self/statm). Ratios use CPU time, within one invocation.

    python bench/bench_data.py            # full size, prints a Markdown table
    python bench/bench_data.py --rows 100000 --repeat 1
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FLOATS = [f"f{i}" for i in range(8)]
INTS = [f"i{i}" for i in range(5)]
CATS = [f"c{i}" for i in range(5)]
CATEGORIES = {c: [f"{c}_{k}" for k in range(4 + 6 * i)] for i, c in enumerate(CATS)}
FLOAT_RANGE = (-10.0, 10.0)
INT_RANGE = (0, 1000)
CODE_REGEX = r"[A-Z]{2}-\d{4}"
N_BAD = 300  # values per broken rule, so failure cases exist

# ---------------------------------------------------------------- data


def make_frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Return the benchmark frame; ``shift`` moves every distribution a little (for drift)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {"id": np.arange(n, dtype=np.int64)}
    for i, c in enumerate(FLOATS):
        x = rng.normal(shift * (i % 3), 1.0 + 0.1 * i, n)
        x[rng.random(n) < 0.01] = np.nan
        cols[c] = x
    for i, c in enumerate(INTS):
        cols[c] = rng.integers(0, 100 * (i + 1), n) + int(shift * 10)
    for c in CATS:
        cats = CATEGORIES[c]
        p = np.linspace(1.0, 2.0 + shift, len(cats))
        values = np.asarray(cats, dtype=object)[rng.choice(len(cats), n, p=p / p.sum())]
        values[rng.random(n) < 0.01] = None
        cols[c] = pd.array(values, dtype="str")
    letters = np.array(list("ABCDEFGHIJ"))
    codes = (pd.Series(letters[rng.integers(0, 10, n)]) + pd.Series(letters[rng.integers(0, 10, n)]) + "-"
             + pd.Series(rng.integers(1000, 10000, n)).astype(str))
    cols["code"] = codes.astype("str").to_numpy()
    df = pd.DataFrame(cols)
    bad = rng.choice(n, N_BAD, replace=False)
    df.loc[bad, "f0"] = 99.0  # above the float max
    df.loc[bad, "c0"] = "unseen"  # outside the allowed categories
    df.loc[bad, "code"] = "bad"  # fails the regex
    return df


# ---------------------------------------------------------------- the same checks, four ways


def builtin_section() -> dict[str, Any]:
    columns: dict[str, Any] = {"id": {"dtype": "int", "unique": True, "max_null_fraction": 0.0},
                               "code": {"dtype": "string", "regex": CODE_REGEX}}
    for c in FLOATS:
        columns[c] = {"dtype": "float", "min": FLOAT_RANGE[0], "max": FLOAT_RANGE[1]}
    for c in INTS:
        columns[c] = {"dtype": "int", "min": INT_RANGE[0], "max": INT_RANGE[1], "max_null_fraction": 0.0}
    for c in CATS:
        columns[c] = {"dtype": "string", "allowed": CATEGORIES[c]}
    return {"row_count": {"min": 1}, "columns": columns}


def plain_pandas(df: pd.DataFrame) -> dict[str, int]:
    """The same rules as one straightforward vectorised pandas pass: the speed target's yardstick."""
    out: dict[str, int] = {"rows": len(df)}
    out["id.dtype"] = int(not pd.api.types.is_integer_dtype(df["id"]))
    out["id.unique"] = int(df["id"].duplicated(keep=False).sum())
    out["id.nulls"] = int(df["id"].isna().sum())
    out["code.dtype"] = int(not pd.api.types.is_string_dtype(df["code"]))
    out["code.regex"] = int((~df["code"].str.fullmatch(CODE_REGEX).fillna(True)).sum())
    for c in FLOATS:
        out[f"{c}.dtype"] = int(not pd.api.types.is_float_dtype(df[c]))
        out[f"{c}.min"] = int((df[c] < FLOAT_RANGE[0]).sum())
        out[f"{c}.max"] = int((df[c] > FLOAT_RANGE[1]).sum())
    for c in INTS:
        out[f"{c}.dtype"] = int(not pd.api.types.is_integer_dtype(df[c]))
        out[f"{c}.min"] = int((df[c] < INT_RANGE[0]).sum())
        out[f"{c}.max"] = int((df[c] > INT_RANGE[1]).sum())
        out[f"{c}.nulls"] = int(df[c].isna().sum())
    for c in CATS:
        out[f"{c}.dtype"] = int(not pd.api.types.is_string_dtype(df[c]))
        out[f"{c}.allowed"] = int((df[c].notna() & ~df[c].isin(CATEGORIES[c])).sum())
    return out


def pandera_yaml() -> str:
    import yaml

    columns: dict[str, Any] = {
        "id": {"dtype": "int64", "nullable": False, "unique": True},
        "code": {"dtype": "str", "nullable": True, "checks": {"str_matches": f"^{CODE_REGEX}$"}},
    }
    for c in FLOATS:
        columns[c] = {"dtype": "float64", "nullable": True,
                      "checks": {"greater_than_or_equal_to": FLOAT_RANGE[0], "less_than_or_equal_to": FLOAT_RANGE[1]}}
    for c in INTS:
        columns[c] = {"dtype": "int64", "nullable": False,
                      "checks": {"greater_than_or_equal_to": INT_RANGE[0], "less_than_or_equal_to": INT_RANGE[1]}}
    for c in CATS:
        columns[c] = {"dtype": "str", "nullable": True, "checks": {"isin": CATEGORIES[c]}}
    return yaml.safe_dump({"schema_type": "dataframe", "columns": columns}, sort_keys=False)


def gx_suite() -> dict[str, Any]:
    def e(kind: str, **kwargs: Any) -> dict[str, Any]:
        return {"type": f"expect_{kind}", "kwargs": kwargs, "meta": {}}

    items = [e("table_row_count_to_be_between", min_value=1),
             e("column_values_to_be_of_type", column="id", type_="int64"),
             e("column_values_to_be_unique", column="id"),
             e("column_values_to_not_be_null", column="id"),
             e("column_values_to_match_regex", column="code", regex=f"^{CODE_REGEX}$")]
    for c in FLOATS:
        items += [e("column_values_to_be_of_type", column=c, type_="float64"),
                  e("column_values_to_be_between", column=c, min_value=FLOAT_RANGE[0], max_value=FLOAT_RANGE[1])]
    for c in INTS:
        items += [e("column_values_to_be_of_type", column=c, type_="int64"),
                  e("column_values_to_be_between", column=c, min_value=INT_RANGE[0], max_value=INT_RANGE[1]),
                  e("column_values_to_not_be_null", column=c)]
    for c in CATS:
        items += [e("column_values_to_be_in_set", column=c, value_set=CATEGORIES[c])]
    return {"name": "bench", "expectations": items}


# ---------------------------------------------------------------- workloads (run in a subprocess)


def workload(name: str, folder: Path) -> tuple[Callable[[], Any], pd.DataFrame]:
    """Return the callable to time for ``name`` and the eval frame it reads."""
    df = pd.read_parquet(folder / "eval.parquet")
    from gates.checks.data._common import Settings, Target

    settings, target = Settings(), Target("eval", df)
    if name == "pandas":
        return lambda: plain_pandas(df), df
    if name == "gate_builtin":
        from gates.checks.data.builtin import run_builtin

        section = builtin_section()
        return lambda: run_builtin(target, section, settings), df
    if name == "pandera":
        import pandera.errors as pe
        import pandera.pandas as pa

        def direct() -> Any:
            schema = pa.DataFrameSchema.from_yaml(folder / "schema.yaml")
            try:
                return schema.validate(df, lazy=True)
            except pe.SchemaErrors as exc:
                return exc.failure_cases

        return direct, df
    if name == "gate_pandera":
        import pandera.pandas  # noqa: F401 -- imported in setup, as for the direct run

        from gates.checks.data.pandera_engine import run_pandera

        return lambda: run_pandera(target, "schema.yaml", folder, True, settings), df
    if name == "gx":
        return _gx_direct(df, folder), df
    if name == "gate_gx":
        import great_expectations  # noqa: F401 -- imported in setup, as for the direct run

        from gates.checks.data.gx_engine import run_gx

        return lambda: run_gx(target, folder / "suite.json", True, settings), df
    if name.startswith("drift"):
        return _drift(name, df, folder), df
    raise SystemExit(f"unknown workload {name}")


def _gx_direct(df: pd.DataFrame, folder: Path) -> Callable[[], Any]:
    """What a user writes to run the suite: ephemeral context, dataframe asset, whole-frame batch."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    def direct() -> Any:
        config = DataContextConfig(analytics_enabled=False, store_backend_defaults=InMemoryStoreBackendDefaults(),
                                   progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False))
        context = gx.get_context(mode="ephemeral", project_config=config)
        doc = json.loads((folder / "suite.json").read_text())
        suite = gx.ExpectationSuite(name="bench", expectations=doc["expectations"])
        batch = (context.data_sources.add_pandas("p").add_dataframe_asset("a")
                 .add_batch_definition_whole_dataframe("b").get_batch(batch_parameters={"dataframe": df}))
        return batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20})

    return direct


def _drift(name: str, df: pd.DataFrame, folder: Path) -> Callable[[], Any]:
    from gates.checks.data._common import Settings
    from gates.checks.data.drift import run_drift

    ref = pd.read_parquet(folder / "reference.parquet")
    numeric = [c for c in df.columns if c not in CATS and c != "code"]
    if name == "drift_default":
        return lambda: run_drift(df, ref, {}, list(df.columns), Settings())
    if name == "drift_scipy_ks":
        from scipy import stats

        return lambda: [stats.ks_2samp(ref[c].dropna(), df[c].dropna(), method="asymp") for c in numeric]
    method = name.removeprefix("drift_")
    spec = {"default": {"method": method}}
    return lambda: run_drift(df, ref, spec, numeric, Settings())


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_one(name: str, folder: Path, repeat: int) -> dict[str, float]:
    """Run one workload ``repeat`` times; the first run also samples memory."""
    t0 = time.perf_counter()
    fn, _ = workload(name, folder)
    setup = time.perf_counter() - t0
    base, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu, wall = [], []
    for i in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        if i == 0:
            done.set()
            sampler.join()
    return {"cpu": min(cpu), "wall": min(wall), "peak_mb": max(0.0, peak[0] - base), "setup": setup}


# ---------------------------------------------------------------- driver

ROWS = [
    ("pandas", "plain vectorised pandas, same rules"),
    ("gate_builtin", "data gate: built-in checks"),
    ("pandera", "pandera directly (load YAML + lazy validate)"),
    ("gate_pandera", "data gate: pandera engine"),
    ("gx", "Great Expectations directly (ephemeral context + validate)"),
    ("gate_gx", "data gate: Great Expectations engine"),
    ("drift_default", "drift, all 20 columns, default methods (psi / js)"),
    ("drift_psi", "drift psi, 14 numeric columns"),
    ("drift_js", "drift js, 14 numeric columns"),
    ("drift_chi2", "drift chi2, 14 numeric columns"),
    ("drift_ks", "drift ks, 14 numeric columns"),
    ("drift_wasserstein", "drift wasserstein, 14 numeric columns"),
    ("drift_scipy_ks", "scipy ks_2samp, 14 numeric columns"),
]
RATIOS = [("gate_builtin", "pandas", "built-in / plain pandas (target <= 1.5)"),
          ("gate_builtin", "pandera", "built-in / pandera"),
          ("gate_builtin", "gx", "built-in / GX"),
          ("gate_pandera", "pandera", "gate pandera / pandera (target <= 1.0)"),
          ("gate_gx", "gx", "gate GX / GX (target <= 1.0)"),
          ("drift_ks", "drift_scipy_ks", "our ks / scipy ks_2samp")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, Path(args.folder), args.repeat)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        make_frame(args.rows, seed=1).to_parquet(folder / "eval.parquet")
        make_frame(args.rows, seed=2, shift=0.05).to_parquet(folder / "reference.parquet")
        (folder / "schema.yaml").write_text(pandera_yaml())
        (folder / "suite.json").write_text(json.dumps(gx_suite()))
        print(f"data: {args.rows:,} rows x 20 columns, written in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        results = {}
        for name, _ in ROWS:
            if args.only and name not in args.only:
                continue
            out = subprocess.run([sys.executable, __file__, "--one", name, "--folder", str(folder),
                                  "--repeat", str(args.repeat)], capture_output=True, text=True, check=True)
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{name}: {results[name]}", file=sys.stderr)
    print(render(results, args.rows, args.repeat))


def render(results: dict[str, dict[str, float]], rows: int, repeat: int) -> str:
    lines = [f"{rows:,} rows x 20 columns, best of {repeat}\n",
             "| workload | CPU (s) | wall (s) | peak memory (MB) | load + imports (s) |", "|---|---|---|---|---|"]
    for name, label in ROWS:
        if name in results:
            r = results[name]
            lines.append(f"| {label} | {r['cpu']:.2f} | {r['wall']:.2f} | {r['peak_mb']:.0f} | {r['setup']:.1f} |")
    lines += ["", "| ratio (CPU time) | value |", "|---|---|"]
    for a, b, label in RATIOS:
        if a in results and b in results:
            lines.append(f"| {label} | {results[a]['cpu'] / results[b]['cpu']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
