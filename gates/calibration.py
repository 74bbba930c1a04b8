"""Decision quality of a policy before it blocks anyone: A/A false-fail rates, power, rows needed.

For every baseline-relative interval check (regression ``max_drop``, ``max_relative_drop`` and
``min_gain`` per slice; fairness ``no_worse_than_baseline``), ``calibrate`` simulates eval sets of
the configured size and replays the gate's own decision rule on them (same confidence, multiple
testing, decision and ``on_inconclusive``, through the one family decision :func:`gates.stats.decide_family`):

* **as good** (A/A): the candidate is truly as good as the baseline, simulated from the eval rows
  symmetrised (:mod:`gates.null_model`: each row once as measured, once with the models' outputs
  swapped), which keeps the within-row correlation of the two models but makes the true
  difference exactly 0. (Comparing a model with itself would not do: its paired difference is
  always 0.) Confusion metrics are drawn exactly from multinomial cell counts, ROC AUC, average
  precision and score means from their influence values; no model runs again.
* **worse by 1x / 2x the margin**: the same draws with one check at a time shifted by -1 and -2
  times its margin (the others as good), so each check's power is its own.

Fairness ``no_worse_than_baseline`` checks (the fairness gate's whole interval family; its
``min``/``max`` are decided on the point estimate) are drawn from a normal model with the standard
error of the interval the fairness gate reports (its paired group bootstrap), independently of one another: a
disparity is a max/min over groups with no cheap exact null, and treating checks as independent
makes the family-wise rate an upper bound.

Rows needed: the standard error scales as ``1/sqrt(n)``, so a check with standard error ``se`` at
``n`` rows reaches power ``1 - beta`` (an equally good candidate passes, and one worse by twice
the margin fails, each with probability ``1 - beta``) at
``n' = n * ((z_c + z_{1-beta}) * se / margin)**2``, where ``z_c`` is the two-sided critical value
of the family's most adjusted level for ``non_inferiority`` (:meth:`IntervalSettings.lowest_level`:
``1 - alpha / k`` under Bonferroni and Holm, whose first step uses it and whose later steps can only
pass more often) and 0 for ``point``: the same adjusted level the simulated rates decide at, so
rows needed, margins and rates agree.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from gates.checks import fairness, gate_registry, regression
from gates.context import EvalContext
from gates.errors import UserError
from gates.intervals import Estimate
from gates.metrics import BINARY, REGRESSION
from gates.null_model import METHOD_NORMAL, NullModel, Target
from gates.results import FAILING, Outcome
from gates.stats import Correction, IntervalSettings, Rule, decide_family
from gates.stats import Member as FamilyMember
from gates.stats.family import to_status

DEFAULT_SIMULATIONS = 1000
#: truth in each scenario, in multiples of the margin below "as good" (0: A/A)
SCENARIOS: Mapping[str, float] = {"as_good": 0.0, "worse_1x": 1.0, "worse_2x": 2.0}
POWERS = (0.8, 0.95)
#: above this A/A share a point decision is called noisy, and a family-wise rate worth acting on
NOISY = 0.05
FAMILY_TOO_HIGH = 0.10

MSG_NO_BASELINE = (
    "calibrate compares the candidate with the baseline, and there is none ({uri}): register a "
    "production model first, or point model.baseline at a model file or prediction columns"
)
MSG_ZERO_MARGIN = (
    "a margin of 0 can never be demonstrated: an equally good candidate passes only {pass_} of the time; "
    "allow a margin (these rows show {m80} with 80% power)"
)
MSG_OK = "ok: an equally good candidate passes {pass_}; one worse by twice the margin fails {fail2}"
MSG_UNDERPOWERED = (
    "underpowered: half-width {hw} vs margin {margin}; an equally good candidate passes only {pass_}; "
    "needs {rows80} rows for 80% power, or a margin of {m80} on these rows"
)
MSG_CANNOT = (
    "too few rows for this margin: half-width {hw} is wider than the margin {margin}, so an equally good "
    "candidate passes only by luck ({pass_}); needs {rows80} rows for 80% power, or a margin of {m80} on these rows"
)
MSG_NOISY_POINT = (
    "noisy: the point decision fails an equally good candidate {fail} of the time; use decision: "
    "non_inferiority, which needs {rows80} rows for 80% power at this margin"
)
MSG_POINT_OK = "ok (point decision): an equally good candidate fails {fail}; one worse by twice the margin fails {fail2}"
MSG_MIN_GAIN = (
    "min_gain: blocks an equally good candidate {blocked} of the time, by design; a candidate better by "
    "twice the gain passes with 80% power from {rows80} rows"
)
MSG_POLICY_OK = "the policy blocks an equally good candidate {rate} of the time: ready to enforce"
MSG_POLICY_HIGH = (
    "the policy blocks an equally good candidate {rate} of the time; fix the checks marked above (more "
    "rows, wider margins, on_inconclusive: warn) before enforcing, or run it in mode: shadow meanwhile"
)
REASON_NOT_INTERVAL = "skipped or in error before any interval: {message}"


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Rates:
    """Shares of simulated runs by outcome; ``blocked`` counts the check's status failing the verdict."""

    passed: float
    inconclusive: float
    failed: float
    blocked: float

    def to_dict(self) -> dict[str, float]:
        return {"pass": self.passed, "inconclusive": self.inconclusive, "fail": self.failed, "blocked": self.blocked}


