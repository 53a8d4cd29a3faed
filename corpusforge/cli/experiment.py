"""``corpusforge experiment``: studies that reproduce results on released datasets."""

from __future__ import annotations

import typer

from corpusforge.cli.common import out

app = typer.Typer(help="Run bundled experiments on releases.", no_args_is_help=True)

EXPERIMENTS: dict[str, str] = {}  # name -> one-line description; filled as studies land


@app.command("list")
def list_cmd() -> None:
    """List the bundled experiments."""
    if not EXPERIMENTS:
        out.print("No experiments are bundled yet.")
        return
    for name, text in sorted(EXPERIMENTS.items()):
        out.print(f"{name:<24} {text}")
