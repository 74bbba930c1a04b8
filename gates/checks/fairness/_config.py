"""The fairness section of gates.yaml: settings, metric names, thresholds, their validation, and the plan.

``make_plan`` (the gate's ``plan`` hook, called once at load) validates a section and parses it
into a frozen :class:`FairnessPlan`, every metric's severity resolved; the run reads the plan.
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gates.checks import GateSetup, Spec
from gates.checks.fairness._stats import PER_EXAMPLE, group_metric_names, is_rate
from gates.metrics import MULTICLASS, REGRESSION
from gates.stats.settings import WithIntervals
from gates.stats import IntervalSettings

GATE_NAME = "fairness"

DEFAULTS: Mapping[str, Any] = {"severity": "block", **IntervalSettings().as_dict(), "min_group_size": 30,
                                "min_positives": 10}
#: the default allowed worsening of a disparity for ``no_worse_than_baseline``
DEFAULT_MARGIN = 0.01
KINDS = ("min", "max", "no_worse_than_baseline")

#: fairlearn's named disparity metrics: the group rates they compare and how
NAMED: Mapping[str, tuple[tuple[str, ...], str]] = {
    "demographic_parity_difference": (("selection_rate",), "difference"),
    "demographic_parity_ratio": (("selection_rate",), "ratio"),
    "equalized_odds_difference": (("tpr", "fpr"), "difference"),
    "equalized_odds_ratio": (("tpr", "fpr"), "ratio"),
    "equal_opportunity_difference": (("tpr",), "difference"),
    "equal_opportunity_ratio": (("tpr",), "ratio"),
}
#: per-group metrics shown beside the ones a check involves (binary tasks), as in DESIGN's report
MSG_UNKNOWN_METRIC = (
    "unknown fairness metric '{name}' for a {task} task{hint}; use one of fairlearn's "
    "({named}) or <group metric>_difference / <group metric>_ratio, with a group metric among: {choices}"
)
MSG_NO_THRESHOLD = "no threshold: give min, max or no_worse_than_baseline: true"
MSG_MARGIN_ALONE = "margin applies only with no_worse_than_baseline: true"
MSG_AGG = "agg applies only to equalized_odds_difference and equalized_odds_ratio"
MSG_AVERAGE_TASK = "average applies only to multiclass_classification tasks"
MSG_AVERAGE_PER_CLASS = "average: per_class applies to one-vs-rest rates such as tpr or fpr, not to '{metric}'"
MSG_MACRO_SELECTION = (
    "selection_rate averaged over classes is 1/K in every group, so '{name}' would measure nothing; "
    "set average: per_class"
)
MSG_NO_GROUPS = "no groups to compare: set gates.fairness.groups or data.sensitive"
MSG_CLUSTER_TASK = ("data.cluster: the fairness gate resamples clusters for per_example scores only; "
                    "its {task} rates resample rows")


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Settings(WithIntervals):
    """Gate-wide settings with their defaults applied.

    ``n_boot`` is the number of replicates drawn: ``intervals.replicates(k)`` once the family's
    size ``k`` is known (:func:`gates.checks.fairness.assess`), ``bootstrap`` until then.
    """

    severity: str
    intervals: IntervalSettings
    min_group_size: int
    min_positives: int
    n_boot: int


@dataclass(frozen=True)
class MetricSpec:
    """One configured fairness metric: what it compares and its thresholds."""

    name: str
    rates: tuple[str, ...]
    kind: str
    method: str = "between_groups"
    agg: str = "worst_case"
    average: str = "macro"
    minimum: float | None = None
    maximum: float | None = None
    no_worse: bool = False
    margin: float = DEFAULT_MARGIN
    severity: str | None = None

    @property
    def kinds(self) -> list[str]:
        found = {"min": self.minimum is not None, "max": self.maximum is not None,
                 "no_worse_than_baseline": self.no_worse}
        return [k for k in KINDS if found[k]]


def settings_of(spec: Spec) -> Settings:
    """Return the gate's settings, defaults filled in."""
    get = {**DEFAULTS, **spec}
    intervals = IntervalSettings.of(spec)
    return Settings(severity=get["severity"], intervals=intervals, min_group_size=int(get["min_group_size"]),
                    min_positives=int(get["min_positives"]), n_boot=intervals.bootstrap)


def resolve_metric(name: str, task: str, scores: Sequence[str] = ()) -> tuple[tuple[str, ...], str] | None:
    """Return (group metrics compared, ``difference`` or ``ratio``) for a metric name, or None.

    A per_example policy's group metrics are its ``scores`` (``correct_difference``, ``latency_ratio``).
    """
    if name in NAMED:
        return NAMED[name] if task not in (REGRESSION, PER_EXAMPLE) else None
    for kind in ("difference", "ratio"):
        base = name.removesuffix(f"_{kind}")
        if base != name and base in group_metric_names(task, scores):
            return (base,), kind
    return None


