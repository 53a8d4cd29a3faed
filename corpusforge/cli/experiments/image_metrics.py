"""``corpusforge experiment image-metrics``: FID, IS, CLIP score and PickScore from image folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from corpusforge.cli.common import out

NAME = "image-metrics"
SUMMARY = "FID, IS, CLIP score and PickScore per (model, guidance, steps) from image folders: the MMHM results CSV."


def command(
    generated: Annotated[Path, typer.Option("--generated", help="Folder <generated>/<model>/g<guidance>_s<steps>/<class>/*.png.")],
    reference: Annotated[Path, typer.Option("--reference", help="Real images, <reference>/<class>/*.png (FID's reference).")],
    inception: Annotated[Path, typer.Option("--inception", help="TorchScript inception-2015-12-05.pt (local file).")],
    clip: Annotated[Path, typer.Option("--clip", help="Local CLIPModel folder with its processor files.")],
    pickscore: Annotated[Path, typer.Option("--pickscore", help="Local PickScore folder (CLIPModel weights and processor files).")],
    results: Annotated[Path, typer.Option("--results", help="CSV to write (the input of `corpusforge experiment mmhm`).")],
    class_info: Annotated[Optional[Path], typer.Option("--class-info", help="class_info.json mapping wnid / class id folders to names.")] = None,
    is_splits: Annotated[int, typer.Option("--is-splits", help="Inception Score splits.")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Compute the four metrics of every setting at 256x256 (models from local files only) and write
    the results CSV that `corpusforge experiment mmhm --results` reads."""
    from experiments.image_metrics import results_from_folders
    from pipelines.core.fileio import atomic_write_bytes

    table = results_from_folders(generated, reference, inception=inception, clip=clip, pickscore=pickscore,
                                 class_info=class_info, is_splits=is_splits, batch_size=batch_size, device=device)
    atomic_write_bytes(results, table.write_csv().encode("utf-8"))
    out.print(f"Wrote {table.height} settings to {results}", soft_wrap=True, highlight=False)
