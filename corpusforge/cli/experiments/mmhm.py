"""``corpusforge experiment mmhm``: pick each model's guidance and steps by the MinMax Harmonic Mean."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from corpusforge.cli.common import out

NAME = "mmhm"
SUMMARY = "MinMax Harmonic Mean of FID, IS, CLIP and PickScore over a sweep; best (guidance, steps) per model."


def command(
    results: Annotated[Path, typer.Option("--results", help="Results CSV: model, guidance, steps, FID, IS, CLIP, PickScore.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder to write (mmhm.csv, metrics.json, plots, report.md).")],
    bounds: Annotated[Optional[Path], typer.Option("--bounds", help="Reuse the bounds.json of another evaluation set (u may leave [0, 1]).")] = None,
    save_bounds: Annotated[bool, typer.Option("--save-bounds", help="Write the bounds used to <out>/bounds.json.")] = False,
) -> None:
    """Score every row of a text-to-image sweep with MMHM (metrics min-max normalised over all rows, FID
    inverted) and choose each model's hyperparameters by the highest score, next to the best by FID."""
    from experiments.mmhm import run_mmhm

    metrics = run_mmhm(results, out_dir, bounds_file=bounds, save_bounds_file=save_bounds)
    for model in metrics["models"]:
        a, b = metrics["best_by_mmhm"][model], metrics["best_by_fid"][model]
        out.print(f"{model}: MMHM picks guidance {a['guidance']:g}, {a['steps']} steps (MMHM {a['mmhm']:.4f}); "
                  f"FID alone picks guidance {b['guidance']:g}, {b['steps']} steps (FID {b['FID']:.4g})",
                  soft_wrap=True, highlight=False)
    out.print(f"Wrote {Path(out_dir) / 'mmhm.csv'} and the report at {Path(out_dir) / 'report.md'}", soft_wrap=True, highlight=False)
