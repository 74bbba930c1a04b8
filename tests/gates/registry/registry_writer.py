"""A registry writer run as a separate process by the crash and concurrency tests.

``python registry_writer.py crash ROOT WORKDIR SEED``: register, promote, roll back and audit in a
loop until killed, printing ``committed VERSION SHA256`` after each registration returns.

``python registry_writer.py race ROOT WORKDIR SEED COUNT GO_FILE [CONTENT]``: wait until GO_FILE
exists, then register COUNT models (distinct bytes, or CONTENT for all) and print what came back.

Only the standard library and the local backend are imported, so a process starts in ~50 ms.
"""
from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from pathlib import Path

from gates.errors import UserError
from gates.registry.base import RunEntry
from gates.registry.local import LocalRegistry

MODEL = "crash"
SIZES = (16, 4_000, 60_000, 500_000)


def write_model(workdir: Path, tag: str, content: bytes) -> Path:
    path = workdir / f"{tag}.skops"
    path.write_bytes(content)
    return path


def crash_loop(reg: LocalRegistry, workdir: Path, rng: random.Random) -> None:
    print("ready", flush=True)
    i = 0
    while True:
        content = f"{os.getpid()}-{i}-".encode() + rng.randbytes(rng.choice(SIZES))
        path = write_model(workdir, f"m{os.getpid()}-{i}", content)
        run = RunEntry(verdict="pass", by="writer", ci_url=f"https://ci.example/{i}", record={"i": i})
        got = reg.register(MODEL, path, format="skops", lineage={"i": i}, by="writer", verdict="pass",
                           alias=rng.choice((None, "staging", "production")), run=run)
        print(f"committed {got.version.version} {hashlib.sha256(content).hexdigest()}", flush=True)
        path.unlink()
        if rng.random() < 0.3:
            reg.record_run(MODEL, RunEntry(verdict="fail", by="writer", ci_url=None, record={"i": i}))
        if rng.random() < 0.4:
            reg.set_alias(MODEL, "production", rng.randint(1, got.version.version), by="writer")
        if rng.random() < 0.3:
            try:
                reg.rollback(MODEL, "production", by="writer")
            except UserError:
                pass
        i += 1


def race(reg: LocalRegistry, workdir: Path, seed: int, count: int, go: Path, content: bytes | None) -> None:
    paths = [write_model(workdir, f"r{seed}-{k}", content or f"model {seed}-{k}".encode()) for k in range(count)]
    while not go.exists():
        time.sleep(0.001)
    for path in paths:
        got = reg.register(MODEL, path, format="skops", lineage={"seed": seed}, by=f"job{seed}", verdict="pass")
        print(got.version.version, got.version.model_sha256, int(got.already_registered), flush=True)


def main(argv: list[str]) -> None:
    mode, root, workdir, seed = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3])
    reg = LocalRegistry(root)
    if mode == "crash":
        crash_loop(reg, workdir, random.Random(seed))
    else:
        content = argv[6].encode() if len(argv) > 6 else None
        race(reg, workdir, seed, int(argv[4]), Path(argv[5]), content)
    reg.close()


if __name__ == "__main__":
    main(sys.argv[1:])
