"""``model-gates calibrate``: what a policy will decide before it blocks anyone, and what shadow runs decided.

Without ``--history``: for every baseline-relative interval check, the half-width at the eval
set's size, the A/A pass/inconclusive/fail rates, the power against a candidate worse by 1x and
2x the margin, the rows needed for 80% and 95% power, and one line of advice; then each gate's and
the policy's family-wise A/A false-fail rate (:mod:`gates.calibration`). With ``--history NAME``:
the audit log's recorded runs of NAME replayed (:mod:`gates.audit_replay`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gates.audit_replay import History, Tally, replay_history
from gates.calibration import DEFAULT_SIMULATIONS, Calibration, CheckCalibration, pct
from gates.commands import config_option
from gates.errors import UserError
from gates.registry import BACKENDS

MSG_NO_RUNS = "no recorded gate runs of model {name!r} in the registry at {uri}"
MSG_NOTHING = (
    "no baseline-relative interval checks to calibrate (max_drop, max_relative_drop, min_gain, "
    "no_worse_than_baseline)"
)
MSG_REGISTRY_WITHOUT_HISTORY = "--registry and --backend apply only with --history NAME"
MIN_SIMULATIONS = 100
ID_WIDTH = 44

COLUMNS = ("margin", "half-width", "A/A pass", "inconcl.", "fail", "power 1x", "power 2x", "rows 80%", "rows 95%")


@click.command()
@config_option
@click.option("--simulations", type=click.IntRange(MIN_SIMULATIONS, 1_000_000), default=DEFAULT_SIMULATIONS,
              show_default=True, help="Simulated eval sets per scenario.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
@click.option("--history", "history", metavar="NAME",
              help="Instead: replay the audit log of model NAME (how often the policy would have blocked).")
@click.option("--registry", "registry_uri", metavar="URI", help="With --history: the registry (default: the config's).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None, help="With --history: backend of --registry.")
def calibrate(config: str, simulations: int, as_json: bool, history: str | None, registry_uri: str | None,
              backend: str | None) -> None:
    """Show how often the policy fails an equally good candidate and catches a worse one.

    Simulates eval sets of the configured size from the eval data itself (candidate and baseline
    made exchangeable), with no model inference, and replays each gate's decision rule on them.
    Seeded by the policy's seed.
    """
    if history:
        _history(config, history, registry_uri, backend, as_json)
        return
    if registry_uri or backend:
        raise UserError(MSG_REGISTRY_WITHOUT_HISTORY)
    from gates.calibration import calibrate as run_calibration
    from gates.config import load_policy
    from gates.registrar import baseline_resolver
    from gates.runner import make_context

    policy = load_policy(config)
    if _interactive():
        click.echo(f"calibrating: the gates' estimates, then {simulations:,} simulated eval sets per scenario…",
                   err=True)
    result = run_calibration(make_context(policy, baseline_resolver(policy)), simulations=simulations)
    if as_json:
        body = {"policy": {"path": policy.path.name, "sha256": policy.sha256, "mode": policy.mode},
                **result.to_dict()}
        click.echo(json.dumps(_finite(body), indent=2, allow_nan=False))
    else:
        click.echo(render_calibration(result), nl=False)


def _history(config: str, name: str, registry_uri: str | None, backend: str | None, as_json: bool) -> None:
    from gates.commands.registry import locate
    from gates.registry import open_backend

    where = locate(config, registry_uri, backend)
    registry = open_backend(where.backend, where.uri)
    try:
        events = [e.to_dict() for e in registry.audit_log(name)]
    finally:
        registry.close()
    result = replay_history(name, events, policy_sha256=_sha256(Path(config)))
    if result.total.runs == 0:
        raise UserError(MSG_NO_RUNS.format(name=name, uri=where.uri))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(render_history(result), nl=False)


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def _sha256(path: Path) -> str | None:
    """Return the sha256 of the policy file's bytes (as the audit log records it), None when absent."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _finite(value: Any) -> Any:
    """Return ``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


# ------------------------------------------------------------------------------------------------ rendering


def render_calibration(cal: Calibration) -> str:
    """Return the human table: one row per check with its advice beneath, then the families and policy."""
    lines = [(f"model-gates calibrate: {cal.model}, {cal.rows:,} eval rows, {cal.simulations:,} simulated eval sets "
              f"per scenario (seed {cal.seed})"),
             "A/A: candidate truly as good as the baseline; power: share failed when truly worse by 1x / 2x the margin",
             ""]
    if not cal.checks:
        lines.append(MSG_NOTHING)
    else:
        lines += _table([[c.id, *_cells(c)] for c in cal.checks], [c.recommendation for c in cal.checks])
        lines += ["", "families (share of A/A runs in which at least one blocking check blocks):"]
        width = max(len(f.gate) for f in cal.families)
        for f in cal.families:
            lines.append(f"  {f.gate:<{width}}  {pct(f.false_fail):>5}  ({f.decision}, multiple_testing {f.multiple_testing} "
                         f"over {f.size} interval checks, on_inconclusive {f.on_inconclusive})")
        lines += ["", f"policy: {cal.recommendation}"]
    if cal.not_calibrated:
        lines += ["", "not calibrated:"] + [f"  {cid}: {why}" for cid, why in cal.not_calibrated]
    return "\n".join(lines) + "\n"


def _cells(c: CheckCalibration) -> list[str]:
    aa = c.rates["as_good"]
    power = [c.power(s) for s in ("worse_1x", "worse_2x")]
    return [_num(c.margin), _num(c.half_width), pct(aa.passed), pct(aa.inconclusive), pct(aa.failed),
            *("-" if p is None else pct(p) for p in power),
            *(_rows(c.rows_needed[p]) for p in sorted(c.rows_needed))]


def _table(rows: Sequence[Sequence[str]], notes: Sequence[str]) -> list[str]:
    """Return aligned rows (first column left, numbers right), each followed by its note.

    An id longer than :data:`ID_WIDTH` gets a line of its own, so the table stays readable.
    """
    head = ["check", *COLUMNS]
    first = min(max(len(r[0]) for r in [head, *rows]), ID_WIDTH)
    widths = [first, *(max(len(r[i]) for r in [head, *rows]) for i in range(1, len(head)))]

    def line(r: Sequence[str]) -> str:
        return "  ".join([r[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(r[1:], widths[1:]))]).rstrip()

    out = [line(head)]
    for r, note in zip(rows, notes):
        out += [r[0], line(["", *r[1:]])] if len(r[0]) > first else [line(r)]
        out.append(f"  -> {note}")
    return out


def render_history(h: History) -> str:
    """Return the human summary of a replayed audit log: blocked runs, then the checks that blocked."""
    modes = ", ".join(f"{mode}: {_tally(t)}" for mode, t in sorted(h.by_mode.items()))
    lines = [f"model-gates calibrate --history {h.model}: {h.total.runs} recorded gate runs, {h.first} to {h.last}",
             f"would have blocked: {_tally(h.total)} ({modes})"]
    if h.current is not None:
        lines.append(f"with the current gates.yaml: {_tally(h.current)}"
                     + (f" ({h.policies} policies in all)" if h.policies > 1 else ""))
    blocking = [c for c in h.checks if c.blocked]
    lines.append("")
    if blocking:
        rows = [[c.id, str(c.blocked), str(c.runs), pct(c.blocked / c.runs)] for c in blocking]
        head = ["check", "blocked", "runs", "rate"]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
        for r in [head, *rows]:
            lines.append("  ".join([r[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(r[1:], widths[1:]))]))
    quiet = len(h.checks) - len(blocking)
    lines.append(f"{quiet} other check(s) never blocked" if blocking else f"none of the {quiet} checks ever blocked")
    return "\n".join(lines) + "\n"


def _tally(t: Tally) -> str:
    return f"{t.blocked} of {t.runs} runs" + ("" if t.rate is None else f" ({pct(t.rate)})")


def _num(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _rows(n: int | None) -> str:
    return "never" if n is None else f"{n:,}"


COMMANDS = [calibrate]
