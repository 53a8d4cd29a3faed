"""Executors: run a pipeline's steps over its partitions, resuming whatever was finished.

The work of one step is split into tasks: a source step has one task per input file, a map
step one task per partition. A task writes its files atomically and then a progress record;
on a rerun, tasks with a progress record are skipped, and whole steps whose fingerprint
(step version, parameters, inputs) is unchanged are not run at all.

:class:`LocalExecutor` runs tasks in this process, and with ``workers > 1`` in ``workers - 1``
spawned processes besides.
:class:`~pipelines.core.ray_executor.RayExecutor` implements :meth:`Executor.map_tasks` with Ray
tasks and reuses everything else: the step list, the task functions and the stage layout are
the same. A map step's ``resources`` matter to Ray only; the local executor ignores them.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import polars as pl

from pipelines.core.errors import StepOutputError
from pipelines.core.faults import fault_point
from pipelines.core.fileio import atomic_write_json, atomic_write_parquet, read_json, sha256_json
from pipelines.core.progress import NO_PROGRESS, Progress  # noqa: F401 (re-exported)
from pipelines.core.stage import PROGRESS, REJECTS, StageStore, part_dir
from pipelines.core.step import MapStep, Pipeline, SourceStep, SplitRows, Step, StepResult
from pipelines.core.workerenv import environ, worker_env
from schemas.rejects import REJECTS as REJECTS_TABLE

# --------------------------------------------------------------------------- fingerprints


def _params_record(params: Any) -> Any:
    if params is None:
        return None
    if hasattr(params, "model_dump"):
        return params.model_dump(mode="json")
    return params


def fingerprint(step: Step, upstream: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "step": step.name,
        "version": step.version,
        "params": _params_record(step.params),
        "inputs": {inp.source: upstream[inp.step] for inp in step.inputs},
    }
    if isinstance(step, SourceStep):
        record["units"] = [{"name": Path(u.path).name, "sha256": u.sha256} for u in step.units]
        record["partitions"] = step.partitions
    record["fingerprint"] = sha256_json(record)
    return record


# --------------------------------------------------------------------------- tasks


@dataclass
class TaskReport:
    key: str
    rows_in: dict[str, int] = field(default_factory=dict)
    rows_out: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)


def _normalise_rejects(df: pl.DataFrame, key: str) -> pl.DataFrame:
    schema = REJECTS_TABLE.polars_schema()
    cols = []
    for name, dtype in schema.items():
        if name == "reject_no":
            continue
        cols.append(pl.col(name).cast(dtype) if name in df.columns else pl.lit(None, dtype=dtype).alias(name))
    out = df.select(cols).with_row_index("reject_no").with_columns(pl.col("reject_no").cast(pl.Int64))
    return out.select(schema.names())


def _write_task_files(work: Path, key: str, report: TaskReport, rejects: list[pl.DataFrame]) -> None:
    if rejects:
        rej = _normalise_rejects(pl.concat(rejects, how="diagonal_relaxed"), key)
        if rej.height:
            atomic_write_parquet(rej, work / REJECTS / f"{key}.parquet")
            for reason, n in rej.group_by("drop_reason").len().iter_rows():
                report.dropped[reason] = report.dropped.get(reason, 0) + n
    # The progress record is written last: its presence means the task is complete.
    atomic_write_json(work / PROGRESS / f"{key}.json", report.__dict__)


FLUSH_BYTES = 128 * 1024 * 1024  # rows a source task buffers before writing its partition files


class _FileEmitter:
    """Writes a source unit's rows into per-partition files of the working directory."""

    def __init__(self, step: SourceStep, work: Path, unit_index: int, on_bytes: Callable[[int], None] | None) -> None:
        self.step = step
        self.work = work
        self.key = f"u{unit_index:05d}"
        self.buffers: dict[tuple[str, int], list[pl.DataFrame]] = {}
        self.buffered_bytes = 0
        self.flush_no = 0
        self.rejects: list[pl.DataFrame] = []
        self.report = TaskReport(self.key)
        self.on_bytes = on_bytes
        self.outputs = {o.name: o for o in step.outputs}

    def split(self, output: str, df: pl.DataFrame) -> SplitRows:
        df = self.outputs[output].conform(self.step.name, df)
        if df.height == 0:
            return SplitRows(output, 0, (), 0)
        parts = self.step.partition_by(df, self.step.partitions)
        cut = df.with_columns(parts.alias("__part")).partition_by("__part", as_dict=True, maintain_order=True)
        return SplitRows(output, df.height, tuple((int(p), sub.drop("__part")) for (p,), sub in cut.items()), df.estimated_size())

    def emit(self, output: str, df: pl.DataFrame | SplitRows) -> None:
        rows = df if isinstance(df, SplitRows) else self.split(output, df)
        if rows.output != output:
            raise StepOutputError(f"step {self.step.name!r}: rows split for output {rows.output!r} were emitted as {output!r}")
        self.report.rows_out[output] = self.report.rows_out.get(output, 0) + rows.height
        for p, sub in rows.parts:
            self.buffers.setdefault((output, p), []).append(sub)
        self.buffered_bytes += rows.nbytes
        if self.buffered_bytes >= FLUSH_BYTES:  # memory stays bounded whatever the file size
            self.flush()

    def flush(self) -> None:
        for (output, p), frames in sorted(self.buffers.items()):
            atomic_write_parquet(
                pl.concat(frames), part_dir(self.work / output, p) / f"{self.key}-{self.flush_no:04d}.parquet"
            )
        self.buffers.clear()
        self.buffered_bytes = 0
        self.flush_no += 1

    def reject(self, df: pl.DataFrame) -> None:
        if df.height:
            self.rejects.append(df)

    def count(self, key: str, n: int = 1) -> None:
        self.report.counters[key] = self.report.counters.get(key, 0) + n

    def advance(self, n_bytes: int) -> None:
        if self.on_bytes:
            self.on_bytes(n_bytes)

    def close(self) -> None:
        self.flush()
        _write_task_files(self.work, self.key, self.report, self.rejects)


