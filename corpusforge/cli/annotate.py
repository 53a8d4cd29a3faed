"""``corpusforge annotate``: what annotators will see; the annotation backends build on this."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from corpusforge.cli.common import ConfigOpt, WorkspaceOpt, out, resolve

app = typer.Typer(help="Annotation: suggestions to review and (with a backend) labelling in the browser.", no_args_is_help=True)


@app.command("suggestions")
def suggestions_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name (sad).")],
    examples: Annotated[int, typer.Option(help="Example utterances shown per strategy.")] = 2,
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Summarise the machine suggestions of the current build (not human labels)."""
    import polars as pl

    from pipelines.sad.pipeline import read_candidate
    from schemas.sad import STRATEGIES

    if dataset != "sad":
        raise typer.BadParameter(f"no suggestions for {dataset!r}; available: sad")
    settings, ws = resolve(config, workspace, None)
    utt = read_candidate(ws.stages("sad"))["utterances"]
    exploded = utt.select("utterance_id", "text", "suggestion_source", pl.col("suggested_strategies").alias("s")).explode("s")
    table = Table(title=f"Suggested strategies over {utt.height:,} utterances (source: {utt['suggestion_source'][0] if utt.height else '-'})")
    table.add_column("strategy")
    table.add_column("utterances", justify="right")
    table.add_column("share", justify="right")
    table.add_column("examples")
    for i, name in enumerate(STRATEGIES):
        rows = exploded.filter(pl.col("s") == i)
        sample = rows.head(examples)["text"].to_list()
        table.add_row(name, f"{rows.height:,}", f"{rows.height / max(1, utt.height):.0%}", "\n".join(t[:90] for t in sample))
    out.print(table)
