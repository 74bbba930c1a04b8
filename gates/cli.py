"""The ``model-gates`` command: parse arguments, call the library, render, map errors to exit codes.

Exit codes: 0 pass, 1 gates failed, 2 usage or config error, 3 internal or environment error.
"""
from __future__ import annotations

import sys
import traceback
from importlib import import_module

import click

from gates import __version__
from gates.errors import EXIT_INTERNAL, EXIT_USAGE, GateError

#: one module per subcommand group, each exporting COMMANDS (a list of click commands)
COMMAND_MODULES = ("run", "validate", "schema", "init", "report", "registry", "quickstart", "calibrate")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="model-gates")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Decide whether a candidate ML model version may be registered.

    Runs data, regression, fairness and robustness gates from gates.yaml, writes report.json,
    JUnit and Markdown reports, and registers the candidate only when every blocking check passes.
    """
    ctx.obj = {"debug": debug}


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = import_module(f"gates.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"gates.commands.{name}":
                continue
            raise
        for command in module.COMMANDS:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    _load_commands()
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    if debug:  # accepted anywhere on the line, as the error messages suggest ("re-run with --debug")
        args = ["--debug", *(a for a in args if a != "--debug")]
    try:
        code = cli.main(args=args, prog_name="model-gates", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.Abort:
        click.echo("model-gates: aborted", err=True)
        code = EXIT_INTERNAL
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE
    except GateError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"model-gates: error: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("model-gates: interrupted", err=True)
        code = 130
    except Exception as exc:  # noqa: BLE001 -- anything else is a bug: one line, traceback on demand
        if debug:
            traceback.print_exc()
        click.echo(f"model-gates: internal error: {type(exc).__name__}: {exc} (re-run with --debug "
                   "for the traceback)", err=True)
        code = EXIT_INTERNAL
    code = 0 if code is None else int(code)
    if argv is None:
        sys.exit(code)
    return code
