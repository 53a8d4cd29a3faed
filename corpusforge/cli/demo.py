"""``corpusforge demo``: the whole SAD path on the bundled sample, in one command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from corpusforge.cli import relaionet_demo
from corpusforge.cli.common import PipelineBars, console, out

SAMPLE = Path(__file__).resolve().parents[2] / "pipelines" / "sad" / "sample" / "reddit"
DEMO_VERSION = "0.1.0"


DEMO_ANNOTATORS = ("sim-annotator-1", "sim-annotator-2", "sim-annotator-3")
LABELLED_VERSION = "0.2.0"


def demo(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace for the demo.")] = Path("workspace"),
    backend: Annotated[str, typer.Option("--backend", help="Annotation server the demo starts and labels in: label_studio or argilla.")] = "label_studio",
) -> None:
    """SAD and reLAIONet end to end on the bundled samples. SAD: build, validate, release 0.1.0; label in
    a local Label Studio (or Argilla, with --backend argilla; three simulated annotators), agreement, merge,
    adjudication, classifier; rebuild with the labels, release 0.2.0. reLAIONet: build from sample images and
    captions, proofread the images in the same server (two simulated proofreaders), rebuild with their
    verdicts, validate, release, load."""
    from corpusforge.cli.annotate import BACKENDS

    if backend not in BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}; available: label_studio, argilla")
    backend = BACKENDS[backend]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # our own progress bars and summaries say enough
    from corpusforge.config import load_settings
    from corpusforge.workspace import Workspace

    overrides = [f"annotation.sad.annotators={list(DEMO_ANNOTATORS)}", "annotation.sad.sample_size=1000", "annotation.sad.overlap=3",
                 f'annotation.backend="{backend}"']
    overrides += relaionet_demo.overrides()
    settings = load_settings(None, overrides, workspace=workspace)
    ws = Workspace.at(settings.workspace.path)

    out.rule("1/13 build SAD from the bundled CMV sample")
    _build(settings, ws, labels=None)
    release_dir = _validate_and_release(settings, ws, DEMO_VERSION, "2/13", "3/13")
    _load(release_dir, "4/13")

    server = _start_argilla(ws, "5/13") if backend == "argilla" else _start_label_studio(settings, ws, "5/13")
    try:
        agreement_md = _label(settings, "6/13")
        _train(settings, "7/13")
        relaionet_demo.build(settings, ws, "8/13", corrections=None)
        relaionet_demo.proofread(settings, "9/13")
    finally:
        server.stop()
    out.rule("10/13 rebuild SAD with the human labels")
    _build(settings, ws, labels="latest")
    labelled_dir = _validate_and_release(settings, ws, LABELLED_VERSION, "10/13", "10/13")
    _load(labelled_dir, "11/13")
    _print_human_labels(labelled_dir)
    relaionet_demo.build(settings, ws, "12/13", corrections="latest")
    relaionet_dir = relaionet_demo.release(settings, ws, "12/13")
    relaionet_demo.load(relaionet_dir, "13/13")
    out.print(f"\nAgreement report: {agreement_md}", markup=False)
    serve, data = (("--backend argilla ", "argilla") if backend == "argilla" else ("", "label-studio"))
    out.print(f"Open the labelling UI: corpusforge annotate serve {serve}--workspace {workspace}  (then the URL and login it "
              f"prints; data kept in {ws.annotation / data})", markup=False)
    out.print(f"\nSAD release: {release_dir}\nSAD release with human labels: {labelled_dir}\nreLAIONet release: {relaionet_dir}", markup=False)


def _build(settings, ws, labels) -> None:
    from corpusforge.cli.build import print_build_summary
    from corpusforge.ops import sad

    with PipelineBars(console) as progress:
        result = sad.build([SAMPLE], settings, progress, labels=labels)
    print_build_summary(result, ws.stages("sad"))


def _validate_and_release(settings, ws, version: str, step_validate: str, step_release: str) -> Path:
    from corpusforge.ops import sad
    from releases import verify_release

    out.rule(f"{step_validate} validate with Great Expectations")
    report = sad.validate(settings)
    out.print(report.render_text(show_passed=False), highlight=False, markup=False, soft_wrap=True)
    if not report.success:
        raise typer.Exit(1)
    out.rule(f"{step_release} release {version}")
    release_dir = ws.release_dir("sad", version)
    if release_dir.exists():
        verified = verify_release(release_dir)
        out.print(f"{release_dir} was published by an earlier demo run (versions are immutable); verify: "
                  f"{'OK' if verified.ok else 'FAILED'}")
        if not verified.ok:
            raise typer.Exit(1)
        return release_dir
    outcome = sad.release(settings, version=version)
    out.print(f"Released at {outcome.path}")
    return outcome.path


def _load(release_dir: Path, step: str) -> None:
    from releases import load_release

    out.rule(f"{step} load with datasets.load_dataset")
    for config in ("dialogues", "utterances"):
        ds = load_release(release_dir, config)
        sizes = ", ".join(f"{split} {len(part):,}" for split, part in ds.items())
        out.print(f"{config}: {sizes}")
    dialogues = load_release(release_dir, "dialogues")
    first_split = next(iter(dialogues))
    features = dialogues[first_split].features
    row = dialogues[first_split][0]
    out.print(f"features: target_stance={features['target_stance']}, target_strategies={features['target_strategies']}")
    out.print(f"example {row['example_id']} ({row['n_turns']} turns) on topic: {row['topic']}")
    for turn in row["history"]:
        out.print(f"  [{features['target_stance'].int2str(turn['stance'])}] {turn['text'][:100]}", markup=False)
    out.print(f"  -> target [{features['target_stance'].int2str(row['target_stance'])}] {row['target_text'][:100]}", markup=False)


def _start_label_studio(settings, ws, step: str):
    from annotation.backends.labelstudio.server import LocalLabelStudio, ensure_environment, ensure_template, find_running

    out.rule(f"{step} start a local Label Studio (SQLite, in the workspace)")
    data_dir = ws.annotation / "label-studio"
    if find_running(data_dir):
        raise typer.BadParameter(f"a Label Studio server already runs for {ws.root}; stop it (Ctrl-C where `annotate serve` runs) and rerun the demo")

    def note(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True)

    ensure_environment(progress=note)
    ensure_template(progress=note)
    from corpusforge.ops.relaionet_proofread import document_root

    server = LocalLabelStudio(data_dir, port=0, document_root=document_root(settings)).start()  # serves the images to proofread
    out.print(f"Label Studio at {server.url}", markup=False)
    return server


def _start_argilla(ws, step: str):
    from annotation.backends.argilla.server import LocalArgilla, ensure_environment, ensure_template, find_running

    out.rule(f"{step} start a local Argilla (SQLite, Redis and a worker, in the workspace)")
    data_dir = ws.annotation / "argilla"
    if find_running(data_dir):
        raise typer.BadParameter(f"an Argilla server already runs for {ws.root}; stop it (Ctrl-C where "
                                 "`annotate serve --backend argilla` runs) and rerun the demo")

    def note(message: str) -> None:
        console.print(message, highlight=False, soft_wrap=True)

    ensure_environment(progress=note)
    ensure_template(progress=note)
    server = LocalArgilla(data_dir, port=0).start()  # images travel inside the records: no document root
    out.print(f"Argilla at {server.url}", markup=False)
    return server


def _label(settings, step: str) -> Path:
    from corpusforge.cli.annotate import _bar
    from corpusforge.ops import annotate as ops

    out.rule(f"{step} label: push, three simulated annotators, pull, agreement, merge, adjudication")
    with _bar("pushing tasks") as bar:
        pushed, _ = ops.push(settings, progress=bar)
    out.print(f"pushed: {pushed.created} tasks created, {pushed.already} already there ({pushed.project_url})", markup=False)
    with _bar("simulated annotators") as bar:
        sim = ops.simulate(settings, list(DEMO_ANNOTATORS), noise=0.05, seed=0, progress=bar)
    out.print(f"simulated: {sim.submitted} annotations submitted ({sim.already} already there) by {', '.join(DEMO_ANNOTATORS)}", markup=False)
    pulled, paths = ops.pull(settings)
    out.print(f"pulled: {pulled.judgments} judgments into {pulled.snapshot}", markup=False)
    report, _ = ops.agreement(settings)
    out.print(report.to_markdown(), markup=False, highlight=False)
    merged = ops.merge(settings)
    out.print(f"merged: {merged.counts}", markup=False)
    if merged.queue:
        ops.adjudication_push(settings)
        adj = ops.simulate(settings, ["sim-adjudicator"], noise=0.0, seed=0, adjudication=True)
        ops.adjudication_pull(settings)
        merged = ops.merge(settings)
        out.print(f"adjudication: a simulated adjudicator decided {adj.submitted} queued item(s); merged: {merged.counts}", markup=False)
    return paths["markdown"]


def _train(settings, step: str) -> None:
    from corpusforge.ops import annotate as ops

    out.rule(f"{step} train the strategy classifier on the merged labels")
    outcome = ops.train(settings)
    out.print(f"{outcome.model_name}: trained on {outcome.n_train} items, {outcome.n_heldout} held out "
              "(on a sample this small the figures only show that the loop works)", markup=False)
    out.print(outcome.table_markdown, markup=False, highlight=False)


def _print_human_labels(release_dir: Path) -> None:
    import json

    human = json.loads((release_dir / "manifest.json").read_text())["human_labels"]
    agreement = human.get("agreement") or {}
    def fmt(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    out.print(f"{release_dir.name}: {human['utterances']} of {human['of_utterances']} utterances human-labelled "
              f"({', '.join(f'{k} {v}' for k, v in human['by_source'].items())}); agreement: strategies alpha (MASI) "
              f"{fmt(agreement.get('strategies_alpha_masi'))}, stance alpha {fmt(agreement.get('stance_alpha'))}", markup=False)
