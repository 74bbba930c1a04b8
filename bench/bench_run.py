"""Benchmark a whole gate run against the model inference it cannot avoid (DESIGN section 11).

A gate run's unavoidable cost is the models' own inference: one ``predict_proba`` per model on the
eval rows plus one per robustness perturbation. This runs the full DESIGN section 4 policy (all four
gates) end to end, the way ``model-gates run --no-register`` does (``load_policy``, ``run_policy``,
``build_report``, ``write_all``), counts every ``predict_proba`` call the run makes and keeps the
frames it was given, then replays exactly those calls on exactly those frames. **Ratio** = the run's
time / the replayed inference; 1.0 means the run costs exactly its inference. Target: at most 1.25
with report.html (its performance, drift, interval, fairness and robustness charts) included; the
ratio without report.html is shown too.

Data: 100,000 eval rows and a 100,000-row reference (training) snapshot, built by
``bench_robustness.make_frame`` (10 floats with 1% nulls, 3 string categories, an id, a binary
label) plus the sensitive columns ``sex`` and ``age_band``, which are not model features. Models:
two different scikit-learn pipelines (ordinal encoding + HistGradientBoostingClassifier) saved with
skops; the baseline is a model file, so the run needs no registry.

Every repetition runs in a fresh interpreter that has imported numpy, pandas, pyarrow, scikit-learn
and skops (what any inference needs) but nothing of ``gates``: the run's time includes importing the
gates modules it uses, reading the data and loading the models. Times are CPU seconds of that process
(``time.process_time``, which other jobs on a shared machine do not inflate) with OpenMP pinned to
``--threads`` threads (default 1, so CPU time is the work done); wall-clock seconds are shown too.
The repetition with the median ratio is reported, with each stage's time (the runner's
``progress`` callback marks the gates; ``write_all``'s renderers are timed per format). Also
measured: imports in fresh interpreters (median of 5) and the peak RSS of an uninstrumented run
against data + models. Children cache bytecode in a temporary folder (``PYTHONPYCACHEPREFIX``), as
an installed package has it, even where ``PYTHONDONTWRITEBYTECODE`` is set. Exit status 1 when a
target is missed: a ratio above 1.25, ``import gates`` above 1.5 s, the gates modules a run imports
before any work (on top of what inference imports) above 0.5 s, or peak memory more than 200 MB
above the ready interpreter plus data and models.

    python bench/bench_run.py                   # prints Markdown tables; exits 1 if a target is missed
    python bench/bench_run.py --rows 20000 --repeat 1
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 1.25
#: CPU seconds of the gates modules a run imports before any work, over what inference imports anyway
TARGET_GATES_IMPORT_S = 0.5
TARGET_IMPORT_S = 1.5
TARGET_MEMORY_MB = 200.0
#: what a run's inference needs whatever tool drives it; a child imports these before timing
INFERENCE_IMPORTS = ("numpy", "pandas", "pyarrow.parquet", "sklearn.pipeline", "sklearn.compose",
                     "sklearn.preprocessing", "sklearn.ensemble", "skops.io")

POLICY = """\
version: 1
model:
  name: credit-risk
  task: binary_classification
  candidate: candidate.skops
  baseline: baseline.skops
  positive_label: 1
  trusted_types: [numpy.dtype, sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor]  # what these pipelines need (docs/security.md)
data:
  eval: eval.parquet
  target: label
  reference: reference.parquet
  features: [{features}]
  sensitive: [sex, age_band]