@dataclass(frozen=True)
class CheckCalibration:
    """What one baseline-relative interval check will do, before it is enforced."""

    id: str
    gate: str
    blocking: bool
    decision: str
    threshold: Mapping[str, Any]
    margin: float
    rows: int
    half_width: float | None
    adjusted_confidence: float
    se: float
    method: str
    rates: Mapping[str, Rates]
    rows_needed: Mapping[float, int | None]
    margin_80: float
    recommendation: str

    def power(self, scenario: str) -> float | None:
        """Return the share of ``fail`` outcomes in a "worse" scenario (None for a margin of 0)."""
        return None if self.margin == 0 else self.rates[scenario].failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "gate": self.gate, "blocking": self.blocking, "decision": self.decision,
            "threshold": dict(self.threshold), "margin": self.margin, "rows": self.rows,
            "half_width": self.half_width, "min_margin": self.half_width,
            "adjusted_confidence": self.adjusted_confidence, "se": self.se, "method": self.method,
            "rates": {k: r.to_dict() for k, r in self.rates.items()},
            "power": {"worse_1x": self.power("worse_1x"), "worse_2x": self.power("worse_2x")},
            "rows_needed": {f"{p:g}": n for p, n in self.rows_needed.items()},
            "margin_for_80": self.margin_80, "recommendation": self.recommendation,
        }


@dataclass(frozen=True)
class FamilyCalibration:
    """One gate's family of interval checks: its multiple-testing rule and its A/A family-wise rate."""

    gate: str
    multiple_testing: str
    decision: str
    on_inconclusive: str
    size: int
    false_fail: float

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "multiple_testing": self.multiple_testing, "decision": self.decision,
                "on_inconclusive": self.on_inconclusive, "checks": self.size, "false_fail": self.false_fail}


@dataclass(frozen=True)
class Calibration:
    """Every calibrated check, each gate's family, and the policy's family-wise A/A false-fail rate."""

    model: str
    rows: int
    simulations: int
    seed: int
    checks: Sequence[CheckCalibration]
    families: Sequence[FamilyCalibration]
    false_fail: float
    not_calibrated: Sequence[tuple[str, str]] = field(default_factory=tuple)

    @property
    def recommendation(self) -> str:
        rate = pct(self.false_fail)
        return (MSG_POLICY_HIGH if self.false_fail > FAMILY_TOO_HIGH else MSG_POLICY_OK).format(rate=rate)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "rows": self.rows, "simulations": self.simulations, "seed": self.seed,
            "scenarios": {k: -v if v else 0.0 for k, v in SCENARIOS.items()},
            "checks": [c.to_dict() for c in self.checks],
            "families": [f.to_dict() for f in self.families],
            "false_fail": self.false_fail, "recommendation": self.recommendation,
            "not_calibrated": [{"id": i, "reason": r} for i, r in self.not_calibrated],
        }


def pct(share: float) -> str:
    """Return a share as a percentage for messages (``12%``, ``0.4%``)."""
    value = 100 * share
    return f"{value:.0f}%" if value >= 1 or value == 0 else f"{value:.1f}%"


# ---------------------------------------------------------------------------------------------- families


@dataclass(frozen=True)
class Member:
    """One interval check of a family, with the numbers its simulated decisions need.

    ``centre`` is the oriented value draws are centred at: 0 (the null) for baseline-relative
    checks, the observed value for the others (fairness bounds, which only share the levels).
    """

    id: str
    gate: str
    blocking: bool
    threshold: Mapping[str, Any]
    margin: float
    rows: int
    half_width: float | None
    level: float
    se: float
    method: str
    is_relative: bool = True
    centre: float = 0.0


