"""``corpusforge demo``: the whole SAD path on the bundled sample, in one command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from corpusforge.cli.common import PipelineBars, console, out

SAMPLE = Path(__file__).resolve().parents[2] / "pipelines" / "sad" / "sample" / "reddit"
DEMO_VERSION = "0.1.0"


def demo(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace for the demo.")] = Path("workspace"),
) -> None:
    """Build SAD from the bundled sample, validate it, release 0.1.0 and load it with datasets."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # our own progress bars and summaries say enough
    from corpusforge.cli.build import print_build_summary
    from corpusforge.config import load_settings
    from corpusforge.ops import sad
    from corpusforge.workspace import Workspace
    from releases import load_release, verify_release

    settings = load_settings(None, [], workspace=workspace)
    ws = Workspace.at(settings.workspace.path)
    out.rule("1/4 build SAD from the bundled CMV sample")
    with PipelineBars(console) as progress:
        result = sad.build([SAMPLE], settings, progress)
    print_build_summary(result, ws.stages("sad"))

    out.rule("2/4 validate with Great Expectations")
    report = sad.validate(settings)
    out.print(report.render_text(show_passed=False), highlight=False, markup=False, soft_wrap=True)
    if not report.success:
        raise typer.Exit(1)

    out.rule(f"3/4 release {DEMO_VERSION}")
    release_dir = ws.release_dir("sad", DEMO_VERSION)
    if release_dir.exists():
        verified = verify_release(release_dir)
        out.print(f"{release_dir} was published by an earlier demo run (versions are immutable); verify: "
                  f"{'OK' if verified.ok else 'FAILED'}")
        if not verified.ok:
            raise typer.Exit(1)
    else:
        outcome = sad.release(settings, version=DEMO_VERSION)
        release_dir = outcome.path
        out.print(f"Released at {release_dir}")

    out.rule("4/4 load with datasets.load_dataset")
    for config in ("dialogues", "utterances"):
        ds = load_release(release_dir, config)
        sizes = ", ".join(f"{split} {len(part):,}" for split, part in ds.items())
        out.print(f"{config}: {sizes}")
    dialogues = load_release(release_dir, "dialogues")
    first_split = next(iter(dialogues))
    features = dialogues[first_split].features
    row = dialogues[first_split][0]
    out.print(f"features: target_stance={features['target_stance']}, target_suggested_strategies={features['target_suggested_strategies']}")
    out.print(f"example {row['example_id']} ({row['n_turns']} turns) on topic: {row['topic']}")
    for turn in row["history"]:
        out.print(f"  [{features['target_stance'].int2str(turn['stance'])}] {turn['text'][:100]}", markup=False)
    out.print(f"  -> target [{features['target_stance'].int2str(row['target_stance'])}] {row['target_text'][:100]}", markup=False)
    out.print(f"\nRelease: {release_dir}")