def run_source_unit(step: SourceStep, work: Path, index: int, on_bytes: Callable[[int], None] | None = None) -> str:
    """Task: read one input file completely. Files of an earlier partial attempt are replaced."""
    key = f"u{index:05d}"
    for stale in work.glob(f"*/p*/{key}-*.parquet"):
        stale.unlink()
    fault_point(f"executor.task.before:{step.name}:{key}")
    emitter = _FileEmitter(step, work, index, on_bytes)
    emitter.report.rows_in["file"] = 1
    step.read(step.units[index], step.params, emitter)
    emitter.close()
    fault_point(f"executor.task.after:{step.name}:{key}")
    return key


def run_map_partition(step: MapStep, store_root: Path, work: Path, partition: int, upstream_schemas: dict[str, pl.Schema]) -> str:
    """Task: transform one partition of every non-broadcast input."""
    store = StageStore(store_root)
    key = f"p{partition:05d}"
    fault_point(f"executor.task.before:{step.name}:{key}")
    frames: dict[str, pl.DataFrame] = {}
    report = TaskReport(key)
    for inp in step.inputs:
        schema = upstream_schemas[inp.source]
        if inp.broadcast:
            frames[inp.name] = store.read(inp.step, inp.output, schema)
        else:
            frames[inp.name] = store.read_partition(inp.step, inp.output, partition, schema)
            report.rows_in[inp.name] = frames[inp.name].height
    if step.with_partition:
        result: StepResult = step.transform(frames, step.params, partition)
    else:
        result = step.transform(frames, step.params)
    missing = [o.name for o in step.outputs if o.name not in result.outputs]
    if missing:
        raise StepOutputError(f"step {step.name!r} did not return outputs {missing}")
    for out in step.outputs:
        df = out.conform(step.name, result.outputs[out.name])
        atomic_write_parquet(df, part_dir(work / out.name, partition) / "data.parquet")
        report.rows_out[out.name] = df.height
    report.counters.update(result.counters)
    _write_task_files(work, key, report, [result.rejects] if result.rejects is not None else [])
    fault_point(f"executor.task.after:{step.name}:{key}")
    return key


# --------------------------------------------------------------------------- executors


@dataclass
class StepOutcome:
    step: str
    path: Path
    skipped: bool
    stats: dict[str, Any]


