"""Declaring pipelines: steps with typed inputs and outputs, checked before any data moves.

A pipeline is a plain tuple of steps. Each step names the columns it needs from which upstream
output and the schema of what it produces; :meth:`Pipeline.check` verifies that the steps fit
together before an executor runs them, and executors verify every produced frame against the
declared schema. Steps hold only module-level functions and frozen parameters, so the same step
list can be shipped to worker processes or a Ray cluster unchanged.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import polars as pl

from pipelines.core.errors import PipelineDeclarationError, StepOutputError
from schemas.table import Table

REJECT_COLUMNS = ("record_id", "drop_reason", "detail")


@dataclass(frozen=True)
class Output:
    """A named output of a step with its schema (from a Table, or explicit)."""

    name: str
    schema: pl.Schema

    @classmethod
    def of(cls, table: Table, name: str | None = None) -> "Output":
        return cls(name or table.name, table.polars_schema())

    def conform(self, step: str, df: pl.DataFrame) -> pl.DataFrame:
        missing = [c for c in self.schema.names() if c not in df.columns]
        if missing:
            raise StepOutputError(
                f"step {step!r} output {self.name!r} lacks declared columns {missing} (it has {df.columns})"
            )
        try:
            return df.select([pl.col(n).cast(t, strict=True) for n, t in self.schema.items()])
        except pl.exceptions.PolarsError as exc:
            raise StepOutputError(f"step {step!r} output {self.name!r} does not match its declared types: {exc}") from exc


@dataclass(frozen=True)
class Input:
    """What a step reads: ``source`` is ``"<step>.<output>"``; ``columns`` are required there.

    A ``broadcast`` input is read whole (every partition) by every partition of the step; the
    others are read partition by partition, aligned with the step's own partitions.
    """

    name: str
    source: str
    columns: tuple[str, ...]
    broadcast: bool = False

    @property
    def step(self) -> str:
        return self.source.split(".", 1)[0]

    @property
    def output(self) -> str:
        return self.source.split(".", 1)[1]


@dataclass(frozen=True)
class SourceUnit:
    """One input file of a source step, identified by its content hash."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SplitRows:
    """Rows of one output already conformed and cut by partition (:meth:`Emitter.split`)."""

    output: str
    height: int
    parts: tuple[tuple[int, pl.DataFrame], ...]
    nbytes: int


class Emitter(Protocol):
    """What a source step writes through; provided by the executor.

    ``split`` conforms rows to the output's schema and cuts them by partition without touching
    the emitter's state, so a reader that parses on several threads can do that work there and
    hand the result to ``emit`` (which must be called from one thread).
    """

    def emit(self, output: str, df: pl.DataFrame | SplitRows) -> None: ...
    def split(self, output: str, df: pl.DataFrame) -> SplitRows: ...
    def reject(self, df: pl.DataFrame) -> None: ...
    def count(self, key: str, n: int = 1) -> None: ...
    def advance(self, n_bytes: int) -> None: ...


@dataclass(frozen=True)
class SourceStep:
    """Reads input files (units) and writes rows into ``partitions`` buckets by ``partition_by``.

    ``read`` is ``read(unit, params, emitter)``; each unit is finished or redone as a whole, so
    an interrupted run resumes at the first unfinished file.

    ``parallel_units``: a unit's read is heavy single-threaded work of its own (counting the
    facts of a corpus shard), so a local executor with several workers reads that many units
    at once, one per worker process. Otherwise it reads them one after another in its own
    process (Arrow parses each file with its own threads). The Ray executor always runs one task
    per unit. Not part of the fingerprint: it changes where units are read, not what they give.
    """

    name: str
    version: str
    description: str
    read: Callable[[SourceUnit, Any, Emitter], None]
    outputs: tuple[Output, ...]
    partition_by: Callable[[pl.DataFrame, int], pl.Series]
    units: tuple[SourceUnit, ...]
    partitions: int
    params: Any = None
    parallel_units: bool = False

    @property
    def inputs(self) -> tuple[Input, ...]:
        return ()


@dataclass
class StepResult:
    """What a map step returns for one partition."""

    outputs: dict[str, pl.DataFrame]
    rejects: pl.DataFrame | None = None  # at least record_id, drop_reason, detail
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MapStep:
    """Transforms one partition at a time: ``transform(frames, params) -> StepResult``.

    ``resources`` is what one partition's task needs from the executor, as ``(name, amount)``
    pairs: ``num_cpus``, ``num_gpus``, ``memory`` (bytes) or a custom resource name of the Ray
    cluster, e.g. ``(("num_gpus", 1.0),)`` for a step that translates with a GPU model. The Ray
    executor schedules by them (and refuses a step the cluster cannot run); the local executor
    ignores them. They are not part of the fingerprint: they change where a step runs, not
    what it produces.
    """

    name: str
    version: str
    description: str
    transform: Callable[[dict[str, pl.DataFrame], Any], StepResult]
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    params: Any = None
    resources: tuple[tuple[str, float], ...] = ()
    with_partition: bool = False  # True: transform(frames, params, partition number)


Step = SourceStep | MapStep


def output_of(step: Step, name: str) -> Output:
    for o in step.outputs:
        if o.name == name:
            return o
    raise KeyError(name)


@dataclass(frozen=True)
class Pipeline:
    """A named, ordered tuple of steps; the first is a source step."""

    name: str
    steps: tuple[Step, ...]

    def check(self) -> None:
        """Static check: every input refers to an earlier step's declared output with the columns."""
        seen: dict[str, Step] = {}
        if not self.steps or not isinstance(self.steps[0], SourceStep):
            raise PipelineDeclarationError(f"pipeline {self.name!r} must start with a source step")
        for step in self.steps:
            if step.name in seen:
                raise PipelineDeclarationError(f"pipeline {self.name!r}: step name {step.name!r} used twice")
            for inp in step.inputs:
                upstream = seen.get(inp.step)
                if upstream is None:
                    raise PipelineDeclarationError(
                        f"pipeline {self.name!r}: step {step.name!r} reads {inp.source!r}, "
                        f"but no earlier step is called {inp.step!r}"
                    )
                try:
                    out = output_of(upstream, inp.output)
                except KeyError:
                    raise PipelineDeclarationError(
                        f"pipeline {self.name!r}: step {step.name!r} reads {inp.source!r}, but step "
                        f"{inp.step!r} declares outputs {[o.name for o in upstream.outputs]}"
                    ) from None
                missing = [c for c in inp.columns if c not in out.schema.names()]
                if missing:
                    raise PipelineDeclarationError(
                        f"pipeline {self.name!r}: step {step.name!r} needs columns {missing} of "
                        f"{inp.source!r}, which declares {out.schema.names()}"
                    )
            seen[step.name] = step

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"pipeline {self.name!r} has no step {name!r}")

    @property
    def partitions(self) -> int:
        first = self.steps[0]
        assert isinstance(first, SourceStep)
        return first.partitions


def by_key_crc32(df: pl.DataFrame, partitions: int, column: str) -> pl.Series:
    """Partition of each row: crc32 of its ``column`` value (a string id) modulo ``partitions``,
    stable across runs and library versions; frames without the column go to partition 0. Give
    it to a step as ``functools.partial(by_key_crc32, column="...")`` (picklable)."""
    if column not in df.columns or partitions == 1:
        return pl.Series("p", [0] * df.height, dtype=pl.Int32)
    return df.get_column(column).map_elements(
        lambda key: zlib.crc32(key.encode()) % partitions, return_dtype=pl.Int32, skip_nulls=False
    )
