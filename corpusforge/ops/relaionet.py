"""reLAIONet end to end: build, validate, release, export. The command line calls these.

As for the other datasets: the pipeline builds a candidate in ``<workspace>/relaionet/stages``;
validation checks the images a release would hold (proofread, accepted or relabelled) and stores
its verdict with the candidate's fingerprint and the validation settings; a release is written
only when that verdict passed (it validates first when there is none). Images that nobody has
proofread yet are never released: with none accepted the release is refused, saying how to
proofread (``corpusforge annotate push relaionet``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import polars as pl

from corpusforge.config import Settings
from corpusforge.ops.sad import code_revision
from corpusforge.ops.provenance import portable_file, portable_settings
from corpusforge.ops.verdicts import ReleaseOutcome, ReleaseRefused, find_verdict, release_verdict, validate_candidate
from corpusforge.workspace import Workspace
from pipelines.core.errors import CorpusforgeError
from pipelines.core.executor import NO_PROGRESS, Progress, make_executor
from pipelines.core.fileio import atomic_write_json, read_json, sha256_json
from pipelines.relaionet.pipeline import BuildResult, build_relaionet, candidate_fingerprint, read_images
from releases import CardText, ReleaseSpec, next_version, read_manifest, write_release
from releases.errors import ReleaseNotFoundError
from releases.versions import validate_version
from schemas.relaionet import RELEASED_STATUS, images_table

DATASET = "relaionet"
BUILD_RECORD = "_build.json"
CONFIG = "default"


# --------------------------------------------------------------------------- build


def corrections_file(settings: Settings, value: str | None) -> Path | None:
    """``--corrections``: None or "none" -> none; "latest" -> the last proofreading pull's corrections
    (an error when there is none); else the path of a corrections.parquet."""
    if value is None or value == "none":
        return None
    if value == "latest":
        from corpusforge.ops.relaionet_proofread import latest_corrections

        found = latest_corrections(settings)
        if found is None:
            raise CorpusforgeError(
                "no proofreading corrections in this workspace yet: run `corpusforge annotate pull relaionet` "
                "(or give --corrections FILE, or leave --corrections out)"
            )
        return found
    return Path(value).expanduser()


def build(inputs: Sequence[Path], settings: Settings, progress: Progress = NO_PROGRESS, corrections: Path | None = None) -> BuildResult:
    """Build the candidate from ``inputs`` into the workspace; ``corrections``: proofreading to apply."""
    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    executor = make_executor(settings.executor.kind, settings.executor.workers, settings.executor.ray_address)
    result = build_relaionet(inputs, settings.relaionet, stages, executor, progress, hash_file=ws.hash_file, corrections=corrections)
    unit = lambda u: {"path": u.path, "sha256": u.sha256, "bytes": u.size}  # noqa: E731
    atomic_write_json(stages / BUILD_RECORD, {
        "candidate_fingerprint": candidate_fingerprint(stages),
        "inputs": [unit(u) for u in result.inputs.units],
        "class_file": unit(result.inputs.class_file),
        "reference": unit(result.inputs.reference) if result.inputs.reference else None,
        "corrections": unit(result.inputs.corrections) if result.inputs.corrections else None,
        "encoder": result.inputs.encoder_version,
        "dropped": result.dropped(),
        "settings": portable_settings(settings.relaionet),  # paths by name: they go into the manifest
    })
    return result


# --------------------------------------------------------------------------- validate


def validation_key(settings: Settings) -> str:
    r = settings.relaionet
    return sha256_json({"validation": r.validation.model_dump(mode="json"), "images": r.images.model_dump(mode="json"),
                        "dedupe_threshold": r.dedupe.threshold, "case_sensitive": r.captions.case_sensitive,
                        "class_file": str(r.class_file) if r.class_file else None})


def validate(settings: Settings, run_id: str | None = None, data_docs: bool = True):
    """Validate what a release would hold (Great Expectations); the verdict is stored with the fingerprint."""
    from validation.relaionet import validate_relaionet  # GX is slow to import: only when validating

    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    images = read_images(stages)
    return validate_candidate(ws.validation(DATASET), candidate_fingerprint(stages),
                              lambda out_dir: validate_relaionet(images, settings.relaionet, out_dir, data_docs=data_docs),
                              run_id=run_id, validation_key=validation_key(settings))


def latest_verdict(settings: Settings) -> dict[str, Any] | None:
    ws = Workspace.at(settings.workspace.path)
    return find_verdict(ws.validation(DATASET), candidate_fingerprint(ws.stages(DATASET)), validation_key=validation_key(settings))


# --------------------------------------------------------------------------- release


def _corrections_summary(record: dict[str, Any]) -> dict[str, Any] | None:
    corrections = record.get("corrections")
    if not corrections:
        return None
    summary = Path(corrections["path"]).with_name("summary.json")
    return read_json(summary) if summary.exists() else None


def release(settings: Settings, version: str | None = None, bump: str | None = None) -> ReleaseOutcome:
    from pipelines.relaionet.card import LICENSE_NOTE, SUMMARY, TITLE, card_body, release_statistics

    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    verdict, validated_now, failed = release_verdict(
        version, bump, candidate_fingerprint(stages),
        f"{stages}: no completed reLAIONet build; run `corpusforge build relaionet --input ...` first",
        lambda: latest_verdict(settings), lambda: validate(settings),
    )
    if not verdict["success"]:
        raise ReleaseRefused(
            f"validation of the current reLAIONet candidate failed ({', '.join(failed) or 'see report'}); report: {verdict['dir']}. "
            "Fix the input or the proofreading and build again."
        )
    images = read_images(stages)
    released = images.filter(pl.col("proofread_status").is_in(list(RELEASED_STATUS)))
    if released.height == 0:
        pending = images.filter(pl.col("proofread_status") == "pending").height
        raise ReleaseRefused(
            f"no proofread image is accepted yet ({images.height:,} candidates, {pending:,} pending): proofread them "
            "(`corpusforge annotate push relaionet`, label, `corpusforge annotate pull relaionet`), then "
            "`corpusforge build relaionet --corrections latest ...` and release again"
        )
    record = read_json(stages / BUILD_RECORD)
    version = version or next_version(ws.releases, DATASET, bump or "patch")
    table = images_table()
    stats = release_statistics(images, _corrections_summary(record))
    spec = ReleaseSpec(
        dataset=DATASET,
        version=version,
        max_rows_per_file=settings.release.max_rows_per_file,
        row_group_size=settings.release.row_group_size,
        configs={CONFIG: table},
        tables={CONFIG: released},
        split_column=None,
        card=CardText(
            title=TITLE, summary=SUMMARY, body_markdown=card_body(settings.relaionet, stats),
            license="other", license_note=LICENSE_NOTE,
            metadata={"task_categories": ["image-classification"], "language": ["en"]},
        ),
        manifest_extra={
            # inputs by name and content, not by path: the release must not depend on where they live
            "inputs": [portable_file(u) for u in record["inputs"]], "class_file": portable_file(record["class_file"]),
            "reference": portable_file(record["reference"]), "corrections": portable_file(record["corrections"]), "encoder": record["encoder"], "config": record["settings"],
            "code_revision": code_revision(), "candidate_fingerprint": verdict["candidate_fingerprint"],
            "statistics": stats,
            # no validation run id: a wall-clock stamp of this workspace (see ops/sad.py)
            "validation": {"success": verdict["success"],
                           "checks": len(verdict["summary"].get("checks", [])), "failed": failed},
        },
    )
    path = write_release(spec, ws.releases)
    manifest = read_manifest(path)
    return ReleaseOutcome(path, version, validated_now, {n: c["splits"] for n, c in manifest["configs"].items()}, {"statistics": stats})


# --------------------------------------------------------------------------- export


def export(settings: Settings, out: Path, version: str | None = None):
    """One folder per class (WordNet id) of a release (``version``) or of the current candidate's
    released rows; returns (the export result, what was exported)."""
    from pipelines.relaionet.export import export_class_folders

    ws = Workspace.at(settings.workspace.path)
    if version is not None:
        path = ws.release_dir(DATASET, validate_version(version))
        if not (path / "manifest.json").exists():
            raise ReleaseNotFoundError(f"{path}: no reLAIONet release {version}; `corpusforge release relaionet --version {version}` makes one")
        manifest = read_manifest(path)
        rows = pl.read_parquet([path / f for f in manifest["configs"][CONFIG]["files"]])
        origin = f"release {version}"
    else:
        stages = ws.stages(DATASET)
        rows = read_images(stages, statuses=RELEASED_STATUS)
        origin = f"candidate {candidate_fingerprint(stages)[:12]}"
    return export_class_folders(rows, out), origin
