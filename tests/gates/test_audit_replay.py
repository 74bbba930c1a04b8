"""Replaying audit-log events: counts per run, per mode, per policy and per check."""
from __future__ import annotations

from typing import Any

from gates.audit_replay import replay_history


def run_event(seq: int, verdict: str, checks: dict[str, str], *, mode: str = "shadow", policy: str = "p1",
              warn: tuple[str, ...] = ()) -> dict[str, Any]:
    record = {"verdict": verdict, "mode": mode, "policy_sha256": policy,
              "checks": [{"id": cid, "status": status, "blocking": cid not in warn} for cid, status in checks.items()]}
    return {"seq": seq, "at": f"2026-01-0{seq}T00:00:00+00:00", "kind": "run", "name": "m", "by": "ci",
            "verdict": verdict, "record": record}


EVENTS = [
    run_event(1, "pass", {"a": "pass", "b": "pass"}, mode="enforce", policy="p0"),
    {"seq": 2, "at": "2026-01-02T00:00:00+00:00", "kind": "register", "name": "m", "by": "ci", "version": 1,
     "record": {}},
    run_event(3, "fail", {"a": "fail", "b": "pass", "c": "warn"}, warn=("c",)),
    run_event(4, "fail", {"a": "inconclusive", "b": "error", "c": "fail"}, warn=("c",)),
    run_event(5, "pass", {"a": "waived", "b": "pass", "c": "fail"}, warn=("c",)),
]


def test_runs_blocked_overall_per_mode_and_under_the_current_policy():
    h = replay_history("m", EVENTS, policy_sha256="p1")
    assert (h.total.runs, h.total.blocked) == (4, 2)
    assert {k: (t.runs, t.blocked) for k, t in h.by_mode.items()} == {"enforce": (1, 0), "shadow": (3, 2)}
    assert h.current is not None and (h.current.runs, h.current.blocked) == (3, 2)
    assert h.policies == 2
    assert (h.first, h.last) == ("2026-01-01T00:00:00+00:00", "2026-01-05T00:00:00+00:00")


def test_checks_count_only_blocking_failures_most_blocking_first():
    by_id = {c.id: c for c in replay_history("m", EVENTS).checks}
    assert [c.id for c in replay_history("m", EVENTS).checks] == ["a", "b", "c"]
    assert (by_id["a"].runs, by_id["a"].blocked) == (4, 2)  # fail and inconclusive block; waived does not
    assert (by_id["b"].runs, by_id["b"].blocked) == (4, 1)  # error blocks
    assert (by_id["c"].runs, by_id["c"].blocked) == (3, 0)  # a warn-only check never blocks
    assert by_id["a"].statuses == {"pass": 1, "fail": 1, "inconclusive": 1, "waived": 1}


def test_no_current_policy_and_no_runs():
    h = replay_history("m", EVENTS[1:2])
    assert h.total.runs == 0 and h.total.rate is None and h.current is None and h.checks == []
    assert h.to_dict()["current_policy"] is None
