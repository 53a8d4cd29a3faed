"""The Ray executor on a real (local, two-CPU) Ray: same outputs as the local executor, resume,
errors, resources, and the configuration that selects it."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from corpusforge.config import load_settings
from pipelines.core.errors import CorpusforgeError
from pipelines.core.executor import LocalExecutor, fingerprint, make_executor
from pipelines.core.progress import Progress
from pipelines.core.ray_executor import RayExecutor
from pipelines.core.stage import StageStore
from pipelines.core.workerenv import JEMALLOC_ENV
from pipelines.core.step import Input, MapStep, Output, Pipeline, SourceStep, SourceUnit, StepResult
from pipelines.sad.pipeline import build_sad, read_candidate
from pipelines.sad.settings import SadSettings, SadSources
from tests.conftest import SAD_SAMPLE
from tests.pipelines.sad.dumps import thread, write_lines

PARTITIONS = 4


class RecordingProgress(Progress):
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.advanced: dict[str, int] = {}

    def step_started(self, step: str, total: int, unit: str) -> None:
        self.totals[step] = total

    def advance(self, step: str, n: int = 1) -> None:
        self.advanced[step] = self.advanced.get(step, 0) + n


# --------------------------------------------------------------------------- SAD, local vs Ray


def _sad_inputs(tmp_path: Path) -> list[Path]:
    generated = [row for i in range(300) for row in thread(f"g{i}")]
    return [SAD_SAMPLE / "reddit", write_lines(tmp_path / "generated.jsonl.zst", generated, compression="zst")]


def test_sad_build_on_ray_equals_the_local_build(tmp_path, ray_owner):
    inputs = _sad_inputs(tmp_path)
    settings = SadSettings(sources=SadSources(partitions=PARTITIONS))
    local = build_sad(inputs, settings, tmp_path / "local", LocalExecutor(1))
    progress = RecordingProgress()
    on_ray = build_sad(inputs, settings, tmp_path / "ray", RayExecutor(), progress)

    assert list(on_ray.steps) == list(local.steps)
    for name, outcome in on_ray.steps.items():
        assert not outcome.skipped
        for key in ("rows_in", "rows_out", "dropped", "counters", "tasks"):
            assert outcome.stats[key] == local.steps[name].stats[key], (name, key)
        saved = json.loads((tmp_path / "ray" / name / "_stats.json").read_text())
        assert saved["rows_out"] == json.loads((tmp_path / "local" / name / "_stats.json").read_text())["rows_out"]
    assert on_ray.steps["ingest"].stats["tasks"] == 3  # one Ray task per input file
    assert on_ray.steps["build_dialogues"].stats["tasks"] == PARTITIONS
    assert on_ray.counts["dialogues"] > 300
    expected = read_candidate(tmp_path / "local")
    for table, frame in read_candidate(tmp_path / "ray").items():
        assert frame.equals(expected[table]), table
    store_local, store_ray = StageStore(tmp_path / "local"), StageStore(tmp_path / "ray")
    assert store_ray.rejects("build_dialogues").equals(store_local.rejects("build_dialogues"))
    # the bars advance to their totals: bytes for the source step, partitions for the others
    assert progress.advanced == progress.totals
    # this executor did not start the module's Ray, so it left it running
    assert ray_owner.connect().is_initialized()


# --------------------------------------------------------------------------- a tiny pipeline

ROWS = pl.Schema({"id": pl.Int64, "value": pl.Int64})


def read_rows(unit: SourceUnit, params: Any, emitter) -> None:
    emitter.emit("rows", pl.read_parquet(unit.path))


def by_id(df: pl.DataFrame, partitions: int) -> pl.Series:
    return (df["id"] % partitions).cast(pl.Int32)


@dataclasses.dataclass(frozen=True)
class Flaky:
    """``fail_partition`` raises once (until ``marker`` exists); every call is logged in ``calls``."""

    fail_partition: int
    marker: str
    calls: str
    stages: str


def double_values(frames: dict[str, pl.DataFrame], params: Flaky | None) -> StepResult:
    rows = frames["rows"]
    if params is not None:
        partition = int(rows["id"][0]) % PARTITIONS
        with open(params.calls, "a") as log:
            log.write(f"{partition}\n")
        if partition == params.fail_partition and not Path(params.marker).exists():
            _wait_for_progress_records(Path(params.stages), 2)
            Path(params.marker).touch()
            raise ValueError(f"partition {partition} failed on purpose (value {int(rows['value'][0])})")
    return StepResult({"doubled": rows.with_columns(pl.col("value") * 2)}, counters={"partitions": 1})


def _wait_for_progress_records(stages: Path, n: int) -> None:
    # fail only once other partitions are finished, so that the rerun has something to resume
    deadline = time.monotonic() + 30
    while len(list(stages.glob(".tmp/double-*/_progress/p*.json"))) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def tiny_pipeline(tmp_path: Path, params: Flaky | None = None, resources: tuple = ()) -> Pipeline:
    units = []
    for f in range(2):
        ids = list(range(f * 20, f * 20 + 20))
        path = tmp_path / f"rows{f}.parquet"
        pl.DataFrame({"id": ids, "value": [i * 10 for i in ids]}, schema=ROWS).write_parquet(path)
        units.append(SourceUnit(str(path), f"hash{f}", path.stat().st_size))
    source = SourceStep("rows", "1", "test rows", read_rows, (Output("rows", ROWS),), by_id, tuple(units), PARTITIONS)
    double = MapStep(
        "double", "1", "values times two", double_values, (Input("rows", "rows.rows", ("id", "value")),),
        (Output("doubled", ROWS),), params=params, resources=resources,
    )
    return Pipeline("tiny", (source, double))


def _doubled(stages: Path) -> pl.DataFrame:
    return StageStore(stages).read("double", "doubled", ROWS).sort("id")


def test_failed_task_reaches_the_caller_and_the_rerun_resumes(tmp_path, ray_owner):
    stages = tmp_path / "stages"
    calls = tmp_path / "calls.log"
    pipeline = tiny_pipeline(tmp_path, Flaky(3, str(tmp_path / "failed-once"), str(calls), str(stages)))
    with pytest.raises(ValueError, match=r"^partition 3 failed on purpose \(value 30\)$"):
        RayExecutor().run(pipeline, stages)
    assert not (stages / "double").exists()
    finished = {int(p.stem[1:]) for p in stages.glob(".tmp/double-*/_progress/p*.json")}
    assert len(finished) >= 2 and 3 not in finished
    calls_before = len(calls.read_text().split())

    outcomes = RayExecutor().run(pipeline, stages)
    assert outcomes["rows"].skipped
    assert outcomes["double"].stats["tasks_resumed"] == len(finished)
    assert outcomes["double"].stats["counters"] == {"partitions": PARTITIONS}
    redone = [int(p) for p in calls.read_text().split()[calls_before:]]
    assert sorted(redone) == sorted(set(range(PARTITIONS)) - finished)  # finished partitions were not redone
    assert _doubled(stages)["value"].to_list() == [i * 20 for i in range(40)]


def test_step_resources_schedule_on_ray_and_are_ignored_locally(tmp_path, ray_owner):
    pipeline = tiny_pipeline(tmp_path, resources=(("num_cpus", 1.0),))
    RayExecutor().run(pipeline, tmp_path / "ray")
    LocalExecutor(1).run(pipeline, tmp_path / "local")
    assert _doubled(tmp_path / "ray").equals(_doubled(tmp_path / "local"))
    assert _doubled(tmp_path / "ray")["value"].to_list() == [i * 20 for i in range(40)]
    # resources change where a step runs, not what it produces: same fingerprint
    plain = tiny_pipeline(tmp_path)
    upstream = {"rows": "f" * 64}
    assert fingerprint(pipeline.step("double"), upstream) == fingerprint(plain.step("double"), upstream)


def polars_threads(frames: dict[str, pl.DataFrame], params: None) -> StepResult:
    rows = frames["rows"]
    return StepResult({"doubled": rows.with_columns(pl.lit(pl.thread_pool_size(), dtype=pl.Int64).alias("value"))})


def allocator_decay(frames: dict[str, pl.DataFrame], params: None) -> StepResult:
    """The dirty-page decay (ms) that the worker's jemalloc was started with."""
    return StepResult({"doubled": frames["rows"].with_columns(pl.lit(effective_decay(), dtype=pl.Int64).alias("value"))})