seed: 20261122
gates:
  data:
    checks:
      row_count: {{min: 100}}
      columns:
        customer_id: {{unique: true, max_null_fraction: 0.0}}
        income: {{min: -100, max: 100, max_null_fraction: 0.05}}
        x0: {{min: -100, max: 100, max_null_fraction: 0.05}}
        region: {{allowed: [region0, region1, region2, region3, region4], max_null_fraction: 0.0}}
        plan: {{regex: "^plan[0-9]$"}}
        sex: {{allowed: [F, M]}}
        age_band: {{allowed: ["18-29", "30-44", "45-59", "60+"]}}
        label: {{allowed: [0, 1], max_null_fraction: 0.0}}
    drift:
      default: {{method: psi, max: 0.2}}
      columns:
        income: {{method: wasserstein, max: 0.1}}
    overlap: {{max_fraction: 0.0}}
  regression:
    decision: non_inferiority
    on_inconclusive: fail
    confidence: 0.95
    bootstrap: 1000
    multiple_testing: holm
    metrics:
      roc_auc: {{min: 0.70, max_drop: 0.02}}
      accuracy: {{max_drop: 0.02}}
      f1: {{max_relative_drop: 0.05, severity: warn}}
      log_loss: {{max_drop: 0.02}}
      churn: {{max: 0.2, severity: warn}}
    slices: [region]
    min_slice_size: 200
  fairness:
    bootstrap: 1000
    groups: [sex, age_band, [sex, age_band]]
    min_group_size: 30
    min_positives: 10
    on_inconclusive: warn
    metrics:
      demographic_parity_ratio: {{min: 0.8}}
      equalized_odds_difference: {{max: 0.10}}
      tpr_difference: {{max: 0.05, no_worse_than_baseline: true}}
  robustness:
    severity: warn
    perturbations:
      gaussian_noise: {{columns: numeric, scale: [0.05, 0.1, 0.2]}}
      missing: {{rate: 0.1}}
      category_swap: {{rate: 0.05}}
    metrics:
      roc_auc: {{max_drop: 0.02}}
      flip_rate: {{max: 0.05}}
"""


# ---------------------------------------------------------------- building the inputs (parent)

def build_inputs(folder: Path, rows: int) -> dict[str, Any]:
    """Write eval/reference data, two models and gates.yaml into ``folder``; return their sizes."""
    from bench_robustness import CATS, FLOATS, make_frame, make_model

    features = [*FLOATS, *CATS]
    evaluation = with_sensitive(make_frame(rows, seed=0), seed=10)
    reference = with_sensitive(make_frame(rows, seed=1), seed=11)
    evaluation.to_parquet(folder / "eval.parquet")
    reference.to_parquet(folder / "reference.parquet")
    candidate = make_model(0).fit(reference[features], reference["label"])
    baseline = make_model(1).set_params(histgradientboostingclassifier__max_iter=150,
                                        histgradientboostingclassifier__max_leaf_nodes=15)
    baseline.fit(reference[features], reference["label"])
    import skops.io

    for name, model in (("candidate", candidate), ("baseline", baseline)):
        skops.io.dump(model, folder / f"{name}.skops")
    (folder / "gates.yaml").write_text(POLICY.format(features=", ".join(features)), encoding="utf-8")
    return {"models_mb": sum(len(pickle.dumps(m)) for m in (candidate, baseline)) / 2**20}


def with_sensitive(frame: Any, seed: int) -> Any:
    """Add ``sex`` and ``age_band``: grouping columns the models never see (age band tracks x2 a little)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(frame)
    frame["sex"] = np.where(rng.random(n) < 0.48, "F", "M")
    bands = np.asarray(["18-29", "30-44", "45-59", "60+"])
    pull = np.nan_to_num(frame["x2"].to_numpy()) / 3 + rng.normal(0.0, 1.0, n)
    frame["age_band"] = bands[np.digitize(pull, [-0.8, 0.0, 0.8])]
    return frame


# ---------------------------------------------------------------- one run (child process)

@dataclass
class Clock:
    """CPU and wall seconds of named stages, in the order they ran."""

    stages: dict[str, tuple[float, float]] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.process_time() - cpu, time.perf_counter() - wall)

    def add(self, name: str, cpu: float, wall: float) -> None:
        old = self.stages.get(name, (0.0, 0.0))
        self.stages[name] = (old[0] + cpu, old[1] + wall)


@dataclass
class Recorder:
    """Every ``predict_proba`` call the run makes: role, the unwrapped method, the frame, and the CPU
    seconds spent inside per stage of the run (``stage`` is set as the run moves on)."""

    keep_frames: bool
    stage: str = ""
    calls: list[tuple[str, Callable[[Any], Any], Any]] = field(default_factory=list)
    inside: dict[str, float] = field(default_factory=dict)
    loading: dict[str, float] = field(default_factory=dict)

    def wrap(self, role: str, estimator: Any) -> None:
        """Replace the estimator's ``predict_proba`` by a counting one (the run sees the same method)."""
        inner = estimator.predict_proba

        def predict_proba(X: Any) -> Any:
            start = time.process_time()
            try:
                return inner(X)
            finally:
                self.inside[self.stage] = self.inside.get(self.stage, 0.0) + time.process_time() - start
                self.calls.append((role, inner, X if self.keep_frames else None))

        estimator.predict_proba = predict_proba

    def replay(self) -> tuple[float, float]:
        """Run the recorded calls again on the same frames: the run's inference alone (CPU, wall)."""
        cpu, wall = time.process_time(), time.perf_counter()
        for _, inner, X in self.calls:
            inner(X)
        return time.process_time() - cpu, time.perf_counter() - wall


