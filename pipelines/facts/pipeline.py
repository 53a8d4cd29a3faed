"""The fact-frequency pipeline and the library entry point ``build_facts``.

::

    facts  (KLAR folder or facts table -> facts, templates; bad rows -> rejects)
    count  (one task per corpus shard: every phrase of every language matched in one pass per
            batch of documents; partial counts per fact and checkpoint bucket; bad documents and
            broken shards -> rejects)
    merge  (partials summed; totals per fact; cumulative counts at the checkpoints)

The count step is a source step over the corpus shards, so its tasks are the shards: the local
executor runs them in worker processes (``executor.workers``), the Ray executor as Ray tasks
(``--executor ray``), with the same code. Each shard's partial counts are written when the shard
is finished; an interrupted run resumes at the first unfinished shard, and partials are merged
by summing, so the order in which shards finish does not matter.

Every count task reads the facts itself (from the facts input, identified by its content hash in
the step's parameters) and compiles the automaton once per process: shipping a compiled
automaton to workers would cost more than compiling it (0.1 s for the 28,728 KLAR phrases).

Inputs are fingerprinted by content: the facts (every file of a KLAR folder) and every shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core.errors import InputError
from pipelines.core.executor import BuildResult, Executor, LocalExecutor, NO_PROGRESS, Progress
from pipelines.core.fileio import sha256_file
from pipelines.core.stage import StageStore
from pipelines.core.step import Emitter, Input, MapStep, Output, Pipeline, SourceStep, SourceUnit, StepResult
from pipelines.facts.corpus import CORPUS_SUFFIXES, iter_batches
from pipelines.facts.count import PARTIAL_SCHEMA, FactCounter, add_partials, buckets_of, compile_phrases, merge_partials
from pipelines.facts.facts import read_facts
from pipelines.facts.settings import FactsSettings
from schemas.facts import CHECKPOINT_COUNTS, COUNTS, FACTS

FINAL_STEP = "merge"


def _one_partition(df: pl.DataFrame, partitions: int) -> pl.Series:
    return pl.Series("p", [0] * df.height, dtype=pl.Int32)


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class FactsInputs:
    facts: SourceUnit
    shards: tuple[SourceUnit, ...]
    order_file: SourceUnit | None = None

    @property
    def corpus_bytes(self) -> int:
        return sum(s.size for s in self.shards)


def _files_hash(files: Sequence[Path], root: Path, hash_file: Callable[[Path], str]) -> str:
    lines = "".join(f"{p.relative_to(root).as_posix()}\t{hash_file(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def corpus_files(paths: Sequence[Path | str]) -> list[Path]:
    """The shards under ``paths`` (files as given; folders searched recursively for corpus
    files), sorted and deduplicated. A path that does not exist, or a folder without a single
    shard, is an :class:`InputError`."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            shards = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(CORPUS_SUFFIXES))
            if not shards:
                raise InputError(path, "no corpus shards in this folder",
                                 f"Give files ending in {', '.join(CORPUS_SUFFIXES)}, or folders holding them")
            for p in shards:
                found[p.resolve()] = None
        else:
            raise InputError(path, "no such corpus file or folder", "Give corpus shards (files) or folders holding them")
    return sorted(found)


def resolve_inputs(
    facts: Path | str, corpus: Sequence[Path | str], settings: FactsSettings, hash_file: Callable[[Path], str] = sha256_file
) -> FactsInputs:
    facts = Path(facts)
    if facts.is_dir():
        files = sorted(p for p in facts.rglob("*.json") if p.is_file())
        if not files:
            raise InputError(facts, "no <lang>/<relation>.json files in this folder", "Give a KLAR folder or a facts table (.jsonl, .csv, .parquet)")
        unit = SourceUnit(str(facts.resolve()), _files_hash(files, facts, hash_file), sum(p.stat().st_size for p in files))
    elif facts.is_file():
        unit = SourceUnit(str(facts.resolve()), hash_file(facts), facts.stat().st_size)
    else:
        raise InputError(facts, "no such facts folder or file", "Give a KLAR folder (<lang>/<relation>.json) or a facts table (.jsonl, .csv, .parquet)")
    if not corpus:
        raise InputError("--corpus", "no corpus given", "Give corpus shards or folders with --corpus")
    shards = tuple(SourceUnit(str(p), hash_file(p), p.stat().st_size) for p in corpus_files(corpus))
    order = None
    if settings.order_file is not None:
        path = Path(settings.order_file)
        if not path.is_file():
            raise InputError(path, "no such data-order file", "Give a CSV or JSONL of shard, first_line, last_line, step rows")
        order = SourceUnit(str(path.resolve()), hash_file(path), path.stat().st_size)
    return FactsInputs(unit, shards, order)


# --------------------------------------------------------------------------- steps


def read_facts_step(unit: SourceUnit, params: None, out: Emitter) -> None:
    read = read_facts(Path(unit.path))
    out.emit("facts", read.facts)
    out.reject(read.rejects)
    for lang, n in read.facts.group_by("lang").len().iter_rows():
        out.count(f"facts_{lang}", n)
    out.advance(unit.size)