def metric_specs(spec: Spec, task: str, scores: Sequence[str] = ()) -> list[MetricSpec]:
    """Return the configured metrics (names already validated), each with its severity resolved."""
    gate_severity = spec.get("severity", DEFAULTS["severity"])
    out = []
    for name, th in (spec.get("metrics") or {}).items():
        resolved = resolve_metric(name, task, scores)
        assert resolved is not None, name
        out.append(MetricSpec(
            name=name, rates=resolved[0], kind=resolved[1],
            method=th.get("method", "between_groups"), agg=th.get("agg", "worst_case"),
            average=th.get("average", "macro"), minimum=th.get("min"), maximum=th.get("max"),
            no_worse=bool(th.get("no_worse_than_baseline", False)),
            margin=float(th.get("margin", DEFAULT_MARGIN)), severity=th.get("severity", gate_severity)))
    return out


def groupings(section: FairnessPlan | Spec, sensitive: Sequence[str]) -> list[tuple[str, ...]]:
    """Return the groupings: ``groups`` entries (a list is an intersection), else each sensitive column."""
    if isinstance(section, FairnessPlan):
        return list(section.groups) if section.groups else [(c,) for c in sensitive]
    entries = section.get("groups") or list(sensitive)
    return [tuple(e) if isinstance(e, list) else (e,) for e in entries]


@dataclass(frozen=True)
class FairnessPlan:
    """A validated fairness section: settings, metrics (severities resolved) and the ``groups`` written.

    ``groups`` is empty when the section gives none: the groupings are then each ``data.sensitive`` column.
    """

    settings: Settings
    metrics: tuple[MetricSpec, ...]
    groups: tuple[tuple[str, ...], ...]


def parse_plan(spec: Spec, task: str, scores: Sequence[str] = ()) -> FairnessPlan:
    """Return the plan of a schema-valid, validated section for a ``task`` (``scores``: per_example names)."""
    return FairnessPlan(settings=settings_of(spec), metrics=tuple(metric_specs(spec, task, scores)),
                        groups=tuple(groupings(spec, ())))


def make_plan(spec: Spec, setup: GateSetup) -> FairnessPlan:
    """Return the section's plan after :func:`validate` (the gate's ``plan`` hook, called once at load)."""
    validate(spec, setup)
    return parse_plan(spec, setup.task, setup.scores)


def as_plan(section: FairnessPlan | Spec, task: str, scores: Sequence[str] = ()) -> FairnessPlan:
    """Return ``section`` when it is a plan, else the plan of the (validated) mapping."""
    return section if isinstance(section, FairnessPlan) else parse_plan(section, task, scores)


def scope_of(columns: Sequence[str]) -> str:
    """Return a grouping's id scope: its columns joined by ``&``."""
    return "&".join(columns)


def validate(spec: Spec, setup: GateSetup) -> None:
    """Reject what the schema cannot: unknown metric names and thresholds that do not apply."""
    if not spec.get("groups") and not setup.data.sensitive:
        raise setup.error(("fairness",), MSG_NO_GROUPS)
    if setup.data.cluster is not None and setup.task != PER_EXAMPLE:
        raise setup.error(("fairness",), MSG_CLUSTER_TASK.format(task=setup.task))
    for name, th in (spec.get("metrics") or {}).items():
        _validate_metric(name, th, setup.task, functools.partial(_error_at, setup, name), setup.scores)


def _error_at(setup: GateSetup, name: str, message: str) -> Exception:
    return setup.error(("fairness", "metrics", name), message)


def _validate_metric(name: str, th: Mapping[str, Any], task: str, error: Callable[[str], Exception],
                     scores: Sequence[str] = ()) -> None:
    resolved = resolve_metric(name, task, scores)
    if resolved is None:
        choices = _metric_choices(task, scores)
        close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        named = ", ".join(NAMED) if task not in (REGRESSION, PER_EXAMPLE) else f"none for {task}"
        raise error(MSG_UNKNOWN_METRIC.format(name=name, task=task, hint=hint, named=named,
                                              choices=", ".join(group_metric_names(task, scores))))
    rates, _ = resolved
    if "min" not in th and "max" not in th and not th.get("no_worse_than_baseline"):
        raise error(MSG_NO_THRESHOLD)
    if "margin" in th and not th.get("no_worse_than_baseline"):
        raise error(MSG_MARGIN_ALONE)
    if "agg" in th and len(rates) < 2:
        raise error(MSG_AGG)
    if "average" in th and task != MULTICLASS:
        raise error(MSG_AVERAGE_TASK)
    average = th.get("average", "macro")
    if task == MULTICLASS and average == "per_class" and not all(is_rate(r, task) for r in rates):
        raise error(MSG_AVERAGE_PER_CLASS.format(metric=next(r for r in rates if not is_rate(r, task))))
    if task == MULTICLASS and average == "macro" and "selection_rate" in rates:
        raise error(MSG_MACRO_SELECTION.format(name=name))


def _metric_choices(task: str, scores: Sequence[str] = ()) -> list[str]:
    named = list(NAMED) if task not in (REGRESSION, PER_EXAMPLE) else []
    return named + [f"{m}_{k}" for m in group_metric_names(task, scores) for k in ("difference", "ratio")]


def declares_blocking(section: FairnessPlan | Spec) -> bool:
    """True when some metric has a threshold whose severity (its own, else the gate's) is block."""
    if isinstance(section, FairnessPlan):
        return any(m.kinds and m.severity == "block" for m in section.metrics)
    gate = section.get("severity", "block")
    for th in (section.get("metrics") or {}).values():
        has_check = "min" in th or "max" in th or th.get("no_worse_than_baseline")
        if has_check and th.get("severity", gate) == "block":
            return True
    return False
