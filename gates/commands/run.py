"""``model-gates run``: gate a candidate, write reports, publish, register on pass."""
from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from gates.commands import config_option
from gates.config import CLI_SOURCE, cli_waiver, load_policy
from gates.engine import resolve_spec
from gates.errors import EXIT_FAIL, EXIT_PASS, UserError
from gates.policy import Policy
from gates.publishers import CI_CHOICES, select_publisher
from gates.reporters.json_report import build_report
from gates.reporters.terminal import render_terminal
from gates.runner import RunOptions, RunResult, run_policy

MSG_WAIVE_NEEDS_REASON = "--waive needs --reason saying why the check may fail"
MSG_WAIVE_UNKNOWN = "--waive {check}: no check has this id{hint}"
MSG_NO_BASELINE = ("no baseline: {uri} is not set for {name} yet, so baseline-relative checks are skipped "
                   "(--require-baseline makes them fail instead)")


@click.command()
@config_option
@click.option("--report-dir", default="model-gates-report", show_default=True, type=click.Path(file_okay=False),
              help="Where report.json, report.xml, report.md (and report.html) are written.")
@click.option("--no-register", is_flag=True, help="Never register the candidate, even when it passes.")
@click.option("--ci", type=click.Choice(CI_CHOICES), default="auto", show_default=True,
              help="Publish to this CI platform (auto: detect from the environment).")
@click.option("--require-baseline", is_flag=True,
              help="Fail baseline-relative checks when there is no baseline, instead of skipping them.")
@click.option("--waive", "waive", multiple=True, metavar="CHECK_ID", help="Waive this check's failure (repeatable).")
@click.option("--reason", help="Why the waived checks may fail (recorded in the report and audit log).")
@click.option("--engine", "engine", type=click.Choice(["local", "dask"]), default=None,
              help="Where the gates compute (over gates.yaml's engine.kind; default local).")
@click.option("--engine-address", metavar="URL", default=None,
              help="A running dask scheduler, e.g. tcp://10.0.0.5:8786 (implies --engine dask).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the verdict line.")
@click.option("--verbose", is_flag=True, help="List every skipped check (default: one line per gate and reason).")
def run(config: str, report_dir: str, no_register: bool, ci: str, require_baseline: bool,
        waive: tuple[str, ...], reason: str | None, engine: str | None, engine_address: str | None,
        quiet: bool, verbose: bool) -> None:
    """Run every gate of the policy on the candidate and decide."""
    if waive and not reason:
        raise UserError(MSG_WAIVE_NEEDS_REASON)
    policy = load_policy(config)
    os.environ.setdefault("MODEL_GATES_CONFIG", config)  # publishers point annotations at this file
    publisher = select_publisher(ci)
    options = RunOptions(require_baseline=require_baseline,
                         waivers=tuple(cli_waiver(c, reason or "") for c in waive),
                         engine=resolve_spec(policy.engine, engine, engine_address))
    warnings = publisher.started(policy.model.name) if publisher else []
    result = run_policy(policy, resolve_baseline=_resolver(policy), options=options,
                        progress=_progress if _interactive() else None)
    _check_cli_waivers(result)
    from gates.finish import finish_run

    report = build_report(result, ci=publisher.ci_info() if publisher else None)
    out = Path(report_dir)
    done = finish_run(policy, result, report, out, register=not no_register)
    if publisher is not None and done.written:
        warnings += publisher.publish(done.report, out)
    if not result.context.has_baseline and policy.model.baseline.registry_ref is not None:
        warnings.append(MSG_NO_BASELINE.format(uri=policy.model.baseline.uri, name=policy.model.name))
    _print(done.report, list(done.written), warnings, quiet, verbose)
    if done.error is not None:
        raise done.error
    raise click.exceptions.Exit(EXIT_PASS if result.verdict.passed or policy.is_shadow else EXIT_FAIL)


def _check_cli_waivers(result: RunResult) -> None:
    """A --waive that names no check is a typo: stop before anything is written or registered."""
    ids = sorted(c.id for c in result.verdict.checks)
    for w in result.unused_waivers:
        if w.source == CLI_SOURCE and w.check not in ids:
            close = difflib.get_close_matches(w.check, ids, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(MSG_WAIVE_UNKNOWN.format(check=w.check, hint=hint))


def _resolver(policy: Policy) -> Any:
    from gates.registrar import baseline_resolver

    return baseline_resolver(policy)


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


def _progress(gate: str, index: int, total: int) -> None:
    click.echo(f"\r[{index + 1}/{total}] {gate} gate…\033[K", err=True, nl=False)
    if index + 1 == total:
        click.echo("\r\033[K", err=True, nl=False)


def _print(report: Mapping[str, Any], written: list[Path], warnings: list[str], quiet: bool,
           verbose: bool = False) -> None:
    for w in warnings:
        click.echo(f"model-gates: warning: {w}", err=True)
    tty = sys.stdout.isatty()
    text = render_terminal(report, colour=tty, width=None if tty else 400,  # CI logs: never cut check ids
                           verbose=verbose)
    if quiet:
        text = text.rstrip("\n").splitlines()[-1] + "\n"
    click.echo(text, nl=False)
    reg = report.get("registration") or {}
    if reg.get("registered"):
        again = " (already registered: same model bytes)" if reg.get("already_registered") else ""
        click.echo(f"registered: {report['model']['name']} version {reg.get('version')}{again}")
    elif reg.get("reason") and not quiet:
        click.echo(f"not registered: {reg['reason']}")
    if not quiet and written:
        others = ", ".join(p.name for p in written[1:])
        click.echo(f"reports: {written[0]} (also {others})")


COMMANDS = [run]
