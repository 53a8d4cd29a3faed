"""SAD end to end: build, validate, release. The command line calls these; so can notebooks.

This is the one place that joins the layers for SAD: the pipeline builds a release candidate in
the workspace, validation checks it and records the verdict next to the candidate's
fingerprint, and a release is written only for a candidate whose latest verdict passed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from corpusforge.config import Settings
from corpusforge.ops.provenance import portable_settings
from corpusforge.ops.verdicts import ReleaseOutcome, ReleaseRefused, find_verdict, release_verdict, validate_candidate
from corpusforge.workspace import Workspace
from pipelines.core.errors import CorpusforgeError
from pipelines.core.executor import NO_PROGRESS, Progress, make_executor
from pipelines.core.fileio import atomic_write_json, read_json
from pipelines.sad.card import LICENSE_NOTE, SUMMARY, TITLE, card_body
from pipelines.sad.pipeline import BuildResult, build_sad, candidate_fingerprint, read_candidate
from releases import CardText, ReleaseSpec, next_version, write_release
from schemas.sad import RELEASE_CONFIGS, TABLES

DATASET = "sad"
BUILD_RECORD = "_build.json"


# --------------------------------------------------------------------------- build


def resolve_labels(settings: Settings, labels: Path | str | None) -> Path | None:
    """``labels``: a merged-labels file, ``"latest"`` (the newest merge of this workspace) or None."""
    if labels is None or str(labels) != "latest":
        return Path(labels) if labels is not None else None
    from corpusforge.ops.annotate import latest_merge

    merged = latest_merge(settings)
    if merged is None:
        raise CorpusforgeError("--labels latest: nothing merged in this workspace yet; run `corpusforge annotate merge sad`")
    return merged / "labels.parquet"


def _labels_record(labels: Path | None, result: BuildResult) -> dict[str, Any] | None:
    if labels is None:
        return None
    merge_record = labels.parent / "merge.json"
    stats = result.steps["human_labels"].stats
    return {
        "file": str(labels),
        "rows": sum(stats["rows_out"].values()),
        "dropped": stats["dropped"],
        "merge": read_json(merge_record) if merge_record.exists() else None,
    }


def build(inputs: list[Path], settings: Settings, progress: Progress = NO_PROGRESS, labels: Path | str | None = None) -> BuildResult:
    """Build the candidate; ``labels`` (a merged-labels file or "latest") overrides suggestions."""
    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    labels = resolve_labels(settings, labels)
    executor = make_executor(settings.executor.kind, settings.executor.workers, settings.executor.ray_address)
    result = build_sad(inputs, settings.sad, stages, executor, progress, hash_file=ws.hash_file, labels=labels)
    atomic_write_json(
        stages / BUILD_RECORD,
        {
            "candidate_fingerprint": candidate_fingerprint(stages),
            "source_kind": result.kind,
            "inputs": [{"name": Path(u.path).name, "sha256": u.sha256, "bytes": u.size} for u in result.inputs.units],
            "settings": portable_settings(settings.sad),  # no absolute paths: they go into the manifest
            "human_labels": _labels_record(labels, result),
        },
    )
    return result


# --------------------------------------------------------------------------- validate


def validate(settings: Settings, run_id: str | None = None):
    """Validate the current candidate; the verdict is stored under the workspace."""
    from validation.sad import validate_sad  # GX is slow to import: only when validating

    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    tables = read_candidate(stages)
    return validate_candidate(
        ws.validation(DATASET), candidate_fingerprint(stages),
        lambda out_dir: validate_sad(tables, bounds=settings.sad.validation, out_dir=out_dir, min_words=settings.sad.rules.min_words),
        run_id=run_id,
    )


def latest_verdict(settings: Settings) -> dict[str, Any] | None:
    """The newest validation verdict for the current candidate, if any."""
    ws = Workspace.at(settings.workspace.path)
    return find_verdict(ws.validation(DATASET), candidate_fingerprint(ws.stages(DATASET)))


# --------------------------------------------------------------------------- release


def human_label_summary(tables, labels_record: dict[str, Any] | None) -> dict[str, Any]:
    """How many utterances carry human labels, from where, and how much annotators agreed."""
    import polars as pl

    sources = tables["utterances"].get_column("strategies_source").drop_nulls()
    human = sources.filter(sources.str.starts_with("human:"))
    by_source = human.str.split(":").list.get(1).value_counts().sort("strategies_source")
    summary: dict[str, Any] = {
        "utterances": int(human.len()),
        "of_utterances": tables["utterances"].height,
        "dialogue_targets": int(tables["dialogues"].filter(pl.col("target_strategies").is_not_null()).height),
        "by_source": {r[0]: int(r[1]) for r in by_source.iter_rows()},
    }
    merge = (labels_record or {}).get("merge") or {}
    agreement = merge.get("agreement") or {}
    if merge:
        summary["merge"] = {"snapshot": merge.get("snapshot"), "policy": (merge.get("policy") or {}).get("description"), "counts": merge.get("counts")}
    if agreement:
        multi = (agreement.get("multi") or {}).get("strategies") or {}
        single = agreement.get("single") or {}
        summary["agreement"] = {
            "items": agreement.get("n_items"),
            "annotators": len(agreement.get("annotators") or []),
            "strategies_alpha_masi": multi.get("alpha_masi"),
            "strategies_alpha_per_label": multi.get("alpha_per_label"),
            "stance_alpha": (single.get("stance") or {}).get("alpha"),
            "stance_fleiss_kappa": (single.get("stance") or {}).get("fleiss_kappa"),
        }
    return summary


def code_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode == 0:
            return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import version

    return f"corpusforge {version('corpusforge')}"


def release(settings: Settings, version: str | None = None, bump: str | None = None) -> ReleaseOutcome:
    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    verdict, validated_now, failed = release_verdict(
        version, bump, candidate_fingerprint(stages),
        f"{stages}: no completed SAD build; run `corpusforge build sad --input ...` first",
        lambda: latest_verdict(settings), lambda: validate(settings),
    )
    if not verdict["success"]:
        raise ReleaseRefused(
            f"validation of the current SAD candidate failed ({', '.join(failed) or 'see report'}); "
            f"report: {verdict['dir']}. Fix the input or settings, rebuild, and run `corpusforge validate sad`."
        )
    record = read_json(stages / BUILD_RECORD)
    version = version or next_version(ws.releases, DATASET, bump or "patch")
    tables = read_candidate(stages)
    human = human_label_summary(tables, record.get("human_labels"))
    spec = ReleaseSpec(
        dataset=DATASET,
        version=version,
        max_rows_per_file=settings.release.max_rows_per_file,
        row_group_size=settings.release.row_group_size,
        configs={name: TABLES[name] for name in RELEASE_CONFIGS},
        tables={name: tables[name] for name in RELEASE_CONFIGS},
        split_column="split",
        card=CardText(
            title=TITLE,
            summary=SUMMARY,
            body_markdown=card_body(settings.sad, record["source_kind"], human),
            license="other",
            license_note=LICENSE_NOTE,
        ),
        manifest_extra={
            "inputs": record["inputs"],
            "config": record["settings"],
            "code_revision": code_revision(),
            "human_labels": human,
            "candidate_fingerprint": verdict["candidate_fingerprint"],
            # No validation run id: it is a wall-clock stamp of this workspace, and a rebuild must
            # give the same manifest (the candidate fingerprint names what was validated).
            "validation": {
                "success": verdict["success"],
                "checks": len(verdict["summary"].get("checks", [])),
                "failed": [c["name"] for c in verdict["summary"].get("checks", []) if not c.get("success")],
            },
        },
    )
    path = write_release(spec, ws.releases)
    manifest = read_json(path / "manifest.json")
    counts = {name: cfg["splits"] for name, cfg in manifest["configs"].items()}
    return ReleaseOutcome(path, version, validated_now, counts)
