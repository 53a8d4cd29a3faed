"""``corpusforge build <dataset>``: run a dataset's pipeline into the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from corpusforge.cli.common import ConfigOpt, PipelineBars, SetOpt, WorkspaceOpt, console, out, resolve

app = typer.Typer(help="Build a dataset from its sources into the workspace (resumable).", no_args_is_help=True)


@app.command("sad")
def build_sad_cmd(
    input: Annotated[list[Path], typer.Option("--input", "-i", help="Dump files or folders (Reddit .jsonl/.gz/.zst), or a published SAD folder (sent.json + argument.json).")],
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes for partitioned steps.")] = None,
    labels: Annotated[str | None, typer.Option(help="Merged human labels to apply: a labels.parquet, or 'latest' (the newest `corpusforge annotate merge sad`).")] = None,
) -> None:
    """Build SAD dialogues from r/ChangeMyView dumps or the published release."""
    from corpusforge.ops import sad

    overrides = list(set_ or []) + ([f"executor.workers={workers}"] if workers else [])
    settings, ws = resolve(config, workspace, overrides)
    with PipelineBars(console) as progress:
        result = sad.build(input, settings, progress, labels=labels)
    print_build_summary(result, ws.stages("sad"))


def print_build_summary(result, stages: Path) -> None:
    table = Table(title=f"SAD build ({result.kind} source)", show_lines=False)
    for col in ("step", "status", "rows out", "dropped"):
        table.add_column(col)
    for name, o in result.steps.items():
        rows = ", ".join(f"{k} {v:,}" for k, v in o.stats["rows_out"].items())
        dropped = ", ".join(f"{k} {v:,}" for k, v in o.stats["dropped"].items()) or "-"
        table.add_row(name, "up to date" if o.skipped else f"built in {o.stats['seconds']:.1f}s", rows, dropped)
    out.print(table)
    bad = {k: v for d in result.dropped().values() for k, v in d.items() if k in BAD_INPUT_REASONS}
    if bad:
        console.print(
            f"[yellow]warning:[/yellow] {sum(bad.values()):,} bad input records quarantined "
            f"({', '.join(f'{k} {v:,}' for k, v in sorted(bad.items()))}); file, line and reason of each are in "
            f"{stages}/<step>/_rejects/"
        )
    out.print(f"Candidate ready in {stages}. Next: corpusforge validate sad")


BAD_INPUT_REASONS = {
    "malformed_json", "not_an_object", "wrong_type", "missing_field", "bad_id", "bad_reference",
    "ambiguous_kind", "unknown_kind", "truncated_file", "duplicate_id", "submission_missing",
    "parent_missing", "parent_mismatch", "malformed_example", "attitude_mismatch", "unknown_utterance",
    "bad_attitude", "bad_strategies", "inconsistent_history", "conflicting_example",
}
