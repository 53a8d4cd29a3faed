"""The environment worker processes start with: polars' threads and its allocator's decay."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import subprocess
import sys

import polars as pl

from pipelines.core.executor import LocalExecutor
from pipelines.core.step import Pipeline, StepResult
from pipelines.core.workerenv import JEMALLOC_ENV, POLARS_DECAY, WORKER_DECAY, allocator_conf, environ, worker_env
from tests.pipelines.core.test_ray_executor import _doubled, allocator_decay, tiny_pipeline


def test_worker_decay_comes_first_and_the_user_s_settings_last():
    assert allocator_conf("") == WORKER_DECAY
    assert allocator_conf(POLARS_DECAY) == WORKER_DECAY  # polars' interactive default is replaced
    assert allocator_conf(f"{POLARS_DECAY},dirty_decay_ms:0") == f"{WORKER_DECAY},dirty_decay_ms:0"  # the user's wins
    assert allocator_conf(f"{POLARS_DECAY},thp:always,metadata_thp:always") == f"{WORKER_DECAY},thp:always,metadata_thp:always"
    assert worker_env(3)["POLARS_MAX_THREADS"] == "3"


def test_polars_allocator_takes_the_worker_settings():
    # jemalloc prints its options at exit (stats_print): the string we give is one it accepts
    env = {**os.environ, JEMALLOC_ENV: allocator_conf(POLARS_DECAY) + ",stats_print:true"}
    out = subprocess.run(
        [sys.executable, "-c", "import polars as pl; pl.DataFrame({'a': [1]}).sum()"],
        env=env, capture_output=True, text=True, check=True,
    )
    stats = out.stdout + out.stderr
    assert "opt.dirty_decay_ms: 10000" in stats and "opt.muzzy_decay_ms: 10000" in stats


HERE = -1  # what a task reports when it ran in the test's own process (one of the local workers)


def polars_settings(frames: dict[str, pl.DataFrame], params: None) -> StepResult:
    return StepResult({"doubled": frames["rows"].with_columns(pl.lit(pl.thread_pool_size(), dtype=pl.Int64).alias("value"))})


def _in_spawned_worker(transform):
    def report(frames: dict[str, pl.DataFrame], params: None) -> StepResult:
        if mp.parent_process() is None:
            return StepResult({"doubled": frames["rows"].with_columns(pl.lit(HERE, dtype=pl.Int64).alias("value"))})
        return transform(frames, params)

    return report


def decay_in_spawned_worker(frames: dict[str, pl.DataFrame], params: None) -> StepResult:
    return _in_spawned_worker(allocator_decay)(frames, params)


def threads_in_spawned_worker(frames: dict[str, pl.DataFrame], params: None) -> StepResult:
    return _in_spawned_worker(polars_settings)(frames, params)


def test_spawned_local_workers_start_with_their_share_of_threads_and_the_worker_decay(tmp_path):
    pipeline = tiny_pipeline(tmp_path)
    before = os.environ.get(JEMALLOC_ENV)
    for name, transform, expected in (
        ("decay", decay_in_spawned_worker, 10_000),
        ("threads", threads_in_spawned_worker, max(1, (os.cpu_count() or 1) // 2)),
    ):
        step = dataclasses.replace(pipeline.step("double"), transform=transform)
        executor = LocalExecutor(2)
        try:
            executor.run(Pipeline("tiny", (pipeline.step("rows"), step)), tmp_path / name)
        finally:
            executor.close()
        # this process runs tasks too; the spawned worker's tasks see the worker settings
        assert set(_doubled(tmp_path / name)["value"].to_list()) == {expected, HERE}, name
    assert os.environ.get(JEMALLOC_ENV) == before  # the driver's own allocator settings are untouched


def test_the_driver_s_environment_is_restored(monkeypatch):
    monkeypatch.setenv("POLARS_MAX_THREADS", "7")
    monkeypatch.delenv("CF_UNSET_BEFORE", raising=False)
    with environ({"POLARS_MAX_THREADS": "1", "CF_UNSET_BEFORE": "x"}):
        assert (os.environ["POLARS_MAX_THREADS"], os.environ["CF_UNSET_BEFORE"]) == ("1", "x")
    assert os.environ["POLARS_MAX_THREADS"] == "7" and "CF_UNSET_BEFORE" not in os.environ


def test_importing_pipelines_first_gives_the_process_the_worker_decay():
    probe = "import pipelines, polars, os; print(os.environ['_RJEM_MALLOC_CONF'])"
    env = {k: v for k, v in os.environ.items() if k != JEMALLOC_ENV}
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert first.strip() == f"{POLARS_DECAY},{WORKER_DECAY}"  # polars puts its defaults first; ours come after and win
    late = "import polars, pipelines, os; print(os.environ['_RJEM_MALLOC_CONF'])"
    second = subprocess.run([sys.executable, "-c", late], env=env, capture_output=True, text=True, check=True).stdout
    assert second.strip() == POLARS_DECAY  # too late: polars' allocator has started with its own
