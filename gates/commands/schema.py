"""``model-gates schema``: print the JSON Schema of gates.yaml (or of report.json)."""
from __future__ import annotations

import json

import click

from gates.config import policy_schema
from gates.reporters.json_report import report_schema


@click.command()
@click.option("--report", "which", flag_value="report", help="Print the report.json schema instead.")
@click.option("--policy", "which", flag_value="policy", default=True, hidden=True)
def schema(which: str) -> None:
    """Print the JSON Schema of gates.yaml, for editors and other tools."""
    data = report_schema() if which == "report" else policy_schema()
    click.echo(json.dumps(data, indent=2))


COMMANDS = [schema]
