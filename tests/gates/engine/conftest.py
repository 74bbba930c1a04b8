"""A real dask cluster on 127.0.0.1: one ``dask scheduler`` and two ``dask worker`` processes.

Started once per test module and always torn down (terminate, then kill), so tests that use it
pay the start-up once (a few seconds) and leave no process behind.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return the address of a scheduler with two single-threaded workers, all on 127.0.0.1."""
    pytest.importorskip("distributed")
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask-logs")
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], name: str) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            procs.append(subprocess.Popen([DASK, *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True))

    try:
        start(["scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
              "scheduler")
        for i in range(2):
            start(["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                   "--no-dashboard", "--no-nanny", "--name", f"w{i}"], f"worker-{i}")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    text = "\n".join((logs / f).read_text()[-2000:] for f in os.listdir(logs))
                    pytest.fail(f"the dask cluster did not start:\n{text}")
                time.sleep(0.5)
        yield address
    finally:
        stop(procs)
