"""Write evals.csv: a small eval set of prompts x samples, scored for two versions of a support bot.

Every prompt was answered ``SAMPLES`` times by the production version and by the candidate (the
prompt bundle in prompts/v2/), and each answer was scored by the eval harness: ``correct`` (the
answer passed the prompt's check, 0/1), ``judge`` (an LLM judge's 1-10 rating), latency in
milliseconds and cost in US dollars. A prompt's difficulty is shared by its samples and by both
versions, so rows of one prompt are correlated: the gates resample whole prompts
(``data.cluster: prompt_id``).

    python generate.py            # the candidate is a little better: the gates pass
    python generate.py --degrade  # the candidate got worse and slower: the gates fail

Seeded: the same arguments always write the same file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261201
PROMPTS = 300
SAMPLES = 4
LANGUAGES = {"en": 0.5, "de": 0.3, "es": 0.2}
CATEGORIES = ("billing", "outage", "account", "api")


def generate(*, degrade: bool = False, seed: int = SEED) -> pd.DataFrame:
    """Return the eval rows: one per (prompt, sample), both versions' scores side by side."""
    rng = np.random.default_rng(seed)
    language = rng.choice(list(LANGUAGES), PROMPTS, p=list(LANGUAGES.values()))
    category = rng.choice(CATEGORIES, PROMPTS)
    difficulty = rng.normal(0.0, 1.2, PROMPTS)           # shared by a prompt's samples and both versions
    length = rng.gamma(3.0, 80.0, PROMPTS)               # answer length drives latency and cost
    pid = np.repeat(np.arange(PROMPTS), SAMPLES)
    gain = -0.45 if degrade else 0.15                    # the candidate's change, in log-odds of passing
    slower = 1.3 if degrade else 0.97
    u = rng.random(pid.size)                             # the same draw for both versions: paired outcomes
    prod_p = _logistic(1.0 - difficulty[pid])
    cand_p = _logistic(1.0 + gain - difficulty[pid])
    judge_noise = rng.normal(0.0, 0.8, pid.size)
    prod_ms = 350 + 4.0 * length[pid] * rng.lognormal(0.0, 0.25, pid.size)
    cand_ms = (350 + 4.0 * length[pid] * slower * rng.lognormal(0.0, 0.25, pid.size))
    return pd.DataFrame({
        "prompt_id": [f"q{i:04d}" for i in pid],
        "sample": np.tile(np.arange(SAMPLES), PROMPTS),
        "language": language[pid],
        "category": category[pid],
        "prod_correct": (u < prod_p).astype(int),
        "cand_correct": (u < cand_p).astype(int),
        "prod_judge": _judge(prod_p, judge_noise),
        "cand_judge": _judge(cand_p, judge_noise),
        "prod_ms": prod_ms.round(1),
        "cand_ms": cand_ms.round(1),
        "prod_cost": (prod_ms * 2.0e-6).round(6),
        "cand_cost": (cand_ms * 1.9e-6).round(6),
    })


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _judge(p: np.ndarray, noise: np.ndarray) -> np.ndarray:
    return np.clip(np.round(1 + 9 * p + noise), 1, 10).astype(int)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degrade", action="store_true", help="make the candidate worse and slower")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("evals.csv"))
    args = parser.parse_args()
    generate(degrade=args.degrade).to_csv(args.out, index=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
