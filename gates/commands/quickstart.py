"""``model-gates quickstart``: a complete, offline demo in an empty folder, gated and registered."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click

from gates.quickstart import MODEL_NAME, build_demo

NEXT_STEPS = (
    ("model-gates history {name}", "versions, aliases, verdicts, who/when, recent audit events"),
    ("model-gates show {name} {version}", "full lineage of the candidate (data, policy, git, metrics)"),
    ("model-gates promote {name} {version} --alias production", "make the candidate production"),
    ("model-gates rollback {name}", "then move production back to the version it replaced"),
    ("model-gates run", "gate again: same bytes, so \"already registered\""),
    ("pip install pytest && pytest --model-gates", "every check as a pytest test (-k fairness works)"),
    ("model-gates calibrate", "how often this policy would block an equally good candidate; "
                              "see README: Choosing thresholds"),
    ("model-gates report model-gates-report/report.json --format md", "the Markdown a PR/MR comment shows"),
    ("model-gates init --dir ci --ci github", "a GitHub workflow to copy (--ci gitlab for GitLab CI)"),
)
MAKE_IT_FAIL = "Then make it fail: in gates.yaml raise regression.metrics.roc_auc.min to 0.9 and run again."


@click.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.pass_context
def quickstart(ctx: click.Context, folder: str) -> None:
    """Build a demo in FOLDER (default: here; must be empty): real data, a registry, gated candidate.

    Uses scikit-learn's bundled diabetes dataset, trains and registers a production model, trains
    a candidate, writes a commented gates.yaml using every gate, runs the gates and registers the
    candidate if it passes. Needs no network.
    """
    from gates.commands.run import run

    started = time.monotonic()
    target = Path(folder)
    click.echo(f"model-gates quickstart in {target.resolve()}")
    click.echo("  data: scikit-learn's diabetes dataset (442 patients), label = progression above the median")
    demo = build_demo(target)
    click.echo(f"  wrote data/train.csv ({demo.rows['train']} rows), data/eval.csv ({demo.rows['eval']} rows), "
               "models/production.skops, models/candidate.skops")
    click.echo(f"  wrote gates.yaml with the {', '.join(demo.gates)} gates")
    click.echo(f"  production model passed its gates and is registered as {MODEL_NAME} v{demo.production_version} "
               f"(alias production); report in {_shown(demo.production_report_dir)}/")
    click.echo("\nGating the candidate against production (model-gates run):\n")
    report_dir = demo.folder / "model-gates-report"
    code = _invoke(ctx, run, config=_shown(demo.policy_path), report_dir=_shown(report_dir), ci="none")
    click.echo(f"\nDone in {time.monotonic() - started:.1f} s. Reports: {_shown(report_dir)}/ "
               f"({', '.join(sorted(p.name for p in report_dir.glob('report.*')))}); registry: "
               f"{_shown(demo.folder / '.model-gates' / 'registry')}/\n")
    cd = f" (cd {_shown(demo.folder)} first)" if demo.folder.resolve() != Path.cwd().resolve() else ""
    click.echo(next_steps(cd, demo.production_version + 1))
    raise click.exceptions.Exit(code)


def next_steps(cd: str, version: int) -> str:
    """Return the "try next" list with the demo's model name and the candidate's version filled in."""
    rows = [(cmd.format(name=MODEL_NAME, version=version), what) for cmd, what in NEXT_STEPS]
    width = max(len(cmd) for cmd, _ in rows)
    return "\n".join([f"Try next{cd}:", *(f"  {cmd:<{width}}  {what}" for cmd, what in rows), MAKE_IT_FAIL])


def _invoke(ctx: click.Context, command: click.Command, **params: object) -> int:
    """Run another command exactly as its own invocation would; return its exit code."""
    try:
        ctx.invoke(command, **params)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return 0


def _shown(path: Path) -> str:
    """Return ``path`` relative to the working folder when it is inside it (shorter to read and copy)."""
    try:
        return os.path.relpath(path.resolve(), Path.cwd().resolve()) if path.resolve().is_relative_to(
            Path.cwd().resolve()) else str(path.resolve())
    except ValueError:
        return str(path)


COMMANDS = [quickstart]
