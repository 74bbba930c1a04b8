"""How fast hostile inputs are refused, and how long a hostile API can hold a run.

    python bench/bench_untrusted_inputs.py

1. A 531-byte YAML alias bomb (9 levels of 10 aliases: 10**9 strings once expanded): the time
   gates.config.load_yaml takes to refuse it, against PyYAML's safe_load (which builds shared
   references cheaply; the expansion happens in whatever walks the result).
2. A server on 127.0.0.1 that sends headers, then one body byte a second: how long one request
   and one whole GitLab publishing step are held with MODEL_GATES_HTTP_TIMEOUT=3 and a 5 s budget.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gates.config import load_yaml  # noqa: E402
from gates.errors import UserError  # noqa: E402
from gates.publishers.gitlab import GitLabPublisher  # noqa: E402
from gates.publishers.http import ApiClient, ApiError, RetryPolicy  # noqa: E402
from tests.gates.publishers.test_http_hostile import Server, drip  # noqa: E402


def bomb() -> str:
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def refuse_bomb(text: str) -> float:
    started = time.perf_counter()
    try:
        load_yaml(text, "bomb.yaml")
    except UserError:
        return time.perf_counter() - started
    raise AssertionError("the bomb was accepted")


def main() -> None:
    text = bomb()
    times = [refuse_bomb(text) for _ in range(5)]
    print(f"alias bomb ({len(text)} bytes): refused in {statistics.median(times):.3f} s (median of 5)")
    api = Server("127.0.0.1", drip(600))
    client = ApiClient(api.url, {}, retry=RetryPolicy(deadline=3.0, read_timeout=30.0))
    started = time.monotonic()
    try:
        client.request("GET", "/slow")
    except ApiError:
        pass
    print(f"dripping server, one request, deadline 3 s: held {time.monotonic() - started:.2f} s")
    env = {"CI_API_V4_URL": api.url + "/api/v4", "CI_PROJECT_ID": "7", "CI_COMMIT_SHA": "a" * 40,
           "MODEL_GATES_GITLAB_TOKEN": "glpat-bench", "MODEL_GATES_HTTP_TIMEOUT": "3",
           "MODEL_GATES_PUBLISH_BUDGET": "5"}
    publisher = GitLabPublisher(env)
    started = time.monotonic()
    warnings = publisher.started("bench")
    report = {"model": {"name": "bench"}, "verdict": "pass", "summary": {"pass": 1}, "policy": {"mode": "enforce"}}
    warnings += publisher._conclude(report)  # the API part of publish(): statuses only (no merge request)
    print(f"dripping server, GitLab publishing, deadline 3 s, budget 5 s: held {time.monotonic() - started:.2f} s "
          f"({len(api.seen)} requests, {len(warnings)} warnings)")
    api.close()


if __name__ == "__main__":
    main()
