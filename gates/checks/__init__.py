"""The gate kinds: a registry built once from our modules and the ``model_gates.gates`` entry point.

A gate kind is a :class:`GateKind`: its config section's JSON Schema, a ``validate`` hook for
semantics the schema cannot say (unknown metric names, missing files), an optional ``plan`` hook
(validate and parse the section once, at load, into a frozen plan), ``declares_blocking`` (does
the plan contain at least one blocking check), ``run`` (context + plan -> results) and
``columns`` (the eval columns the section names, checked when the eval data is loaded) and
``reference_columns`` (those it also reads from ``data.reference``, checked there). A gate
without a ``plan`` hook is validated by ``validate`` and its plan is the section mapping itself.
Gates are pure: they never import a CI, registry or report module and never print.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module, metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.errors import UserError
from gates.identity import Reason
from gates.policy import DataSpec, Task

if TYPE_CHECKING:
    from gates.context import EvalContext
    from gates.results import CheckResult

Spec = Mapping[str, Any]
#: a gate's parsed section: a frozen dataclass for a gate with a ``plan`` hook, else the section mapping
Plan = Any
#: a column a gate section names, with the key path (inside the section) that names it
NamedColumn = tuple[tuple[str | int, ...], str]

#: built-in gate modules, in run order
BUILTIN = ("data", "regression", "fairness", "robustness")
ENTRY_POINT_GROUP = "model_gates.gates"
#: the interval settings' schema, whose ``$defs`` gate sections reference
INTERVAL_SCHEMA = "interval_settings.schema.json"
REASON_NOT_DISTRIBUTABLE = Reason.NOT_DISTRIBUTABLE.value
MSG_GATE_NOT_DISTRIBUTABLE = ("the {gate} gate does not run on the dask engine yet: its statistics have no "
                              "mergeable form here (docs/scale.md); run it with engine kind local")


@dataclass(frozen=True)
class GateSetup:
    """What a gate's ``validate`` hook may know about the policy, and how to point into the file.

    ``where(*keypath)`` returns ``file:line`` of a key under ``gates``; ``error(keypath, msg)``
    returns the UserError to raise. ``scores`` names a ``per_example`` model's score metrics.
    """

    task: Task
    base_dir: Path
    data: DataSpec
    where: Callable[..., str]
    error: Callable[[tuple[str | int, ...], str], UserError]
    scores: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateKind:
    """One gate kind. ``declares_blocking`` and ``run`` take what :meth:`make_plan` returned."""

    name: str
    schema_file: str
    validate: Callable[[Spec, GateSetup], None]
    declares_blocking: Callable[[Plan], bool]
    run: Callable[["EvalContext", Plan], list["CheckResult"]]
    columns: Callable[[Spec], list[NamedColumn]] = lambda spec: []
    reference_columns: Callable[[Spec], list[NamedColumn]] = lambda spec: []
    #: validate a (schema-valid) section and return it parsed into a frozen plan; raises what ``validate`` does
    plan: Callable[[Spec, GateSetup], Plan] | None = None

    def make_plan(self, spec: Spec, setup: GateSetup) -> Plan:
        """Return the section's plan, validated: the ``plan`` hook's, or the section itself when there is none."""
        if self.plan is None:
            self.validate(spec, setup)
            return spec
        return self.plan(spec, setup)

    def schema(self) -> dict[str, Any]:
        """Return this gate's config-section JSON Schema (a fresh copy).

        A section that references the shared interval settings (``#/$defs/confidence``, ...) gets
        them from ``interval_settings.schema.json``, the one place they are declared.
        """
        module, _, name = self.schema_file.rpartition(":")
        text = resources.files(module or "gates").joinpath("schemas", name).read_text(encoding="utf-8")
        schema = json.loads(text)
        if '"#/$defs/' in text:
            shared = json.loads(resources.files("gates").joinpath("schemas", INTERVAL_SCHEMA).read_text(encoding="utf-8"))
            schema["$defs"] = {**shared["$defs"], **schema.get("$defs", {})}
        return schema


@lru_cache(maxsize=1)
def gate_registry() -> Mapping[str, GateKind]:
    """Return every gate kind by name: built-ins first (in run order), then third-party ones."""
    kinds: dict[str, GateKind] = {}
    for name in BUILTIN:
        kinds[name] = import_module(f"gates.checks.{name}").GATE
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in kinds:
            kinds[ep.name] = ep.load()
    return kinds


def listed_columns(value: Any, keypath: tuple[str | int, ...]) -> list[NamedColumn]:
    """Return the columns of a ``[a, [b, c]]`` list (an entry that is a list names several), with key paths."""
    out: list[NamedColumn] = []
    for i, entry in enumerate(value or ()):
        if isinstance(entry, str):
            out.append(((*keypath, i), entry))
        else:
            out.extend(((*keypath, i, j), str(col)) for j, col in enumerate(entry))
    return out


def declares_blocking_default(spec: Spec, check_keys: tuple[str, ...]) -> bool:
    """Return True when a section declares a check whose effective severity is ``block``.

    The gate's own ``severity`` (default block) is inherited by every check under
    ``check_keys``; a check mapping's own ``severity`` wins.
    """
    gate_blocks = spec.get("severity", "block") == "block"

    def walk(node: Any, inherited: bool) -> bool:
        if isinstance(node, Mapping):
            own = node.get("severity")
            here = inherited if own is None else own == "block"
            children = [v for k, v in node.items() if k != "severity"]
            if not any(isinstance(c, (Mapping, list)) for c in children):
                return here
            return any(walk(c, here) for c in children if isinstance(c, (Mapping, list)))
        if isinstance(node, list):
            return inherited and len(node) > 0
        return inherited

    return any(walk(spec[k], gate_blocks) for k in check_keys if spec.get(k))


def not_distributable(name: str, plan: Plan, message: str | None = None) -> CheckResult:
    """Return the error check that stands for a gate the engine cannot compute on partitions.

    It blocks when the gate's plan has a blocking check, so the verdict fails rather than pass
    on checks that were never computed.
    """
    from gates.identity import CheckId
    from gates.results import CheckResult, Outcome
    from gates.stats.family import to_status

    blocking = gate_registry()[name].declares_blocking(plan)
    cid = CheckId(name, "not_distributable")
    return CheckResult(id=str(cid), check_id=cid, gate=name, status=to_status(Outcome.ERROR, blocking),
                       blocking=blocking, message=message or MSG_GATE_NOT_DISTRIBUTABLE.format(gate=name),
                       reason=REASON_NOT_DISTRIBUTABLE)