def effective_decay() -> int:
    settings = os.environ.get(JEMALLOC_ENV, "").split(",")
    return int([s for s in settings if s.startswith("dirty_decay_ms:")][-1].split(":")[1])  # the last one wins


@pytest.mark.parametrize("cpus", [1, 2])
def test_a_ray_task_s_polars_uses_as_many_threads_as_it_has_cpus(tmp_path, ray_owner, cpus):
    # one-CPU tasks run in the workers Ray starts ahead (their environment says one thread);
    # a task with more CPUs gets workers of its own, with its count
    pipeline = tiny_pipeline(tmp_path)
    threads = dataclasses.replace(pipeline.step("double"), transform=polars_threads, resources=(("num_cpus", float(cpus)),))
    RayExecutor().run(Pipeline("tiny", (pipeline.step("rows"), threads)), tmp_path / "stages")
    assert set(_doubled(tmp_path / "stages")["value"].to_list()) == {cpus}


@pytest.mark.parametrize("cpus", [1, 2])
def test_ray_workers_keep_freed_memory_for_ten_seconds(tmp_path, ray_owner, cpus):
    pipeline = tiny_pipeline(tmp_path)
    decay = dataclasses.replace(pipeline.step("double"), transform=allocator_decay, resources=(("num_cpus", float(cpus)),))
    RayExecutor().run(Pipeline("tiny", (pipeline.step("rows"), decay)), tmp_path / "stages")
    assert set(_doubled(tmp_path / "stages")["value"].to_list()) == {10_000}


