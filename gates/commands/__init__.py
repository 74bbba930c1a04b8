"""One module per ``model-gates`` subcommand; each exports ``COMMANDS``."""
from __future__ import annotations

import click

config_option = click.option(
    "-c", "--config", "config", default="gates.yaml", show_default=True,
    type=click.Path(dir_okay=False), help="The policy file.",
)