@dataclass(frozen=True)
class Family:
    """A gate's interval checks and ``noise``: simulated oriented deviations, shape ``(sims, k)``."""

    gate: str
    settings: IntervalSettings
    members: Sequence[Member]
    noise: np.ndarray

    @property
    def size(self) -> int:
        """The number of blocking members: the family multiple testing adjusts over."""
        return sum(1 for m in self.members if m.blocking)


def calibrate(ctx: EvalContext, *, simulations: int = DEFAULT_SIMULATIONS) -> Calibration:
    """Return the calibration of ``ctx.policy``'s baseline-relative interval checks on its eval data.

    Seeded by the policy's seed (deterministic). Raises :class:`~gates.errors.UserError` when the
    policy has such checks but no baseline is available.
    """
    policy = ctx.policy
    families: list[Family] = []
    skipped: list[tuple[str, str]] = []
    builders = {"regression": regression_family, "fairness": fairness_family}
    for name, build in builders.items():
        if name in policy.gates and name in gate_registry():
            if not ctx.has_baseline and _has_relative(name, policy.gates[name]):
                raise UserError(MSG_NO_BASELINE.format(uri=policy.model.baseline.uri))
            family, left_out = build(ctx, policy.plan(name), simulations)
            skipped += left_out
            if family is not None and family.members:
                families.append(family)
    return summarise(families, model=policy.model.name, rows=ctx.n_rows, simulations=simulations,
                     seed=policy.seed, skipped=skipped)


def _has_relative(gate: str, spec: Mapping[str, Any]) -> bool:
    for thresholds in (spec.get("metrics") or {}).values():
        if gate == "regression" and any(k in regression.RELATIVE for k in thresholds):
            return True
        if gate == "fairness" and thresholds.get("no_worse_than_baseline"):
            return True
    return False


def summarise(families: Sequence[Family], *, model: str, rows: int, simulations: int, seed: int,
              skipped: Sequence[tuple[str, str]] = ()) -> Calibration:
    """Replay every family's decisions in every scenario and gather rates, rows needed and advice."""
    checks: list[CheckCalibration] = []
    summaries: list[FamilyCalibration] = []
    policy_blocked = np.zeros(simulations, dtype=bool)
    for fam in families:
        as_good = replay(fam, np.zeros(len(fam.members)))
        outcomes = {name: scenario_outcomes(fam, multiple, as_good) for name, multiple in SCENARIOS.items()}
        blocked = {name: _blocked(fam, out) for name, out in outcomes.items()}
        relative = np.array([m.is_relative and m.blocking for m in fam.members])
        fam_blocked = blocked["as_good"][:, relative].any(axis=1) if relative.any() else np.zeros(simulations, bool)
        policy_blocked |= fam_blocked
        s = fam.settings
        summaries.append(FamilyCalibration(fam.gate, _correction(fam).value, s.decision.value, s.on_inconclusive,
                                           len(fam.members), float(fam_blocked.mean())))
        for j, member in enumerate(fam.members):
            if member.is_relative:
                rates = {name: _rates(outcomes[name][:, j], blocked[name][:, j]) for name in SCENARIOS}
                checks.append(_check(member, fam, rates))
    return Calibration(model, rows, simulations, seed, checks, summaries, float(policy_blocked.mean()),
                       tuple(skipped))


def scenario_outcomes(fam: Family, multiple: float, as_good: np.ndarray) -> np.ndarray:
    """Return outcome codes ``(sims, k)`` when each check, in turn, is worse by ``multiple`` times its margin.

    Column ``j`` comes from a replay where only check ``j`` is worse and the others are as good
    (``as_good``: the A/A replay's codes), so a check's power does not depend on what the policy's
    other metrics do. Only Holm's levels depend on the other checks; without Holm one replay with
    every check shifted gives the same columns. (With Holm this costs one replay per check.)
    """
    margins = np.array([abs(m.margin) if m.is_relative else 0.0 for m in fam.members])
    if multiple == 0:
        return as_good
    if _correction(fam) is not Correction.HOLM or fam.settings.decision is Rule.POINT:
        return replay(fam, -multiple * margins)
    out = as_good.copy()
    for j in np.flatnonzero(margins):
        shift = np.zeros(len(margins))
        shift[j] = -multiple * margins[j]
        out[:, j] = replay(fam, shift)[:, j]
    return out


def _correction(fam: Family) -> Correction:
    """Return the correction the family's levels get (none for a family of one), under either rule."""
    return fam.settings.multiple_testing if fam.size > 1 else Correction.NONE


OUTCOME_CODES = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAIL: 2, Outcome.ERROR: 3}