@dataclass
class BuildResult:
    """What a dataset's ``build_*`` returns: its resolved inputs, each step's outcome (in pipeline
    order) and where the stages are."""

    inputs: Any
    steps: dict[str, StepOutcome]
    stages_root: Path

    @property
    def counts(self) -> dict[str, int]:
        """Rows out of the last step, per output."""
        return dict(list(self.steps.values())[-1].stats["rows_out"])

    def dropped(self) -> dict[str, dict[str, int]]:
        """Rows dropped per step and reason (steps that dropped none are left out)."""
        return {name: o.stats["dropped"] for name, o in self.steps.items() if o.stats.get("dropped")}


class Executor:
    """Runs a pipeline; subclasses choose how the independent tasks of one step are run."""

    name = "base"

    def map_tasks(self, fn: Callable[..., str], calls: Sequence[tuple], on_done: Callable[[str], None]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers kept between steps (called at the end of :meth:`run`)."""

    def run(self, pipeline: Pipeline, stages_root: Path, progress: Progress = NO_PROGRESS) -> dict[str, StepOutcome]:
        try:
            return self._run(pipeline, stages_root, progress)
        finally:
            self.close()

    def _run(self, pipeline: Pipeline, stages_root: Path, progress: Progress) -> dict[str, StepOutcome]:
        pipeline.check()
        store = StageStore(stages_root)
        stages_root.mkdir(parents=True, exist_ok=True)
        fingerprints: dict[str, str] = {}
        schemas: dict[str, pl.Schema] = {}
        outcomes: dict[str, StepOutcome] = {}
        for step in pipeline.steps:
            record = fingerprint(step, fingerprints)
            fp = record["fingerprint"]
            fingerprints[step.name] = fp
            for out in step.outputs:
                schemas[f"{step.name}.{out.name}"] = out.schema
            store.recover(step.name, fp)
            if store.is_current(step.name, fp):
                stats = store.stats(step.name)
                progress.step_finished(step.name, True, stats)
                outcomes[step.name] = StepOutcome(step.name, store.final(step.name), True, stats)
                continue
            started = time.perf_counter()
            work = store.begin(step.name, fp)
            done = {p.stem for p in (work / PROGRESS).glob("*.json")}
            if isinstance(step, SourceStep):
                keys = [f"u{i:05d}" for i in range(len(step.units))]
                todo = [i for i, k in enumerate(keys) if k not in done]
                total_bytes = sum(u.size for u in step.units)
                progress.step_started(step.name, total_bytes, "bytes")
                progress.advance(step.name, sum(step.units[i].size for i, k in enumerate(keys) if k in done))
                self._run_source(step, work, todo, progress)
            else:
                keys = [f"p{p:05d}" for p in range(pipeline.partitions)]
                todo = [p for p, k in enumerate(keys) if k not in done]
                progress.step_started(step.name, len(keys), "partitions")
                progress.advance(step.name, len(keys) - len(todo))
                calls = [(step, stages_root, work, p, schemas) for p in todo]
                self.map_tasks(run_map_partition, calls, lambda _k: progress.advance(step.name, 1))
            stats = _merge_stats(step, work, keys, time.perf_counter() - started, resumed=len(done))
            fault_point(f"executor.commit.before:{step.name}")
            final = store.commit(step.name, work, record, stats)
            fault_point(f"executor.commit.after:{step.name}")
            progress.step_finished(step.name, False, stats)
            outcomes[step.name] = StepOutcome(step.name, final, False, stats)
        return outcomes

    def _run_source(self, step: SourceStep, work: Path, todo: list[int], progress: Progress) -> None:
        # Files are read one after another in this process: decompression and parsing are
        # already multi-threaded inside Arrow, and the byte counter drives the progress bar.
        for i in todo:
            run_source_unit(step, work, i, on_bytes=lambda n: progress.advance(step.name, n))

    def _map_units(self, step: SourceStep, work: Path, todo: list[int], progress: Progress) -> None:
        """One task per input file through :meth:`map_tasks`; the progress bar advances by a
        file's size when it is done."""
        sizes = {f"u{i:05d}": step.units[i].size for i in todo}
        self.map_tasks(run_source_unit, [(step, work, i) for i in todo], lambda key: progress.advance(step.name, sizes[key]))


class LocalExecutor(Executor):
    """Runs tasks on ``workers`` cores: this process and ``workers - 1`` spawned processes.

    This process is one of the workers: it would otherwise only wait, and every spawned process
    costs about a second to start (Python, polars, numba); while the others start, it is already
    working. A SAD build of 2M nodes on 2 cores used 21.2-21.9 CPU-seconds this way against
    22.5-23.6 with two spawned processes (``docs/benchmarks.md``). Its tasks run in a thread of
    their own, so that this thread hands the next task to whichever worker frees up.
    """

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._here: cf.ThreadPoolExecutor | None = None

    def map_tasks(self, fn: Callable[..., str], calls: Sequence[tuple], on_done: Callable[[str], None]) -> None:
        if self.workers == 1 or len(calls) <= 1:
            for args in calls:
                on_done(fn(*args))
            return
        pool, here = self._workers(), self._this_process()
        free: dict[cf.Executor, int] = {pool: self.workers - 1, here: 1}
        waiting = deque(calls)
        running: dict[cf.Future, cf.Executor] = {}
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        while waiting or running:
            for executor in (pool, here):  # spawned processes first: they take longest to start
                while waiting and free[executor]:
                    if executor is pool:  # it starts its processes on submit: they inherit the worker environment
                        with environ(worker_env(threads)):
                            fut = pool.submit(fn, *waiting.popleft())
                    else:
                        fut = here.submit(fn, *waiting.popleft())
                    running[fut] = executor
                    free[executor] -= 1
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                free[running.pop(fut)] += 1
                on_done(fut.result())

    def _run_source(self, step: SourceStep, work: Path, todo: list[int], progress: Progress) -> None:
        if step.parallel_units and self.workers > 1 and len(todo) > 1:
            self._map_units(step, work, todo, progress)
        else:
            super()._run_source(step, work, todo, progress)

    def _workers(self) -> cf.ProcessPoolExecutor:
        # One pool for the whole run: starting Python and importing polars costs seconds per
        # worker. spawn, not fork: polars and Arrow hold thread pools that do not survive a
        # fork. Each worker gets its share of the cores for polars' own threads (worker_env).
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.workers - 1, mp_context=mp.get_context("spawn"))
        return self._pool

    def _this_process(self) -> cf.ThreadPoolExecutor:
        if self._here is None:
            self._here = cf.ThreadPoolExecutor(1, thread_name_prefix="corpusforge-task")
        return self._here

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._here is not None:
            self._here.shutdown(wait=True, cancel_futures=True)
            self._here = None


