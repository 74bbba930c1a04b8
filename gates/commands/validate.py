"""``model-gates validate``: check a policy file and exit 0 (valid) or 2."""
from __future__ import annotations

import click

from gates.commands import config_option
from gates.config import load_policy


@click.command()
@config_option
def validate(config: str) -> None:
    """Check gates.yaml (schema, files it names, thresholds) without running anything."""
    policy = load_policy(config)
    gates = ", ".join(policy.gates) or "no gates"
    click.echo(f"{config}: valid ({policy.model.name}, {policy.model.task}; gates: {gates}; mode {policy.mode})")


COMMANDS = [validate]