def replay(fam: Family, shift: np.ndarray) -> np.ndarray:
    """Return outcome codes ``(sims, k)`` of the gate's decision rule on every simulated eval set.

    ``shift`` moves each check's true (oriented) difference, e.g. ``-2 * margin`` for a candidate
    twice the margin worse; the decision itself is the gates' :func:`gates.stats.decide_family`.
    """
    values = fam.noise + shift + np.array([m.centre for m in fam.members])
    out = np.empty(values.shape, dtype=np.int8)
    for i, row in enumerate(values.tolist()):
        members = [FamilyMember(Estimate(v, METHOD_NORMAL, se=m.se), m.margin, m.blocking)
                   for v, m in zip(row, fam.members)]
        out[i] = [OUTCOME_CODES[d.outcome] for d in decide_family(fam.settings, members).members]
    return out


def _blocked(fam: Family, codes: np.ndarray) -> np.ndarray:
    """Return which simulated checks' statuses would fail the verdict (``to_status`` of each outcome)."""
    outcomes = list(OUTCOME_CODES)
    out = np.zeros(codes.shape, dtype=bool)
    for j, m in enumerate(fam.members):
        failing = [OUTCOME_CODES[o] for o in outcomes
                   if to_status(o, m.blocking, fam.settings.on_inconclusive) in FAILING]
        out[:, j] = np.isin(codes[:, j], failing)
    return out


def _rates(codes: np.ndarray, blocked: np.ndarray) -> Rates:
    counts = np.bincount(codes.astype(np.int64), minlength=4) / max(len(codes), 1)
    return Rates(float(counts[0]), float(counts[1]), float(counts[2]), float(blocked.mean()))


# ---------------------------------------------------------------------------------------------- rows and advice


def critical_value(settings: IntervalSettings, family_size: int) -> float:
    """Return the two-sided z of the family's most adjusted level (0 for a point decision).

    :meth:`IntervalSettings.lowest_level`: ``1 - alpha / k`` under Bonferroni and Holm. Holm decides
    its first check at that level and passes every check Bonferroni would, so ``rows_needed`` at it
    gives at least the planned power in the simulated step-down too.
    """
    if settings.decision is Rule.POINT:
        return 0.0
    level = settings.lowest_level(family_size)
    return NormalDist().inv_cdf(1 - (1 - level) / 2)


def rows_needed(rows: int, se: float, margin: float, z_c: float, power: float) -> int | None:
    """Return ``n * ((z_c + z_power) * se / margin)**2`` rounded up (None for a margin of 0)."""
    if margin == 0 or not math.isfinite(se):
        return None
    z = z_c + NormalDist().inv_cdf(power)
    return max(1, math.ceil(rows * (z * se / abs(margin)) ** 2))


def _check(m: Member, fam: Family, rates: Mapping[str, Rates]) -> CheckCalibration:
    size = fam.size if m.blocking else 1
    z_c = critical_value(fam.settings, size)
    needed = {p: rows_needed(m.rows, m.se, m.margin, z_c, p) for p in POWERS}
    m80 = (z_c + NormalDist().inv_cdf(POWERS[0])) * m.se
    advice = recommend(m, fam.settings, rates, needed[POWERS[0]], m80, size)
    return CheckCalibration(m.id, m.gate, m.blocking, fam.settings.decision.value, m.threshold, m.margin, m.rows,
                            m.half_width, m.level, m.se, m.method, rates, needed, m80, advice)


def recommend(m: Member, settings: IntervalSettings, rates: Mapping[str, Rates], rows80: int | None,
              m80: float, family_size: int) -> str:
    """Return one line saying whether the check is fit to enforce, and what to change if not."""
    aa, worse = rates["as_good"], rates["worse_2x"]
    words = {"pass_": pct(aa.passed), "fail": pct(aa.failed), "fail2": pct(worse.failed), "blocked": pct(aa.blocked),
             "inc": pct(aa.inconclusive), "hw": _fmt(m.half_width), "margin": _fmt(m.margin), "m80": _fmt(m80),
             "rows80": _fmt_rows(rows80)}
    if m.margin < 0:
        rows = rows_needed(m.rows, m.se, m.margin, critical_value(settings, family_size), POWERS[0])
        return MSG_MIN_GAIN.format(**{**words, "rows80": _fmt_rows(rows)})
    if m.margin == 0:
        return MSG_ZERO_MARGIN.format(**words)
    if settings.decision is Rule.POINT:
        ni = dataclasses.replace(settings, decision=Rule.NON_INFERIORITY)
        words["rows80"] = _fmt_rows(rows_needed(m.rows, m.se, m.margin, critical_value(ni, family_size), POWERS[0]))
        return (MSG_NOISY_POINT if aa.failed > NOISY else MSG_POINT_OK).format(**words)
    if aa.passed >= POWERS[0] and worse.failed >= POWERS[0]:
        return MSG_OK.format(**words)
    if m.half_width is not None and m.half_width > m.margin:
        return MSG_CANNOT.format(**words)
    return MSG_UNDERPOWERED.format(**words)