def _merge_stats(step: Step, work: Path, keys: list[str], seconds: float, resumed: int) -> dict[str, Any]:
    rows_in: Counter[str] = Counter()
    rows_out: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    counters: Counter[str] = Counter()
    for key in keys:
        rec = read_json(work / PROGRESS / f"{key}.json")
        rows_in.update(rec["rows_in"])
        rows_out.update(rec["rows_out"])
        dropped.update(rec["dropped"])
        counters.update(rec["counters"])
    return {
        "step": step.name,
        "description": step.description,
        "rows_in": dict(sorted(rows_in.items())),
        "rows_out": dict(sorted(rows_out.items())),
        "dropped": dict(sorted(dropped.items())),
        "dropped_total": sum(dropped.values()),
        "counters": dict(sorted(counters.items())),
        "tasks": len(keys),
        "tasks_resumed": resumed,
        "seconds": round(seconds, 3),
    }


EXECUTORS = ("local", "ray")


def make_executor(kind: str, workers: int = 0, ray_address: str | None = None) -> Executor:
    """The executor ``kind`` (one of :data:`EXECUTORS`).

    ``workers``: local worker processes, or the CPUs of a local Ray; 0 = every core.
    ``ray_address``: a running Ray cluster to use instead of starting a local Ray (ray only).
    """
    if kind == "local":
        return LocalExecutor(workers or os.cpu_count() or 1)
    if kind == "ray":
        from pipelines.core.ray_executor import RayExecutor  # Ray is imported only when asked for

        return RayExecutor(address=ray_address, num_cpus=workers or None)
    raise ValueError(f"unknown executor {kind!r}: use one of {', '.join(map(repr, EXECUTORS))}")
