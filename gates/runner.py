"""Run a policy: every configured gate over one EvalContext, waivers applied, one Verdict.

The CLI and the pytest plugin both drive :func:`run_policy`; nothing here prints or renders.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gates.checks import gate_registry
from gates.checks.data.scores import run_score_checks
from gates.checks.data.target import run_target_checks
from gates.context import BaselineResolver, EvalContext
from gates.datasets import PARQUET_SUFFIXES, is_many
from gates.errors import GateError
from gates.policy import EngineSpec, Policy, Waiver
from gates.results import CheckResult, Status, Verdict

MSG_GATE_CRASHED = "the {gate} gate could not run: {problem}"
MSG_DUPLICATE_ID = ("{n} checks share the id {id!r} (values that read alike once joined into a scope, such as "
                    "region 'a&team=b' and region 'a' with team 'b', or a gate that writes its ids as text); "
                    "a waiver or a selection could not tell them apart, so the verdict cannot pass: "
                    "rename the column or values")
MSG_WHOLE_ASKED = "engine.batches is false"
MSG_WHOLE_NOT_PARQUET = "{name} is not Parquet"
LOCAL_ENGINE = {"kind": "local", "address": None, "workers": 1, "partitions": 1}
WAIVABLE = frozenset({Status.FAIL, Status.INCONCLUSIVE, Status.ERROR, Status.WARN})

#: called with (gate name, index, total) before each gate runs, for progress display
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunOptions:
    """Per-run switches that are not part of the policy file."""

    require_baseline: bool = False
    waivers: Sequence[Waiver] = ()
    only_gates: Sequence[str] | None = None
    #: the engine given on the command line; None: gates.yaml's ``engine``
    engine: EngineSpec | None = None


@dataclass(frozen=True)
class RunResult:
    policy: Policy
    context: EvalContext
    verdict: Verdict
    started_at: dt.datetime
    finished_at: dt.datetime
    waivers: Sequence[Waiver] = ()
    unused_waivers: Sequence[Waiver] = field(default_factory=tuple)
    #: the charts' curve summaries (:mod:`gates.curves`), None when no gate predicted nor measured drift
    curves: Mapping[str, Any] | None = None
    #: ``run.engine`` of report.json
    engine: dict[str, Any] = field(default_factory=lambda: dict(LOCAL_ENGINE))


def make_context(policy: Policy, resolve_baseline: BaselineResolver | None = None,
                 options: RunOptions = RunOptions()) -> EvalContext:
    """Return the EvalContext a run (or a pytest session) shares across gates.

    On the dask engine it is a :class:`~gates.engine.context.PartitionedContext` holding the
    cluster; :func:`close_context` releases it. On the embedded engine it is a
    :class:`~gates.engine.context.BatchedContext` (the gates' partitioned forms, one partition in
    memory at a time), or the whole-frame :class:`EvalContext` when :func:`whole_frame_reason` gives a reason.
    """
    spec = options.engine or policy.engine
    if spec.kind == "local":
        if whole_frame_reason(policy, options) is None:
            from gates.engine.context import BatchedContext

            return BatchedContext(policy, resolve_baseline, require_baseline=options.require_baseline)
        return EvalContext(policy, resolve_baseline, require_baseline=options.require_baseline)
    from gates.engine import open_engine
    from gates.engine.context import PartitionedContext

    engine = open_engine(spec, policy.where("engine"))
    return PartitionedContext(policy, resolve_baseline, require_baseline=options.require_baseline, engine=engine)


def whole_frame_reason(policy: Policy, options: RunOptions = RunOptions()) -> str | None:
    """Return why an embedded run of ``policy`` reads its data whole, or None when it reads it in batches.

    Batches need Parquet data (a file, folder or glob; the reference too), ``engine.batches`` not
    turned off, and every gate the run runs able to run from partials, decided before the run by
    each gate's :func:`~gates.engine.runner.distributable` hook.
    """
    spec = options.engine or policy.engine
    if not spec.batches:
        return MSG_WHOLE_ASKED
    for path in (policy.data.eval, policy.data.reference):
        if path is not None and not is_many(path) and path.suffix.lower() not in PARQUET_SUFFIXES:
            return MSG_WHOLE_NOT_PARQUET.format(name=path.name)
    from gates.engine.runner import policy_distributable

    return policy_distributable(policy, options.only_gates)


def close_context(ctx: EvalContext) -> None:
    """Release what a context holds beyond this process (a dask cluster); a no-op for the embedded one."""
    close = getattr(ctx, "close", None)
    if close is not None:
        close()


def engine_info(ctx: EvalContext) -> dict[str, Any]:
    """Return ``run.engine`` for report.json: kind, address, workers, partitions."""
    describe = getattr(ctx, "engine_info", None)
    return dict(LOCAL_ENGINE) if describe is None else describe()


def run_policy(policy: Policy, *, resolve_baseline: BaselineResolver | None = None,
               options: RunOptions = RunOptions(), context: EvalContext | None = None,
               progress: Progress | None = None) -> RunResult:
    """Run every gate of ``policy`` and return the verdict.

    A per_example policy's score columns are checked for missing values first (``data.scores.*``),
    every other policy's target (``data.target.*``, on either engine); rows without a target are
    never scored. User mistakes found while running (a missing column, an unreadable model, target
    labels of another type than the model's) raise
    :class:`~gates.errors.UserError`; a gate that fails for any other reason yields one blocking
    ``error`` check instead of aborting the others.
    """
    started = _now()
    ctx = context or make_context(policy, resolve_baseline, options)
    try:
        _check_data(ctx)
        results = [*_score_checks(ctx), *_target_checks(ctx), *run_gates(ctx, policy, options.only_gates, progress)]
        engine = engine_info(ctx)
    finally:
        if context is None:
            close_context(ctx)
    waivers = (*policy.waivers, *options.waivers)
    results, unused = apply_waivers(results, waivers)
    results += duplicate_id_checks(results)
    curves = summarise_curves(ctx, results)
    return RunResult(policy=policy, context=ctx, verdict=Verdict(tuple(results)), started_at=started,
                     finished_at=_now(), waivers=waivers, unused_waivers=tuple(unused), curves=curves,
                     engine=engine)


def summarise_curves(ctx: EvalContext, results: Sequence[CheckResult]) -> Mapping[str, Any] | None:
    """Return the curve summaries the report's charts draw (from predictions the gates computed).

    None on a partitioned context: curves are drawn from rows, which the client does not hold.
    """
    if _is_partitioned(ctx):
        return None
    from gates.curves import summarise

    return summarise(ctx, results)


def _score_checks(ctx: EvalContext) -> list[CheckResult]:
    if _is_partitioned(ctx):
        from gates.engine.runner import score_checks

        return score_checks(ctx)  # type: ignore[arg-type]
    return run_score_checks(ctx)


def _is_partitioned(ctx: EvalContext) -> bool:
    from gates.engine.context import PartitionedContext

    return isinstance(ctx, PartitionedContext)


def _check_data(ctx: EvalContext) -> None:
    """Load (embedded) or inspect (partitioned) the data before any gate, so data errors come first."""
    if _is_partitioned(ctx):
        ctx.schema  # type: ignore[attr-defined]  # noqa: B018
    else:
        ctx.frame  # noqa: B018


def _target_checks(ctx: EvalContext) -> list[CheckResult]:
    """Return the target's checks; a per_example policy has none, a partitioned run merges its facts from partitions."""
    if ctx.policy.data.target is None:
        return []
    if _is_partitioned(ctx):
        return run_target_checks(ctx, ctx.target_facts)  # type: ignore[attr-defined]
    return run_target_checks(ctx)


def add_checks(result: RunResult, extra: Sequence[CheckResult], incomplete: str | None = None) -> RunResult:
    """Return ``result`` with ``extra`` checks (a pytest session's marked tests) in its verdict.

    The run's waivers apply to the extra checks too, so a waiver they use is no longer unused.
    ``incomplete`` says what blocking work the session left out (the verdict is then at best
    ``incomplete``).
    """
    waived, unused = apply_waivers(extra, result.unused_waivers)
    return dataclasses.replace(result, verdict=Verdict((*result.verdict.checks, *waived), incomplete=incomplete),
                               finished_at=_now(), unused_waivers=tuple(unused))


def run_gates(ctx: EvalContext, policy: Policy, only: Sequence[str] | None = None,
              progress: Progress | None = None) -> list[CheckResult]:
    """Return the results of every configured gate, in the registry's order."""
    names = [n for n in gate_registry() if n in policy.gates and (only is None or n in only)]
    results: list[CheckResult] = []
    for i, name in enumerate(names):
        if progress is not None:
            progress(name, i, len(names))
        results.extend(_run_one(ctx, name, policy.plan(name)))
    return results


def _run_one(ctx: EvalContext, name: str, plan: Any) -> list[CheckResult]:
    try:
        if _is_partitioned(ctx):
            from gates.engine.runner import run_gate

            return run_gate(ctx, name, plan)  # type: ignore[arg-type]
        return list(gate_registry()[name].run(ctx, plan))
    except GateError:
        raise
    except Exception as exc:  # noqa: BLE001 -- one broken gate must not hide the others' results
        return [CheckResult(
            id=f"{name}.gate_error", gate=name, status=Status.ERROR, blocking=True,
            message=MSG_GATE_CRASHED.format(gate=name, problem=f"{type(exc).__name__}: {exc}"),
            reason="gate_error",
            details={"traceback": traceback.format_exc(limit=8).splitlines()[-8:]},
        )]


def duplicate_id_checks(results: Sequence[CheckResult]) -> list[CheckResult]:
    """Return one blocking error check per id that more than one result holds (none when ids are unique).

    A typed id's text escapes its scope reversibly (:func:`~gates.identity.one_line`), but a scope
    joins several values with ``&`` and ``=`` (and a missing value is written ``null``), and a gate
    may write its ids as text, so two checks can still meet in one id. A waiver names checks by id,
    so such a pair is refused outright rather than waived or shown as one; the check is added after
    waivers, so no waiver can turn it off.
    """
    seen: dict[str, list[CheckResult]] = {}
    for r in results:
        seen.setdefault(r.id, []).append(r)
    return [CheckResult(id=f"{same[0].gate}.duplicate_id[{cid}]", gate=same[0].gate, status=Status.ERROR,
                        blocking=True, message=MSG_DUPLICATE_ID.format(n=len(same), id=cid), reason="check_error")
            for cid, same in seen.items() if len(same) > 1]


def apply_waivers(results: Sequence[CheckResult], waivers: Sequence[Waiver]
                  ) -> tuple[list[CheckResult], list[Waiver]]:
    """Turn each waived check's failure into ``waived``; return the results and unused waivers."""
    by_id = {w.check: w for w in waivers}
    used: set[str] = set()
    out = []
    for r in results:
        w = by_id.get(r.id)
        if w is None:
            out.append(r)
            continue
        if r.status not in WAIVABLE:  # nothing to waive: the waiver stays unused, the check untouched
            out.append(r)
            continue
        used.add(r.id)
        record = {"reason": w.reason, "by": w.by, "source": w.source,
                  "expires": w.expires.isoformat() if w.expires else None,
                  "original_status": r.status.value}
        out.append(dataclasses.replace(r, status=Status.WAIVED, waiver=record))
    return out, [w for w in waivers if w.check not in used]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
