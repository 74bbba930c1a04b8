"""Benchmark of the embedded registry against the plain work it must do (copy + hash + fsync).

Run: ``python bench/bench_registry.py`` (about 30 s). Prints one line per measurement; the numbers
recorded in bench/README.md come from here.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gates.registry.local import LocalRegistry

WRITER = Path(__file__).resolve().parents[1] / "tests" / "gates" / "registry" / "registry_writer.py"


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def plain_copy(src: Path, dst: Path) -> str:
    """The floor: copy, hash, fsync, as any safe store must."""
    digest = hashlib.sha256()
    with src.open("rb") as a, dst.open("wb") as b:
        for block in iter(lambda: a.read(1 << 20), b""):
            digest.update(block)
            b.write(block)
        b.flush()
        os.fsync(b.fileno())
    return digest.hexdigest()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    try:
        reg = LocalRegistry(tmp / "registry")
        small = []
        for i in range(200):
            p = tmp / f"s{i}.skops"
            p.write_bytes(os.urandom(10_000))
            small.append(p)
        t, _ = timed(lambda: [reg.register("small", p, format="skops", lineage={"i": 1}, by="bench",
                                           verdict="pass", alias="staging") for p in small])
        print(f"register 200 x 10 kB sequentially: {t:.2f} s ({200 / t:.0f} versions/s)")
        t, _ = timed(lambda: [reg.resolve("small", "staging") for _ in range(1000)])
        print(f"resolve an alias: {t:.3f} ms each")

        big = tmp / "big.skops"
        t_plain, t_reg = [], []
        for i in range(3):                       # interleaved, best of 3: page cache and writeback even out
            big.write_bytes(os.urandom(100 << 20))
            t_plain.append(timed(plain_copy, big, tmp / f"copy{i}.bin")[0])
            t_reg.append(timed(lambda: reg.register("big", big, format="skops", lineage={}, by="bench",
                                                    verdict="pass"))[0])
        print(f"register 100 MiB: {min(t_reg):.2f} s; plain copy+sha256+fsync {min(t_plain):.2f} s; "
              f"ratio {min(t_reg) / min(t_plain):.2f}")
        t_hash, _ = timed(lambda: hashlib.sha256(big.read_bytes()).hexdigest())
        t_fetch, _ = timed(reg.fetch, "big", 1)
        print(f"fetch (verify) 100 MiB: {t_fetch:.2f} s; plain sha256 {t_hash:.2f} s; ratio {t_fetch / t_hash:.2f}")
        t_verify, problems = timed(reg.verify)
        print(f"verify the whole registry (203 versions, 302 MiB): {t_verify:.2f} s, problems: {len(problems)}")
        reg.close()

        work = tmp / "race"
        work.mkdir()
        go = work / "go"
        procs = [subprocess.Popen([sys.executable, str(WRITER), "race", str(tmp / "race-reg"), str(work), str(j),
                                   "25", str(go)], stdout=subprocess.PIPE, text=True) for j in range(8)]
        time.sleep(1.0)
        start = time.perf_counter()
        go.touch()
        versions = [line.split()[0] for p in procs for line in p.communicate()[0].splitlines()]
        t = time.perf_counter() - start
        print(f"8 processes x 25 registrations at once: {t:.2f} s, {len(set(versions))} distinct versions "
              f"of {len(versions)} ({len(versions) / t:.0f} versions/s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
