"""Fact frequencies end to end: build, validate, release, export. The command line calls these.

As for the other datasets: the pipeline builds a candidate in the workspace
(``<workspace>/facts/stages``), validation stores its verdict with the candidate's fingerprint
and the validation settings, and a release is written only when that verdict passed (it
validates first when there is none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from corpusforge.config import Settings, describe
from corpusforge.workspace import Workspace
from pipelines.core.executor import NO_PROGRESS, Progress, make_executor
from pipelines.core.fileio import atomic_write_json
from pipelines.facts.pipeline import BuildResult, build_facts, candidate_fingerprint

DATASET = "facts"
BUILD_RECORD = "_build.json"


def build(facts: Path, corpus: Sequence[Path], settings: Settings, progress: Progress = NO_PROGRESS) -> BuildResult:
    """Count ``facts`` over the ``corpus`` shards into the workspace; records the inputs."""
    ws = Workspace.at(settings.workspace.path)
    stages = ws.stages(DATASET)
    executor = make_executor(settings.executor.kind, settings.executor.workers, settings.executor.ray_address)
    result = build_facts(facts, corpus, settings.facts, stages, executor, progress, hash_file=ws.hash_file)
    count = result.steps["count"]
    atomic_write_json(
        stages / BUILD_RECORD,
        {
            "candidate_fingerprint": candidate_fingerprint(stages),
            "facts": {"path": result.inputs.facts.path, "sha256": result.inputs.facts.sha256, "bytes": result.inputs.facts.size},
            "corpus": {
                "shards": [{"name": Path(u.path).name, "path": u.path, "sha256": u.sha256, "bytes": u.size} for u in result.inputs.shards],
                "documents": count.stats["counters"].get("documents", 0),
                "bytes": result.inputs.corpus_bytes,
                "skipped": count.stats["dropped"],
            },
            "executor": settings.executor.kind,
            "settings": describe(settings)["facts"],
        },
    )
    return result
