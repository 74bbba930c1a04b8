"""What the installed-but-not-enabled pytest plugin costs at pytest startup.

Runs the same tiny pytest session in fresh interpreters, alternating with the plugin loaded (as
every project that installs model-gates gets it, through the ``pytest11`` entry point) and with
``-p no:model_gates`` (as if it were not installed), and reports the medians and the median of the
paired differences. It also lists what the plugin makes Python import in such a session: nothing
of the engine (gates, numpy, pandas) may appear there.

    /work/venv/bin/python bench/bench_pytest_startup.py [--runs 30]

Budget (issue 7): under 50 ms more than without the plugin.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MS = 50.0
#: third-party plugins of this venv, unrelated to ours, switched off in both arms to cut the noise
OTHER_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:typeguard", "-p", "no:xdist")
TEST_FILE = "def test_one():\n    assert 1 + 1 == 2\n"
#: prints the modules a plugin-enabled, gate-disabled session imported that a plugin-free one did not
IMPORT_PROBE = """
import sys, pytest
pytest.main(["-q", "-p", "no:cacheprovider", {plugin!r}, "test_one.py"])
print("MODULES", " ".join(sorted(sys.modules)))
"""


def session(folder: Path, *extra: str) -> tuple[float, float]:
    """Return (wall, CPU) seconds of one pytest run in a fresh interpreter.

    CPU time (user + system of the child) is what the plugin adds; wall time also carries
    whatever else the machine is doing, so on a shared machine only CPU time is comparable.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_one.py"],
                   cwd=folder, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def plugin_import_ms() -> float:
    """Return the time to import the plugin's modules in a fresh interpreter that has pytest loaded.

    (``-X importtime`` cannot see them: pytest loads entry points with importlib, which it does not log.)
    """
    code = ("import time, pytest; t = time.perf_counter(); "
            "import pytest_model_gates.plugin, pytest_model_gates.fixtures; print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return 1000 * float(out)


def imported_modules(folder: Path, plugin_arg: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE.format(plugin=plugin_arg)], cwd=folder,
                         check=True, capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("MODULES "))
    return set(line.split()[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="pairs of runs (default 30)")
    parser.add_argument("--all-plugins", action="store_true",
                        help="keep this venv's other pytest plugins loaded in both arms (more noise)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_one.py").write_text(TEST_FILE)
        others = () if args.all_plugins else OTHER_PLUGINS
        session(folder, *others), session(folder, "-p", "no:model_gates", *others)  # warm the file cache
        with_plugin, without = [], []
        for _ in range(args.runs):
            with_plugin.append(session(folder, *others))
            without.append(session(folder, "-p", "no:model_gates", *others))
        imports = [plugin_import_ms() for _ in range(5)]
        extra = imported_modules(folder, "-pno:nothing") - imported_modules(folder, "-pno:model_gates")
    engine = sorted(m for m in extra if m == "gates" or m.startswith(("gates.", "numpy", "pandas", "sklearn")))
    print(f"python {sys.version.split()[0]}, {args.runs} pairs, other plugins "
          f"{'loaded' if args.all_plugins else 'off'}, PYTHONDONTWRITEBYTECODE="
          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}, load average {os.getloadavg()[0]:.1f}")
    for label, index in (("CPU", 1), ("wall", 0)):
        a = [1000 * r[index] for r in with_plugin]
        b = [1000 * r[index] for r in without]
        diffs = [x - y for x, y in zip(a, b)]
        q = statistics.quantiles(diffs, n=4)
        print(f"{label:>4}: with plugin median {statistics.median(a):.0f} ms (min {min(a):.0f}), without "
              f"{statistics.median(b):.0f} ms (min {min(b):.0f}); paired difference median "
              f"{statistics.median(diffs):+.1f} ms (quartiles {q[0]:+.1f} / {q[2]:+.1f}), of minima {min(a) - min(b):+.1f} ms")
    print(f"import of the plugin's modules alone: median {statistics.median(imports):.1f} ms, min {min(imports):.1f} ms (5 runs)")
    print(f"budget: {BUDGET_MS:.0f} ms")
    print(f"modules the plugin adds: {', '.join(sorted(extra)) or 'none'}")
    print(f"engine modules imported: {', '.join(engine) or 'none'}")


if __name__ == "__main__":
    main()
