"""The SAD pipeline declaration and the library entry point ``build_sad``.

Reddit dumps::

    ingest (files -> nodes, bucketed by submission)
      -> build_dialogues (per bucket: clean, validate, walk chains)
      -> suggest_strategies (rule-based suggestions)
      [-> human_labels + apply_labels (merged human labels override suggestions), when given]
      -> assemble (splits by topic; final tables = the release candidate)

The published release (sent.json + argument.json) replaces the first two steps with
``import_published``. The final tables are read with :func:`read_candidate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl

from pipelines.core.errors import InputError
from pipelines.core.executor import BuildResult as BaseBuildResult, Executor, LocalExecutor, NO_PROGRESS, Progress
from pipelines.core.fileio import sha256_file
from pipelines.core.readers import estimate_decompressed_size, expand_inputs
from pipelines.core.stage import StageStore
from pipelines.core.step import Input, MapStep, Output, Pipeline, SourceStep, SourceUnit
from pipelines.sad.assemble import assemble
from pipelines.sad.dialogues import build_dialogues
from pipelines.sad.labels import HUMAN_LABELS_SCHEMA, apply_labels, read_labels
from pipelines.sad.published import is_published_dir, read_published
from pipelines.sad.reddit import NODES_SCHEMA, bucket_of_submission, read_reddit_file
from pipelines.sad.settings import SadRules, SadSettings, only
from pipelines.sad.strategies import suggest_strategies
from schemas.sad import DIALOGUES, TOPICS, UTTERANCES

FINAL_STEP = "assemble"
# compressions we cannot read are listed too, so that the build names them instead of skipping them
DUMP_PATTERNS = ("*.jsonl", "*.ndjson", "*.json", "*.zst", "*.gz", "*.bz2", "*.xz", "*.lz4", "*.zip", "RS_*", "RC_*")

_BUILT_UTTERANCE_COLUMNS = (
    "utterance_id", "submission_id", "parent_id", "speaker", "stance", "text", "n_words",
    "created_utc", "author", "depth", "strategies", "strategies_source",
)
_BUILT_DIALOGUE_COLUMNS = (
    "example_id", "submission_id", "topic", "context_ids", "history", "target_id", "target_text",
    "target_stance", "n_turns",
)
_BUILT_TOPIC_COLUMNS = ("submission_id", "topic", "topic_key", "n_dialogues")
_SUGGESTED_COLUMNS = _BUILT_UTTERANCE_COLUMNS + ("suggested_strategies", "suggestion_scores", "suggestion_source")

BUILT_OUTPUTS = (
    Output("utterances", UTTERANCES.subset_schema(_BUILT_UTTERANCE_COLUMNS)),
    Output("dialogues", DIALOGUES.subset_schema(_BUILT_DIALOGUE_COLUMNS)),
    Output("topics", TOPICS.subset_schema(_BUILT_TOPIC_COLUMNS)),
)

PARTITION_TARGET_BYTES = 256 * 1024 * 1024  # decompressed input per bucket


def _zero_partition(df: pl.DataFrame, partitions: int) -> pl.Series:
    return pl.Series("p", [0] * df.height, dtype=pl.Int32)


@dataclass(frozen=True)
class SadInputs:
    kind: str  # "reddit" | "published"
    units: tuple[SourceUnit, ...]


def resolve_inputs(inputs: list[Path | str], hash_file: Callable[[Path], str] = sha256_file) -> SadInputs:
    """Recognise the source kind and fingerprint every file (content hash)."""
    paths = [Path(p) for p in inputs]
    published = [p for p in paths if is_published_dir(p)]
    if published:
        if len(published) != len(paths):
            raise InputError(published[0], "a published SAD folder was given together with other inputs", "Build from one kind of source at a time")
        units = []
        for folder in published:
            parts = [hash_file(folder / "sent.json"), hash_file(folder / "argument.json")]
            size = (folder / "sent.json").stat().st_size + (folder / "argument.json").stat().st_size
            units.append(SourceUnit(str(folder.resolve()), "+".join(parts), size))
        return SadInputs("published", tuple(units))
    files = expand_inputs(paths, DUMP_PATTERNS)
    return SadInputs("reddit", tuple(SourceUnit(str(f), hash_file(f), f.stat().st_size) for f in files))


def auto_partitions(units: tuple[SourceUnit, ...]) -> int:
    """Enough partitions that each holds about PARTITION_TARGET_BYTES of decompressed input."""
    estimate = sum(estimate_decompressed_size(Path(u.path)) for u in units)
    return max(1, min(1024, math.ceil(estimate / PARTITION_TARGET_BYTES)))


def labels_steps(labels: SourceUnit) -> tuple:
    """Steps that apply merged human labels (see :mod:`pipelines.sad.labels`)."""
    return (
        SourceStep(
            name="human_labels",
            version="1",
            description="Merged human strategy labels (annotation layer).",
            read=read_labels,
            outputs=(Output("labels", HUMAN_LABELS_SCHEMA),),
            partition_by=_zero_partition,
            units=(labels,),
            partitions=1,
        ),
        MapStep(
            name="apply_labels",
            version="1",
            description="Human labels override suggestions: strategies and strategies_source of labelled utterances.",
            transform=apply_labels,
            inputs=(
                Input("utterances", "suggest_strategies.utterances", _SUGGESTED_COLUMNS),
                Input("labels", "human_labels.labels", tuple(HUMAN_LABELS_SCHEMA.names()), broadcast=True),
            ),
            outputs=(Output("utterances", UTTERANCES.subset_schema(_SUGGESTED_COLUMNS)),),
        ),
    )


def sad_pipeline(inputs: SadInputs, settings: SadSettings, labels: SourceUnit | None = None) -> Pipeline:
    labelled = labels_steps(labels) if labels is not None else ()
    utterances_from = "apply_labels.utterances" if labels is not None else "suggest_strategies.utterances"
    after: tuple = (
        MapStep(
            name="suggest_strategies",
            version="2",
            description="Rule-based strategy suggestions (not human labels).",
            transform=suggest_strategies,
            inputs=(Input("utterances", f"{_built_by(inputs)}.utterances", ("utterance_id", "text")),),
            outputs=(Output("utterances", UTTERANCES.subset_schema(_SUGGESTED_COLUMNS)),),
            params=only(settings, "suggester"),
        ),
        *labelled,
        MapStep(
            name=FINAL_STEP,
            version="1",
            description="Splits by topic; the tables as released (the release candidate).",
            transform=assemble,
            inputs=(
                Input("utterances", utterances_from, _SUGGESTED_COLUMNS),
                Input("dialogues", f"{_built_by(inputs)}.dialogues", _BUILT_DIALOGUE_COLUMNS),
                Input("topics", f"{_built_by(inputs)}.topics", _BUILT_TOPIC_COLUMNS),
                Input("all_topics", f"{_built_by(inputs)}.topics", ("submission_id", "topic_key"), broadcast=True),
            ),
            outputs=(Output.of(UTTERANCES), Output.of(DIALOGUES), Output.of(TOPICS)),
            params=only(settings, "splits"),
        ),
    )
    if inputs.kind == "published":
        source = SourceStep(
            name="import_published",
            version="1",
            description="The published SAD release (sent.json + argument.json).",
            read=read_published,
            outputs=BUILT_OUTPUTS,
            partition_by=_zero_partition,
            units=inputs.units,
            partitions=1,
            params=only(settings, "rules", "sources"),
        )
        return Pipeline("sad", (source,) + after)
    parts = settings.sources.partitions
    partitions = auto_partitions(inputs.units) if parts == "auto" else parts
    ingest = SourceStep(
        name="ingest",
        version="1",
        description="Reddit dump lines -> submissions and comments of the subreddit, bucketed by submission.",
        read=read_reddit_file,
        outputs=(Output("nodes", NODES_SCHEMA),),
        partition_by=bucket_of_submission,
        units=inputs.units,
        partitions=partitions,
        # ingest reads only the subreddit rule: other rule edits must not re-read the dumps
        params=only(settings, "sources").model_copy(update={"rules": SadRules(subreddit=settings.rules.subreddit)}),
    )
    build = MapStep(
        name="build_dialogues",
        version="1",
        description="Clean, validate and chain utterances into OP/challenger dialogues.",
        transform=build_dialogues,
        inputs=(Input("nodes", "ingest.nodes", tuple(NODES_SCHEMA.names())),),
        outputs=BUILT_OUTPUTS,
        params=only(settings, "rules"),
    )
    return Pipeline("sad", (ingest, build) + after)


def _built_by(inputs: SadInputs) -> str:
    return "import_published" if inputs.kind == "published" else "build_dialogues"


@dataclass
class BuildResult(BaseBuildResult):
    kind: str = ""  # the source: reddit or published


def build_sad(
    inputs: list[Path | str],
    settings: SadSettings,
    stages_root: Path,
    executor: Executor | None = None,
    progress: Progress = NO_PROGRESS,
    hash_file: Callable[[Path], str] = sha256_file,
    labels: Path | None = None,
) -> BuildResult:
    """Build the SAD release candidate under ``stages_root``; unchanged steps are skipped.

    ``labels``: merged human labels (``corpusforge annotate merge``) to apply.
    """
    resolved = resolve_inputs(inputs, hash_file)
    label_unit = None
    if labels is not None:
        labels = Path(labels)
        if not labels.is_file():
            raise InputError(labels, "no such labels file", "Give the labels.parquet of a merge (`corpusforge annotate merge sad`)")
        label_unit = SourceUnit(str(labels.resolve()), hash_file(labels), labels.stat().st_size)
    pipeline = sad_pipeline(resolved, settings, label_unit)
    outcomes = (executor or LocalExecutor()).run(pipeline, stages_root, progress)
    return BuildResult(resolved, outcomes, stages_root, kind=resolved.kind)


def read_candidate(stages_root: Path) -> dict[str, pl.DataFrame]:
    """The final tables of the last completed build (raises when there is none)."""
    store = StageStore(stages_root)
    if store.fingerprint_of(FINAL_STEP) is None:
        raise InputError(stages_root, "no completed SAD build here", "Run `corpusforge build sad --input ...` first")
    return {t.name: store.read(FINAL_STEP, t.name, t.polars_schema()) for t in (UTTERANCES, DIALOGUES, TOPICS)}


def candidate_fingerprint(stages_root: Path) -> str | None:
    return StageStore(stages_root).fingerprint_of(FINAL_STEP)
