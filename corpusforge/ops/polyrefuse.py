"""PolyRefuse end to end: build, validate, release, export. The command line calls these.

The one place that joins the layers for PolyRefuse: the pipeline builds a release candidate in
the workspace; validation checks it for the configured languages and records the verdict with
the candidate's fingerprint *and* the validation settings (languages, ``polyrefuse.validation``),
since narrowing the languages or allowing declared gaps changes the verdict of the same
candidate; a release is written only when the verdict for the current candidate and settings
passed (it validates first when there is none). There is no override: to release despite gaps,
narrow ``polyrefuse.languages`` or set ``polyrefuse.validation.allow_declared_missing = true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from corpusforge.config import Settings
from corpusforge.ops.sad import code_revision
from corpusforge.ops.provenance import portable_settings
from corpusforge.ops.verdicts import ReleaseOutcome, ReleaseRefused, find_verdict, release_verdict, validate_candidate
from corpusforge.workspace import Workspace
from pipelines.core.errors import CorpusforgeError
from pipelines.core.executor import NO_PROGRESS, Progress, make_executor
from pipelines.core.fileio import atomic_write_json, read_json, sha256_json
from pipelines.polyrefuse.card import LICENSE_NOTE, SUMMARY, TITLE, card_body, release_statistics
from pipelines.polyrefuse.export import EXPORT_COLUMNS, LAYOUTS, ExportResult, export_published
from pipelines.polyrefuse.pipeline import BuildResult, build_polyrefuse, candidate_fingerprint, read_candidate
from releases import CardText, ReleaseSpec, next_version, read_manifest, write_release
from releases.errors import ReleaseNotFoundError
from releases.versions import validate_version
from schemas.polyrefuse import LANGUAGE_ROWS, PROMPTS, parallel_table

DATASET = "polyrefuse"
BUILD_RECORD = "_build.json"
PARALLEL_CONFIG = "parallel"

__all__ = ["build", "validate", "latest_verdict", "release", "export", "ReleaseRefused"]


# --------------------------------------------------------------------------- build


def corrections_file(settings: Settings, value: str | None) -> Path | None:
    """``--corrections``: None or "none" -> no corrections; "latest" -> the last proofreading pull's
    corrections (an error when there is none); else the path of a corrections.parquet."""
    if value is None or value == "none":
        return None
    if value == "latest":
        from corpusforge.ops.proofread import latest_corrections

        found = latest_corrections(settings)
        if found is None:
            raise CorpusforgeError(
                "no proofreading corrections in this workspace yet: run `corpusforge annotate pull polyrefuse` "
                "(or give --corrections FILE, or leave --corrections out)"
            )
        return found
    return Path(value).expanduser()


def build(sources: Path, settings: Settings, progress: Progress = NO_PROGRESS, corrections: Path | None = None) -> BuildResult:
    """Build the candidate from ``sources`` (and ``polyrefuse.translation``) into the workspace;
    ``corrections``: a proofreading corrections file to apply. Model translations are cached in
    ``<workspace>/polyrefuse/translations.sqlite``."""
    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    executor = make_executor(settings.executor.kind, settings.executor.workers, settings.executor.ray_address)
    result = build_polyrefuse(
        sources, settings.polyrefuse, stages, executor, progress, hash_file=ws.hash_file, corrections=corrections
    )
    atomic_write_json(
        stages / BUILD_RECORD,
        {
            "candidate_fingerprint": candidate_fingerprint(stages),
            "sources": str(result.inputs.layout.root),
            "translations": str(result.inputs.translations_dir) if result.inputs.translations_dir else None,
            "corrections": result.inputs.corrections.path if result.inputs.corrections else None,
            "model_identity": result.inputs.model_identity,
            "back_translation_identity": result.inputs.back_translation_identity,
            "inputs": [{"name": name, "sha256": sha, "bytes": size} for name, sha, size in result.inputs.files],
            "settings": portable_settings(settings.polyrefuse),  # paths by name: they go into the manifest
        },
    )
    return result


# --------------------------------------------------------------------------- validate


def validation_key(settings: Settings) -> str:
    """What a verdict depends on besides the candidate: the languages and the validation rules."""
    p = settings.polyrefuse
    return sha256_json({"languages": list(p.languages), "validation": p.validation.model_dump(mode="json")})


def validate(settings: Settings, run_id: str | None = None, data_docs: bool = True):
    """Validate the current candidate for the configured languages; the verdict is stored."""
    from validation.polyrefuse import validate_polyrefuse  # GX is slow to import: only when validating

    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    tables = read_candidate(stages)
    return validate_candidate(
        ws.validation(DATASET), candidate_fingerprint(stages),
        lambda out_dir: validate_polyrefuse(tables, settings.polyrefuse, out_dir, data_docs=data_docs),
        run_id=run_id, validation_key=validation_key(settings), languages=list(settings.polyrefuse.languages),
        validation=settings.polyrefuse.validation.model_dump(mode="json"),
    )


def latest_verdict(settings: Settings) -> dict[str, Any] | None:
    """The newest verdict for the current candidate under the current validation settings."""
    ws = Workspace.at(settings.workspace.path)
    return find_verdict(ws.validation(DATASET), candidate_fingerprint(ws.stages(DATASET)), validation_key=validation_key(settings))


# --------------------------------------------------------------------------- release


def release_tables(tables: dict[str, pl.DataFrame], languages: tuple[str, ...]) -> tuple[list[str], dict[str, pl.DataFrame]]:
    """The released languages (configured and present) and one frame per config."""
    rows = tables["rows"]
    present = [lang for lang in languages if rows.filter(pl.col("lang") == lang).height]
    frames = {lang: rows.filter(pl.col("lang") == lang).rename({"prompt_id": "id"}) for lang in present}
    texts = (
        rows.filter(pl.col("lang").is_in(present))
        .pivot(on="lang", index="prompt_id", values="instruction", aggregate_function="first")
    )
    for lang in present:
        if lang not in texts.columns:
            texts = texts.with_columns(pl.lit(None, dtype=pl.String).alias(lang))
    frames[PARALLEL_CONFIG] = (
        tables["prompts"]
        .select("prompt_id", "split", "label", "category", "source", "position")
        .join(texts, on="prompt_id", how="left")
        .rename({"prompt_id": "id"})
    )
    return present, frames


def release(settings: Settings, version: str | None = None, bump: str | None = None) -> ReleaseOutcome:
    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    verdict, validated_now, failed = release_verdict(
        version, bump, candidate_fingerprint(stages),
        f"{stages}: no completed PolyRefuse build; run `corpusforge build polyrefuse --sources ...` first",
        lambda: latest_verdict(settings), lambda: validate(settings),
    )
    checks = verdict["summary"].get("checks", [])
    if not verdict["success"]:
        absent = next((c.get("details", "") for c in checks if c["name"] == "languages.present" and not c.get("success")), "")
        raise ReleaseRefused(
            f"validation of the current PolyRefuse candidate failed ({', '.join(failed) or 'see report'})"
            + (f"; {absent}" if absent else "")
            + f"; report: {verdict['dir']}. Fix the input, narrow the languages (--set polyrefuse.languages=[...]) or, "
            "for gaps declared with a reason, --set polyrefuse.validation.allow_declared_missing=true; then validate again."
        )
    record = read_json(stages / BUILD_RECORD)
    version = version or next_version(ws.releases, DATASET, bump or "patch")
    tables = read_candidate(stages)
    languages = settings.polyrefuse.languages
    present, frames = release_tables(tables, languages)
    stats = release_statistics(tables["rows"], tables["missing"], tuple(present))
    configs = {lang: LANGUAGE_ROWS for lang in present}
    configs[PARALLEL_CONFIG] = parallel_table(tuple(present))
    spec = ReleaseSpec(
        dataset=DATASET,
        version=version,
        max_rows_per_file=settings.release.max_rows_per_file,
        row_group_size=settings.release.row_group_size,
        configs=configs,
        tables=frames,
        split_column="split",
        card=CardText(
            title=TITLE,
            summary=SUMMARY,
            body_markdown=card_body(settings.polyrefuse, stats, record.get("translations")),
            license="apache-2.0",
            license_note=LICENSE_NOTE,
            metadata={"language": present, "task_categories": ["text-classification"]},
        ),
        manifest_extra={
            "inputs": record["inputs"],
            "config": record["settings"],
            "code_revision": code_revision(),
            "candidate_fingerprint": verdict["candidate_fingerprint"],
            "languages": present,
            "statistics": {"rows": stats["rows"], "flags": stats["flags"]},
            "declared_missing": stats["gaps"],
            # no validation run id: a wall-clock stamp of this workspace (see ops/sad.py)
            "validation": {
                "success": verdict["success"],
                "languages": verdict.get("languages"),
                "allow_declared_missing": (verdict.get("validation") or {}).get("allow_declared_missing"),
                "checks": len(checks),
                "failed": failed,
            },
        },
    )
    path = write_release(spec, ws.releases)
    manifest = read_manifest(path)
    counts = {name: cfg["splits"] for name, cfg in manifest["configs"].items()}
    return ReleaseOutcome(path, version, validated_now, counts, {"languages": present})


# --------------------------------------------------------------------------- export


@dataclass
class ExportOutcome:
    result: ExportResult
    origin: str  # "release <version>" or "candidate <fingerprint>"


def _release_rows(release_dir: Path) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    manifest = read_manifest(release_dir)
    frames = []
    for name, cfg in manifest["configs"].items():
        if cfg.get("table") != LANGUAGE_ROWS.name:
            continue
        df = pl.read_parquet([release_dir / f for f in cfg["files"]])
        frames.append(df.with_columns(pl.lit(name).alias("lang"), pl.col("label").cast(pl.Int64)).select(EXPORT_COLUMNS))
    rows = pl.concat(frames) if frames else pl.DataFrame(schema={c: PROMPTS.polars_schema().get(c, pl.String) for c in EXPORT_COLUMNS})
    return rows, list(manifest.get("declared_missing") or [])


def export(settings: Settings, out_dir: Path, version: str | None = None, layout: str = "published") -> ExportOutcome:
    """Write a release (``version``) or the current candidate in ``layout`` under ``out_dir``."""
    if layout not in LAYOUTS:
        raise CorpusforgeError(f"unknown export layout {layout!r}; layouts: {', '.join(LAYOUTS)}")
    ws = Workspace.at(settings.workspace.path)
    if version is not None:
        path = ws.release_dir(DATASET, validate_version(version))
        if not (path / "manifest.json").exists():
            raise ReleaseNotFoundError(f"{path}: no PolyRefuse release {version}; `corpusforge release polyrefuse --version {version}` makes one")
        rows, gaps = _release_rows(path)
        origin = f"release {version}"
    else:
        stages = ws.stages(DATASET)
        tables = read_candidate(stages)
        languages = settings.polyrefuse.languages
        rows = tables["rows"].filter(pl.col("lang").is_in(list(languages)))
        gaps = release_statistics(rows, tables["missing"], languages)["gaps"]
        origin = f"candidate {candidate_fingerprint(stages)[:12]}"
    return ExportOutcome(export_published(rows.select(EXPORT_COLUMNS), gaps, out_dir), origin)