@pytest.mark.parametrize(
    ("resources", "named"),
    [((("tpu_slice", 1.0),), "'tpu_slice'"), ((("num_cpus", 64.0),), "'CPU'")],
)
def test_a_step_no_node_can_run_is_refused_at_once(tmp_path, ray_owner, resources, named):
    started = time.monotonic()
    with pytest.raises(CorpusforgeError, match="step 'double' needs") as err:
        RayExecutor().run(tiny_pipeline(tmp_path, resources=resources), tmp_path / "stages")
    assert named in str(err.value) and "CPU 2" in str(err.value)  # what is missing, and what there is
    assert time.monotonic() - started < 30
    assert (tmp_path / "stages" / "rows" / "_SUCCESS").exists()  # the steps before it are kept


# --------------------------------------------------------------------------- choosing the executor


def test_make_executor_kinds():
    on_ray = make_executor("ray", 3, "auto")
    assert isinstance(on_ray, RayExecutor) and on_ray.name == "ray"
    assert (on_ray.address, on_ray.num_cpus) == ("auto", 3)
    assert make_executor("ray", 0).num_cpus is None  # 0: every core
    assert isinstance(make_executor("local", 2), LocalExecutor)
    with pytest.raises(ValueError, match="unknown executor 'spark': use one of 'local', 'ray'"):
        make_executor("spark")


def test_config_selects_the_ray_executor(tmp_path, ray_owner):
    from corpusforge.ops import sad

    overrides = ["executor.kind=ray", f"workspace.path={json.dumps(str(tmp_path / 'ws'))}", "sad.sources.partitions=2"]
    settings = load_settings(None, overrides, env={})
    assert settings.executor.kind == "ray" and settings.executor.ray_address is None
    result = sad.build([SAD_SAMPLE / "reddit"], settings)
    assert result.steps["assemble"].stats["tasks"] == 2 and result.counts["dialogues"] > 0
    with_address = load_settings(None, ["executor.kind=ray", "executor.ray_address=auto"], env={})
    assert with_address.executor.ray_address == "auto"


# --------------------------------------------------------------------------- PolyRefuse translation on Ray


def test_polyrefuse_translation_runs_as_ray_tasks_with_the_local_results(tmp_path, ray_owner):
    """The translate and back-translate steps, one Ray task per partition, share the SQLite cache
    and a real HTTP translation server; the candidate equals the local executor's."""
    from pipelines.polyrefuse.pipeline import build_polyrefuse, read_candidate as polyrefuse_candidate
    from tests.pipelines.polyrefuse.openai_stub import OpenAIStub
    from tests.pipelines.polyrefuse.test_model_build import http_settings, write_sources

    sources = write_sources(tmp_path / "src")
    with OpenAIStub() as stub:
        settings = http_settings(stub, languages=("de", "ja"), back_translation={"backend": "same"}, partitions=PARTITIONS)
        on_ray = build_polyrefuse(sources, settings, tmp_path / "ray" / "stages", RayExecutor())
        sent = len(stub.completions())
        local = build_polyrefuse(sources, settings, tmp_path / "local" / "stages", LocalExecutor(1))
    assert on_ray.steps["translate"].stats["tasks"] == PARTITIONS
    assert on_ray.steps["translate"].stats["counters"]["translated"] == 2 * 18 and sent == 2 * 2 * 18
    assert local.steps["translate"].stats["counters"]["translated"] == 2 * 18  # its own cache: translated again
    expected = polyrefuse_candidate(tmp_path / "local" / "stages")
    for table, frame in polyrefuse_candidate(tmp_path / "ray" / "stages").items():
        assert frame.equals(expected[table]), table
