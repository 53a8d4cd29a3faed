"""Fact frequencies end to end: build, validate, release, export. The command line calls these.

As for the other datasets: the pipeline builds a candidate in the workspace
(``<workspace>/facts/stages``), validation stores its verdict with the candidate's fingerprint
and the validation settings, and a release is written only when that verdict passed (it
validates first when there is none).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from corpusforge.config import Settings
from corpusforge.ops.sad import code_revision
from corpusforge.ops.provenance import portable_file, portable_settings
from corpusforge.ops.verdicts import ReleaseOutcome, ReleaseRefused, find_verdict, release_verdict, validate_candidate
from corpusforge.workspace import Workspace
from pipelines.core.executor import NO_PROGRESS, Progress, make_executor
from pipelines.core.fileio import atomic_write_json, read_json, sha256_json
from pipelines.core.stage import PROGRESS
from pipelines.facts.card import LICENSE_NOTE, PLOT_FILE, SUMMARY, TITLE, card_body
from pipelines.facts.export import export_paper_json
from pipelines.facts.pipeline import BuildResult, build_facts, candidate_fingerprint, read_candidate
from pipelines.facts.summary import language_order, language_summary, plot_summary
from releases import CardText, ReleaseSpec, next_version, read_manifest, write_release
from releases.errors import ReleaseNotFoundError
from releases.versions import validate_version
from schemas.facts import RELEASE_CHECKPOINTS, RELEASE_COUNTS

DATASET = "facts"
BUILD_RECORD = "_build.json"
ALL_CONFIG = "all"
CHECKPOINTS_CONFIG = "checkpoints"


def build(facts: Path, corpus: Sequence[Path], settings: Settings, progress: Progress = NO_PROGRESS) -> BuildResult:
    """Count ``facts`` over the ``corpus`` shards into the workspace; records the inputs."""
    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    executor = make_executor(settings.executor.kind, settings.executor.workers, settings.executor.ray_address)
    result = build_facts(facts, corpus, settings.facts, stages, executor, progress, hash_file=ws.hash_file)
    count = result.steps["count"]
    per_shard = []
    for i, u in enumerate(result.inputs.shards):  # each shard's task record: its documents
        progress_record = count.path / PROGRESS / f"u{i:05d}.json"
        docs = read_json(progress_record)["counters"].get("documents", 0) if progress_record.exists() else 0
        per_shard.append({"name": Path(u.path).name, "path": u.path, "sha256": u.sha256, "bytes": u.size, "documents": docs})
    atomic_write_json(
        stages / BUILD_RECORD,
        {
            "candidate_fingerprint": candidate_fingerprint(stages),
            "facts": {"path": result.inputs.facts.path, "sha256": result.inputs.facts.sha256, "bytes": result.inputs.facts.size},
            "corpus": {
                "shards": per_shard,
                "documents": count.stats["counters"].get("documents", 0),
                "bytes": result.inputs.corpus_bytes,
                "skipped": count.stats["dropped"],
            },
            "executor": settings.executor.kind,
            "settings": portable_settings(settings.facts),  # paths by name: they go into the manifest
        },
    )
    return result


# --------------------------------------------------------------------------- validate


def validation_key(settings: Settings) -> str:
    """What a verdict depends on besides the candidate: the validation rules and checkpoints."""
    f = settings.facts
    return sha256_json({"validation": f.validation.model_dump(mode="json"), "checkpoints": list(f.checkpoints)})


def validate(settings: Settings, run_id: str | None = None, data_docs: bool = True):
    """Validate the current candidate (Great Expectations); the verdict is stored with its fingerprint."""
    from validation.facts import validate_facts  # GX is slow to import: only when validating

    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    tables = read_candidate(stages)
    return validate_candidate(ws.validation(DATASET), candidate_fingerprint(stages),
                              lambda out_dir: validate_facts(tables, settings.facts, out_dir, data_docs=data_docs),
                              run_id=run_id, validation_key=validation_key(settings))


def latest_verdict(settings: Settings) -> dict[str, Any] | None:
    ws = Workspace.at(settings.workspace.path)
    return find_verdict(ws.validation(DATASET), candidate_fingerprint(ws.stages(DATASET)), validation_key=validation_key(settings))


# --------------------------------------------------------------------------- release


def release_tables(counts: pl.DataFrame, at_checkpoints: pl.DataFrame) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """One frame per language and ``all`` (``fact`` = ``<lang>:<index>``), and ``checkpoints``
    (cumulative counts per fact and checkpoint) when there are checkpoints; with their tables."""
    fact = pl.col("lang") + ":" + pl.col("index").cast(pl.String)
    rows = counts.with_columns(fact.alias("fact")).select(RELEASE_COUNTS.column_names)
    frames = {lang: rows.filter(pl.col("lang") == lang) for lang in language_order(rows["lang"].unique().to_list())}
    frames[ALL_CONFIG] = rows
    configs: dict[str, Any] = {name: RELEASE_COUNTS for name in frames}
    if at_checkpoints.height:
        frames[CHECKPOINTS_CONFIG] = (
            at_checkpoints.join(counts.select("fact_id", "lang", "relation", "index"), on="fact_id", how="left")
            .with_columns((fact + "@" + pl.col("checkpoint").cast(pl.String)).alias("row"))
            .sort("fact_id", "checkpoint")
            .select(RELEASE_CHECKPOINTS.column_names)
        )
        configs[CHECKPOINTS_CONFIG] = RELEASE_CHECKPOINTS
    return frames, configs


def release(settings: Settings, version: str | None = None, bump: str | None = None) -> ReleaseOutcome:
    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    verdict, validated_now, failed = release_verdict(
        version, bump, candidate_fingerprint(stages),
        f"{stages}: no completed fact-frequency build; run `corpusforge build facts --facts ... --corpus ...` first",
        lambda: latest_verdict(settings), lambda: validate(settings),
    )
    checks = verdict["summary"].get("checks", [])
    if not verdict["success"]:
        raise ReleaseRefused(
            f"validation of the current fact-frequency candidate failed ({', '.join(failed) or 'see report'}); "
            f"report: {verdict['dir']}. Fix the input and build again."
        )
    record = read_json(stages / BUILD_RECORD)
    version = version or next_version(ws.releases, DATASET, bump or "patch")
    tables = read_candidate(stages)
    counts = tables["counts"]
    summary = language_summary(counts)
    with tempfile.TemporaryDirectory(prefix="facts-plot-") as tmp:
        plot = plot_summary(counts, Path(tmp) / PLOT_FILE, corpus_name=settings.facts.corpus_name)
        attachments = {PLOT_FILE: plot.read_bytes()}
    frames, configs = release_tables(counts, tables["checkpoint_counts"])
    corpus = {**record["corpus"], "name": settings.facts.corpus_name}
    # inputs by name and content, not by path: the release must not depend on where they live
    corpus["shards"] = [portable_file(s) for s in corpus["shards"]]
    spec = ReleaseSpec(
        dataset=DATASET,
        version=version,
        max_rows_per_file=settings.release.max_rows_per_file,
        row_group_size=settings.release.row_group_size,
        configs=configs,
        tables=frames,
        split_column=None,
        card=CardText(
            title=TITLE, summary=SUMMARY,
            body_markdown=card_body(settings.facts, summary, corpus, settings.facts.checkpoints),
            license="other", license_note=LICENSE_NOTE,
            metadata={"language": [k for k in frames if k not in (ALL_CONFIG, CHECKPOINTS_CONFIG)]},
        ),
        attachments=attachments,
        manifest_extra={
            "inputs": {"facts": portable_file(record["facts"]), "corpus": corpus},
            "config": record["settings"],
            "code_revision": code_revision(),
            "candidate_fingerprint": verdict["candidate_fingerprint"],
            "summary": summary.to_dicts(),
            "checkpoints": list(settings.facts.checkpoints),
            # no validation run id: a wall-clock stamp of this workspace (see ops/sad.py)
            "validation": {"success": verdict["success"], "checks": len(checks), "failed": failed},
        },
    )
    path = write_release(spec, ws.releases)
    manifest = read_manifest(path)
    return ReleaseOutcome(path, version, validated_now, {n: c["splits"] for n, c in manifest["configs"].items()})


# --------------------------------------------------------------------------- export


def export(settings: Settings, out: Path, version: str | None = None) -> tuple[Path, str]:
    """The paper's JSON layout of a release (``version``) or of the current candidate."""
    ws = Workspace.at(settings.workspace.path)
    if version is not None:
        path = ws.release_dir(DATASET, validate_version(version))
        if not (path / "manifest.json").exists():
            raise ReleaseNotFoundError(f"{path}: no fact-frequency release {version}; `corpusforge release facts --version {version}` makes one")
        manifest = read_manifest(path)
        counts = pl.read_parquet([path / f for f in manifest["configs"][ALL_CONFIG]["files"]])
        origin = f"release {version}"
    else:
        stages = ws.stages(DATASET)
        counts = read_candidate(stages)["counts"]
        origin = f"candidate {candidate_fingerprint(stages)[:12]}"
    return export_paper_json(counts, out), origin
