"""Replay the audit log: how often a policy would have blocked, per check, over the recorded runs.

Shadow mode (``mode: shadow``) runs every gate and records the verdict it would have given in the
audit log without blocking or registering anything. ``model-gates calibrate --history NAME`` reads
those records back so a team can switch to ``enforce`` with evidence: the share of runs that would
have been blocked, and which checks did it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gates.results import FAILING


@dataclass(frozen=True)
class CheckHistory:
    """How often one check would have blocked over the recorded runs that had it."""

    id: str
    runs: int
    blocked: int
    statuses: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "runs": self.runs, "blocked": self.blocked,
                "rate": self.blocked / self.runs if self.runs else None, "statuses": dict(self.statuses)}


@dataclass(frozen=True)
class Tally:
    """Recorded runs and how many of them would have been blocked (verdict fail)."""

    runs: int = 0
    blocked: int = 0

    @property
    def rate(self) -> float | None:
        return self.blocked / self.runs if self.runs else None

    def add(self, blocked: bool) -> Tally:
        return Tally(self.runs + 1, self.blocked + int(blocked))

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "blocked": self.blocked, "rate": self.rate}


@dataclass(frozen=True)
class History:
    """The audit log's gate runs of one model, replayed: how often the policy would have blocked.

    ``by_mode`` splits the runs into shadow and enforce; ``current`` counts the runs made with the
    current gates.yaml (same sha256), None when it was not given.
    """

    model: str
    total: Tally
    by_mode: Mapping[str, Tally]
    current: Tally | None
    policies: int
    first: str | None
    last: str | None
    checks: Sequence[CheckHistory]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, **self.total.to_dict(),
                "by_mode": {k: t.to_dict() for k, t in self.by_mode.items()},
                "current_policy": None if self.current is None else self.current.to_dict(),
                "policies": self.policies, "first": self.first, "last": self.last,
                "checks": [c.to_dict() for c in self.checks]}


def replay_history(model: str, events: Sequence[Mapping[str, Any]], *, policy_sha256: str | None = None) -> History:
    """Return how often each run's verdict and each check would have blocked, from audit-log events.

    ``events`` are audit events as dicts (``AuditEvent.to_dict``); only gate runs (``kind: run``)
    count, in shadow and enforce mode alike: a shadow run's verdict is the one it would have given.
    A check blocks when it is blocking and its status fails the verdict (fail, inconclusive, error);
    a waived check does not.
    """
    runs = [e for e in events if e.get("kind") == "run"]
    total, current = Tally(), Tally() if policy_sha256 else None
    modes: dict[str, Tally] = {}
    policies: set[str] = set()
    for e in runs:
        record = e.get("record") or {}
        blocked = _verdict(e) == "fail"
        total = total.add(blocked)
        mode = str(record.get("mode") or "enforce")
        modes[mode] = modes.get(mode, Tally()).add(blocked)
        if record.get("policy_sha256"):
            policies.add(str(record["policy_sha256"]))
        if current is not None and record.get("policy_sha256") == policy_sha256:
            current = current.add(blocked)
    times = [str(e.get("at")) for e in runs if e.get("at")]
    return History(model, total, modes, current, len(policies), min(times, default=None), max(times, default=None),
                   _checks(runs))


def _checks(runs: Sequence[Mapping[str, Any]]) -> list[CheckHistory]:
    """Return every check seen in ``runs`` with its run count, block count and statuses; most blocking first."""
    failing = {s.value for s in FAILING}
    seen: dict[str, int] = {}
    blocked: dict[str, int] = {}
    statuses: dict[str, dict[str, int]] = {}
    for e in runs:
        for c in (e.get("record") or {}).get("checks") or []:
            cid, status = str(c.get("id")), str(c.get("status"))
            seen[cid] = seen.get(cid, 0) + 1
            counts = statuses.setdefault(cid, {})
            counts[status] = counts.get(status, 0) + 1
            if c.get("blocking", True) and status in failing:
                blocked[cid] = blocked.get(cid, 0) + 1
    checks = [CheckHistory(cid, seen[cid], blocked.get(cid, 0), statuses[cid]) for cid in seen]
    return sorted(checks, key=lambda c: (-c.blocked, c.id))


def _verdict(event: Mapping[str, Any]) -> str | None:
    record = event.get("record") or {}
    return record.get("verdict") or event.get("verdict")
