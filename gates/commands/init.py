"""``model-gates init``: scaffold a commented gates.yaml (and CI files) in a folder."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from gates.errors import UserError

MSG_EXISTS = "{path} already exists (use --force to overwrite)"


@click.command()
@click.option("-d", "--dir", "folder", default=".", type=click.Path(file_okay=False), show_default=True,
              help="Folder to write into.")
@click.option("--ci", type=click.Choice(["none", "github", "gitlab"]), default="none", show_default=True,
              help="Also write the starter CI file for this platform.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(folder: str, ci: str, force: bool) -> None:
    """Write a commented starter gates.yaml (and a CI workflow with --ci)."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    policy = target / "gates.yaml"
    if policy.exists() and not force:
        raise UserError(MSG_EXISTS.format(path=policy))
    written = []
    if ci != "none":  # CI files first: a conflict there must stop init before gates.yaml is written
        from gates.ci_templates import NEXT_STEPS, write_ci_files

        written += write_ci_files(ci, target, force=force)
    policy.write_text(starter_policy(), encoding="utf-8")
    for path in [policy, *written]:
        click.echo(f"wrote {path}")
    click.echo("next: edit gates.yaml (model, data, thresholds), then `model-gates validate` and `model-gates run`")
    if ci != "none":
        click.echo(f"next: {NEXT_STEPS[ci]}")
    if ci == "gitlab" and target / ".gitlab-ci.yml" not in written:
        click.echo(NEXT_STEPS["gitlab-include"])


def starter_policy() -> str:
    """Return the commented starter gates.yaml shipped with the package."""
    return resources.files("gates").joinpath("templates", "gates.yaml").read_text(encoding="utf-8")


COMMANDS = [init]