def child(folder: Path, keep_frames: bool) -> dict[str, Any]:
    """Run the policy in ``folder`` end to end in this (fresh) process and return the measurements."""
    import importlib

    for name in INFERENCE_IMPORTS:
        importlib.import_module(name)
    rss_ready = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    clock, recorder = Clock(), Recorder(keep_frames)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with clock.stage("import gates modules"):
        import gates.reporters
        from gates.config import load_policy
        from gates.context import EvalContext, LoadedModel
        from gates.reporters.json_report import build_report
        from gates.runner import RunOptions, run_policy

    class CountingContext(EvalContext):
        """The real EvalContext; each loaded model's predict_proba is counted and timed."""

        def _load(self, role: Any) -> LoadedModel | None:
            start = time.process_time()
            loaded = super()._load(role)
            recorder.loading[recorder.stage] = recorder.loading.get(recorder.stage, 0.0) + time.process_time() - start
            if loaded is not None:
                recorder.wrap(role, loaded.estimator)
            return loaded

    with clock.stage("load_policy"):
        policy = load_policy(folder / "gates.yaml")
    recorder.stage = "read eval data"
    marks: list[tuple[str, float, float]] = [(recorder.stage, time.process_time(), time.perf_counter())]

    def progress(gate: str, index: int, total: int) -> None:
        recorder.stage = f"gate: {gate}"
        marks.append((recorder.stage, time.process_time(), time.perf_counter()))

    import gates.runner

    summarise_curves = gates.runner.summarise_curves

    def timed_curves(*args: Any) -> Any:  # the charts' curve summaries, after the last gate
        recorder.stage = "curve summaries (gates/curves.py)"
        marks.append((recorder.stage, time.process_time(), time.perf_counter()))
        return summarise_curves(*args)

    gates.runner.summarise_curves = timed_curves
    ctx = CountingContext(policy)
    result = run_policy(policy, options=RunOptions(), context=ctx, progress=progress)
    gates.runner.summarise_curves = summarise_curves
    marks.append(("end", time.process_time(), time.perf_counter()))
    for (name, cpu, wall), (_, cpu_next, wall_next) in itertools.pairwise(marks):
        clock.add(name, cpu_next - cpu, wall_next - wall)
    with clock.stage("build_report"):
        report = build_report(result)
    renders = time_renderers(gates.reporters, clock)
    cpu, wall = time.process_time(), time.perf_counter()
    written = gates.reporters.write_all(report, folder / f"report-{os.getpid()}")
    rendered = [t for name, t in clock.stages.items() if name.startswith("render ")]
    clock.add("write_all: files", time.process_time() - cpu - sum(t[0] for t in rendered),
              time.perf_counter() - wall - sum(t[1] for t in rendered))
    gates.reporters.renderer = renders  # restore the library function
    run_cpu, run_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {
        "run_cpu": run_cpu, "run_wall": run_wall, "stages": clock.stages,
        "inside": recorder.inside, "loading": recorder.loading, "calls": [role for role, _, _ in recorder.calls],
        "checks": len(result.verdict.checks), "verdict": result.verdict.value,
        "written": [p.name for p in written], "rss_ready_mb": rss_ready, "rss_peak_mb": peak,
        "data_mb": sum(float(f.memory_usage(deep=True).sum()) for f in (ctx.frame, ctx.reference)) / 2**20,
    }
    if keep_frames:
        out["replay_cpu"], out["replay_wall"] = recorder.replay()
        out["row_mean_cpu"] = row_mean_cost(ctx, policy.gates["regression"])
    return out


def row_mean_cost(ctx: Any, spec: Any) -> float:
    """CPU seconds of the regression gate's row-resampled intervals (log_loss: Poisson weights for
    every replicate and row, drawn once for all its slicings), computed again after the run to attribute them."""
    from gates.estimates import paired_estimates_many, slice_by, whole
    from gates.metrics import metric_registry

    registry = metric_registry()
    metrics = [registry[m] for m in spec["metrics"] if m in registry and registry[m].family == "row_mean"]
    slicings = [whole(ctx.n_rows)] + [slice_by(ctx.frame, [s] if isinstance(s, str) else list(s))
                                      for s in spec.get("slices", ())]
    start = time.process_time()
    paired_estimates_many(ctx.y_true, ctx.predictions("candidate"), ctx.predictions("baseline"), metrics, slicings,
                          n_boot=spec.get("bootstrap", 1000), rngs=[lambda family: ctx.rng("bench", family)] * len(slicings),
                          positive_label=ctx.policy.model.positive_label, classes=ctx.classes)
    return time.process_time() - start