class CountParams(BaseModel):
    """What a count task needs. The facts and the order file are fingerprinted by content (their
    hashes here); their paths are where to read them and are not part of the fingerprint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: FactsSettings
    facts_sha256: str
    facts_path: str = Field(exclude=True)
    order_sha256: str | None = None
    order_path: str | None = Field(None, exclude=True)


_COMPILED: dict[tuple[str, str], tuple] = {}


def _compiled(params: CountParams):
    """The counter (automaton and phrase table), compiled once per process and facts."""
    key = (params.facts_sha256, params.settings.matching.model_dump_json())
    if key not in _COMPILED:
        facts = read_facts(Path(params.facts_path)).facts
        _COMPILED.clear()  # one facts set at a time
        _COMPILED[key] = FactCounter(*compile_phrases(facts, params.settings.matching))
    return _COMPILED[key]


def count_shard(unit: SourceUnit, params: CountParams, out: Emitter) -> None:
    """One shard: stream its documents in batches, count, emit the shard's partial counts."""
    counter = _compiled(params)
    checkpoints = params.settings.checkpoints
    partials: list[pl.DataFrame] = []
    docs = no_step = 0
    corpus = params.settings.corpus
    if params.order_path is not None:
        corpus = corpus.model_copy(update={"order_file": Path(params.order_path)})
    for batch in iter_batches(Path(unit.path), corpus):
        if batch.rejects is not None and batch.rejects.height:
            out.reject(batch.rejects)
        out.advance(batch.bytes_read)
        if not batch.texts:
            continue
        docs += len(batch.texts)
        if checkpoints:
            no_step += len(batch.texts) if batch.steps is None else sum(s is None for s in batch.steps)
        partials.append(counter.count(batch.texts, buckets_of(batch.steps, len(batch.texts), checkpoints)))
        if len(partials) >= 64:  # memory stays flat: fold the batches' partials as we go
            partials = [add_partials(partials)]
    out.emit("partials", add_partials(partials))
    out.count("documents", docs)
    if no_step:
        out.count("documents_without_step", no_step)


def merge_counts(frames: dict[str, pl.DataFrame], params: FactsSettings) -> StepResult:
    facts = frames["facts"]
    totals, at = merge_partials(facts, frames["partials"], params.checkpoints)
    counts = facts.join(totals, on="fact_id", how="left").sort("fact_id")
    at = at.with_columns((pl.col("fact_id").cast(pl.String) + "@" + pl.col("checkpoint").cast(pl.String)).alias("row_id"))
    counters = {
        "facts": counts.height,
        "facts_with_cooccurrence": int((counts.get_column("cooccurrence_docs") > 0).sum()),
    }
    return StepResult({"counts": counts, "checkpoint_counts": at}, counters=counters)


def facts_pipeline(inputs: FactsInputs, settings: FactsSettings) -> Pipeline:
    facts_step = SourceStep(
        name="facts",
        version="1",
        description="Facts (KLAR folder or table); bad rows quarantined.",
        read=read_facts_step,
        outputs=(Output.of(FACTS),),
        partition_by=_one_partition,
        units=(inputs.facts,),
        partitions=1,
    )
    params = CountParams(
        settings=settings, facts_sha256=inputs.facts.sha256, facts_path=inputs.facts.path,
        order_sha256=inputs.order_file.sha256 if inputs.order_file else None,
        order_path=inputs.order_file.path if inputs.order_file else None,
    )
    count_step = SourceStep(
        name="count",
        version="1",
        description="Per shard: documents mentioning each fact's subject, object and both (per checkpoint bucket).",
        read=count_shard,
        outputs=(Output("partials", PARTIAL_SCHEMA),),
        partition_by=_one_partition,
        units=inputs.shards,
        partitions=1,
        params=params,
        parallel_units=True,  # each shard's count is single-threaded: one shard per worker process
    )
    merge = MapStep(
        name=FINAL_STEP,
        version="1",
        description="Partial counts summed per fact; cumulative counts at the checkpoints.",
        transform=merge_counts,
        inputs=(
            Input("facts", "facts.facts", tuple(FACTS.column_names), broadcast=True),
            Input("partials", "count.partials", tuple(PARTIAL_SCHEMA.names())),
        ),
        outputs=(Output.of(COUNTS), Output.of(CHECKPOINT_COUNTS)),
        params=settings,
    )
    return Pipeline("facts", (facts_step, count_step, merge))


# --------------------------------------------------------------------------- entry points


def build_facts(
    facts: Path | str,
    corpus: Sequence[Path | str],
    settings: FactsSettings,
    stages_root: Path,
    executor: Executor | None = None,
    progress: Progress = NO_PROGRESS,
    hash_file: Callable[[Path], str] = sha256_file,
) -> BuildResult:
    """Count every fact of ``facts`` over the ``corpus`` shards into ``stages_root``."""
    inputs = resolve_inputs(facts, corpus, settings, hash_file)
    outcomes = (executor or LocalExecutor()).run(facts_pipeline(inputs, settings), Path(stages_root), progress)
    return BuildResult(inputs, outcomes, Path(stages_root))


def read_candidate(stages_root: Path) -> dict[str, pl.DataFrame]:
    store = StageStore(Path(stages_root))
    if store.fingerprint_of(FINAL_STEP) is None:
        raise InputError(stages_root, "no completed fact-frequency build here", "Run `corpusforge build facts --facts ... --corpus ...` first")
    return {t.name: store.read(FINAL_STEP, t.name, t.polars_schema()) for t in (COUNTS, CHECKPOINT_COUNTS)}


def candidate_fingerprint(stages_root: Path) -> str | None:
    return StageStore(Path(stages_root)).fingerprint_of(FINAL_STEP)
