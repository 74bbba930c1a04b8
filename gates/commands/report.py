"""``model-gates report``: re-render a report.json as Markdown, JUnit, HTML or text."""
from __future__ import annotations

from pathlib import Path

import click

from gates.reporters import renderer
from gates.reporters.json_report import load_report


@click.command()
@click.argument("report_file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "junit", "html", "json", "text"]), default="md",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
def report(report_file: str, fmt: str, as_json: bool, output: str | None) -> None:
    """Render REPORT_FILE (a report.json) in another format; works offline from the file alone."""
    data = load_report(Path(report_file))
    text = renderer("json" if as_json else fmt)(data)
    if output:
        target = Path(output)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    else:
        click.echo(text, nl=False)


COMMANDS = [report]