def time_renderers(reporters: Any, clock: Clock) -> Any:
    """Make ``write_all`` time each format's rendering as its own stage; return the original renderer."""
    original = reporters.renderer

    def timed_renderer(fmt: str) -> Callable[[Any], str]:
        render = original(fmt)

        def run(report: Any) -> str:
            with clock.stage(f"render {fmt}"):
                return str(render(report))

        return run

    reporters.renderer = timed_renderer
    return original


# ---------------------------------------------------------------- orchestration (parent)

def child_env(threads: int, pycache: Path) -> dict[str, str]:
    """The children's environment: ``threads`` OpenMP/BLAS threads, and bytecode cached under
    ``pycache`` (as an installed package has it) even where ``PYTHONDONTWRITEBYTECODE`` is set."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def spawn(folder: Path, keep_frames: bool, env: dict[str, str]) -> dict[str, Any]:
    args = [sys.executable, str(Path(__file__).resolve()), "--child", str(folder)]
    if not keep_frames:
        args.append("--no-replay")
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child run failed:\n{done.stderr}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


OWN_IMPORTS = ("**model-gates' own imports before any work**: the same, in an interpreter that has imported what "
               "inference needs (numpy, pandas, pyarrow, scikit-learn, skops)")
#: label -> code timed in fresh interpreters (nothing imported beforehand unless IMPORT_SETUP says)
IMPORTS = {
    "`import gates`": "import gates",
    "`import gates.cli` (the console script's module)": "import gates.cli",
    "`model-gates run` before any work: `gates.commands.run` + every gate module (numpy, pandas, "
    "scikit-learn, jsonschema with them)": "import gates.commands.run; from gates.checks import gate_registry; "
                                          "gate_registry()",
    OWN_IMPORTS: "import gates.commands.run; from gates.checks import gate_registry; gate_registry()",
}
#: code run before the clock starts, per label (what inference imports anyway)
IMPORT_SETUP = {OWN_IMPORTS: "; ".join(f"import {m}" for m in INFERENCE_IMPORTS)}


def import_times(code: str, env: dict[str, str], n: int = 5, setup: str = "") -> dict[str, float]:
    """Median CPU and wall seconds of ``code`` in ``n`` fresh interpreters (after an untimed ``setup``)."""
    timed = ((setup + "; " if setup else "") + "import time; c, w = time.process_time(), time.perf_counter(); " + code
             + "; print(time.process_time() - c, time.perf_counter() - w)")
    cpus, walls = [], []
    for _ in range(n):
        done = subprocess.run([sys.executable, "-c", timed], env=env, capture_output=True, text=True, check=True)
        cpu, wall = map(float, done.stdout.split())
        cpus.append(cpu)
        walls.append(wall)
    return {"cpu": statistics.median(cpus), "wall": statistics.median(walls)}


def html_cost(run: dict[str, Any]) -> tuple[float, float]:
    cpu, wall = run["stages"].get("render html", (0.0, 0.0))
    return float(cpu), float(wall)


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """Add the ratios (with and without report.html) to one child's measurements."""
    html_cpu, html_wall = html_cost(run)
    run["ratio_html"] = run["run_cpu"] / run["replay_cpu"]
    run["ratio"] = (run["run_cpu"] - html_cpu) / run["replay_cpu"]
    run["ratio_wall"] = (run["run_wall"] - html_wall) / run["replay_wall"]
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-replay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, keep_frames=not args.no_replay)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = child_env(args.threads, folder / "pycache")
        os.environ.update({k: env[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
        sizes = build_inputs(folder, args.rows)
        memory = spawn(folder, False, env)  # first: it also fills the bytecode cache the others use
        runs = sorted((summarise(spawn(folder, True, env)) for _ in range(args.repeat)), key=lambda r: r["ratio_html"])
        imports = {label: import_times(code, env, setup=IMPORT_SETUP.get(label, "")) for label, code in IMPORTS.items()}
    median = runs[len(runs) // 2]
    print_tables(args, median, runs, imports, memory, sizes)
    import_s = imports[next(iter(IMPORTS))]["wall"]
    own = gates_imports(imports)
    ok = (median["ratio_html"] <= TARGET_RATIO and import_s <= TARGET_IMPORT_S and own <= TARGET_GATES_IMPORT_S
          and memory_overhead(memory, sizes) <= TARGET_MEMORY_MB)
    return 0 if ok else 1


def gates_imports(imports: dict[str, dict[str, float]]) -> float:
    """CPU seconds model-gates' own modules add to a run's imports, over what inference imports anyway."""
    return imports[OWN_IMPORTS]["cpu"]


def memory_overhead(memory: dict[str, Any], sizes: dict[str, Any]) -> float:
    """Peak RSS above the ready interpreter (numpy, pandas, sklearn imported), less data and models."""
    return float(memory["rss_peak_mb"] - memory["rss_ready_mb"] - memory["data_mb"] - sizes["models_mb"])


def print_tables(args: Any, run: dict[str, Any], runs: list[dict[str, Any]], imports: dict[str, dict[str, float]],
                 memory: dict[str, Any], sizes: dict[str, Any]) -> None:
    calls = {role: run["calls"].count(role) for role in dict.fromkeys(run["calls"])}
    html_cpu, html_wall = html_cost(run)
    inside = sum(run["inside"].values())
    print(f"rows={args.rows} threads={args.threads} repeat={args.repeat}; {run['checks']} checks, verdict "
          f"{run['verdict']}; reports {', '.join(run['written'])}\n")
    print("| measure (median run) | CPU (s) | wall (s) |")
    print("| --- | ---: | ---: |")
    print(f"| inference alone: the run's {len(run['calls'])} predict_proba calls "
          f"({', '.join(f'{n} {r}' for r, n in calls.items())}) replayed on the same frames "
          f"| {run['replay_cpu']:.2f} | {run['replay_wall']:.2f} |")
    print(f"| full run without report.html | {run['run_cpu'] - html_cpu:.2f} | {run['run_wall'] - html_wall:.2f} |")
    print(f"| full run with report.html | {run['run_cpu']:.2f} | {run['run_wall']:.2f} |")
    print(f"| **ratio** without report.html (median; all runs) | **{run['ratio']:.2f}**; "
          f"{all_ratios(runs, 'ratio')} | {run['ratio_wall']:.2f} |")
    print(f"| **ratio** with report.html (median; all runs) | **{run['ratio_html']:.2f}**; "
          f"{all_ratios(runs, 'ratio_html')} | |")
    print()
    print("| stage (median run) | CPU (s) | of which predict_proba (s) | of which loading models (s) | wall (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (cpu, wall) in run["stages"].items():
        print(f"| {name} | {cpu:.3f} | {run['inside'].get(name, 0.0):.3f} | {run['loading'].get(name, 0.0):.3f} "
              f"| {wall:.3f} |")
    print(f"| total | {run['run_cpu']:.3f} | {inside:.3f} | {sum(run['loading'].values()):.3f} "
          f"| {run['run_wall']:.3f} |")
    print(f"| overhead: total - predict_proba inside the run, without / with report.html "
          f"| {run['run_cpu'] - html_cpu - inside:.3f} / {run['run_cpu'] - inside:.3f} | | | |")
    print(f"| of it, the regression gate's row-resampled intervals (log_loss), timed again after the run "
          f"| {run['row_mean_cpu']:.3f} | | | |")
    print()
    print("| import, fresh interpreter (median of 5) | CPU (s) | wall (s) |")
    print("| --- | ---: | ---: |")
    for label, t in imports.items():
        print(f"| {label} | {t['cpu']:.3f} | {t['wall']:.3f} |")
    print(f"| target for model-gates' own imports | <= {TARGET_GATES_IMPORT_S} | |")
    print()
    print("| memory (an uninstrumented run, its own process) | MB |")
    print("| --- | ---: |")
    print(f"| eval + reference frames in memory | {memory['data_mb']:.0f} |")
    print(f"| both models (pickled size) | {sizes['models_mb']:.1f} |")
    print(f"| RSS before the run (numpy, pandas, pyarrow, sklearn, skops imported) | {memory['rss_ready_mb']:.0f} |")
    print(f"| peak RSS | {memory['rss_peak_mb']:.0f} |")
    print(f"| **peak - before - data - models** (target <= {TARGET_MEMORY_MB:.0f}) "
          f"| **{memory_overhead(memory, sizes):.0f}** |")


def all_ratios(runs: list[dict[str, Any]], key: str) -> str:
    return ", ".join(f"{r[key]:.2f}" for r in runs)


if __name__ == "__main__":
    sys.exit(main())
