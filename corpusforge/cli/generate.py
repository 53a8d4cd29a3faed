"""``corpusforge generate``: seeded synthetic inputs for tests, demos and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from corpusforge.cli.common import console, out

app = typer.Typer(help="Generate realistic synthetic source data (seeded, reproducible).", no_args_is_help=True)


@app.command("sad")
def generate_sad_cmd(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the dump files into.")],
    nodes: Annotated[int, typer.Option(help="Submissions + comments to generate.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
    compression: Annotated[str, typer.Option(help="zst, gz or none.")] = "zst",
) -> None:
    """A Pushshift-style r/ChangeMyView dump (submissions + comments files)."""
    from pipelines.sad.generator import generate_dump

    with console.status(f"generating {nodes:,} nodes ..."):
        paths = generate_dump(out_dir, nodes, seed=seed, compression=compression)
    for p in paths:
        out.print(f"{p}  {p.stat().st_size:,} bytes")