def _fmt(x: float | None) -> str:
    return "undefined" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _fmt_rows(n: int | None) -> str:
    return "no number of" if n is None else f"{n:,}"


# ---------------------------------------------------------------------------------------------- regression


def regression_family(ctx: EvalContext, section: regression.RegressionPlan | Mapping[str, Any], simulations: int
                      ) -> tuple[Family | None, list[tuple[str, str]]]:
    """Return the regression gate's interval family with simulated null draws, and the checks left out.

    ``section`` is the gate's plan (a section mapping is planned). The observed estimates, margins
    and half-widths come from the gate's own functions, so they are the numbers ``model-gates run``
    reports.
    """
    measured, checks = regression.measure(ctx, section)
    pending = regression.interval_family(measured, checks)
    decided = [p for p in pending if p.oriented.is_defined]
    family_ids = {p.check.id for p in decided}
    skipped = [(c.id, _why_not(measured, c)) for c in checks if c.kind in regression.RELATIVE and c.id not in family_ids]
    if not decided:
        return None, skipped
    settings = measured.settings.intervals
    levels = [d.level for d in decide_family(settings, regression.members(decided)).members]
    candidate, baseline = ctx.predictions("candidate"), ctx.predictions("baseline")
    assert candidate is not None and baseline is not None
    task = ctx.policy.model.task
    targets = [Target(p.check.metric, p.check.slicing, p.check.slice) for p in decided]
    null = NullModel.of(ctx.y_true, candidate, baseline, measured.slicings, task=task,
                        positive_label=ctx.policy.model.positive_label if task == BINARY else None,
                        classes=ctx.classes if task not in (REGRESSION, "per_example") else None,
                        clusters=None if ctx.clusters is None else ctx.clusters.codes)
    draws, ses, methods = null.simulate(targets, simulations, ctx.rng("calibrate", "regression"))
    directions = np.array([p.check.metric.direction for p in decided], dtype=np.float64)
    members = []
    for p, level, se, method in zip(decided, levels, ses, methods):
        lo, hi = p.oriented.interval(level)
        hw = (hi - lo) / 2 if math.isfinite(lo) and math.isfinite(hi) else None
        members.append(Member(p.check.id, "regression", p.check.is_blocking, p.check.threshold(), p.margin,
                              p.check.rows, hw, level, float(se), method))
    return Family("regression", settings, members, draws * directions), skipped


# ---------------------------------------------------------------------------------------------- fairness


def _why_not(measured: regression.Measured, check: regression.Check) -> str:
    early = regression.early_result(measured, check)
    message = early.message if early is not None else regression.MSG_UNDEFINED.format(metric=check.metric.name)
    return REASON_NOT_INTERVAL.format(message=message)


def fairness_family(ctx: EvalContext, section: fairness.FairnessPlan | Mapping[str, Any], simulations: int
                    ) -> tuple[Family | None, list[tuple[str, str]]]:
    """Return the fairness gate's interval family, drawn from normal models of its reported intervals.

    ``section`` is the gate's plan (a section mapping is planned).
    """
    plan = fairness.as_plan(section, ctx.policy.model.task, [n for n, _ in ctx.policy.model.candidate.named_scores])
    results = gate_registry()["fairness"].run(ctx, plan)
    settings = plan.settings.intervals
    members, skipped = [], []
    for r in results:
        if "no_worse_than_baseline" not in r.threshold:
            continue  # min/max: decided on the point estimate, outside the family's levels
        if r.ci is None or r.adjusted_confidence is None or r.half_width is None:
            skipped.append((r.id, REASON_NOT_INTERVAL.format(message=r.message)))
            continue
        z = NormalDist().inv_cdf(1 - (1 - r.adjusted_confidence) / 2)
        members.append(Member(r.id, "fairness", r.blocking, r.threshold, float(r.threshold.get("margin", 0.0)),
                              ctx.n_rows, r.half_width, r.adjusted_confidence, r.half_width / z, METHOD_NORMAL))
    if not members:
        return None, skipped
    rng = ctx.rng("calibrate", "fairness")
    noise = rng.standard_normal((simulations, len(members))) * np.array([m.se for m in members])
    return Family("fairness", settings, members, noise), skipped
