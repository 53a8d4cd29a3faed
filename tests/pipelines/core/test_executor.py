"""The local executor: where a source step's units are read."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipelines.core.errors import StepOutputError
from pipelines.core.executor import LocalExecutor
from pipelines.core.stage import StageStore
from pipelines.core.step import Output, Pipeline, SourceStep, SourceUnit

ROWS = pl.Schema({"id": pl.Int64, "value": pl.Int64, "pid": pl.Int64})


def read_rows(unit: SourceUnit, params: Any, emitter) -> None:
    df = pl.read_parquet(unit.path)
    emitter.emit("rows", df.with_columns(pl.lit(os.getpid(), dtype=pl.Int64).alias("pid")))


def one_partition(df: pl.DataFrame, partitions: int) -> pl.Series:
    return pl.Series([0] * df.height, dtype=pl.Int32)


def source_pipeline(tmp_path: Path, parallel_units: bool) -> Pipeline:
    units = []
    for f in range(4):
        path = tmp_path / f"rows{f}.parquet"
        ids = list(range(f * 10, f * 10 + 10))
        pl.DataFrame({"id": ids, "value": [i * 3 for i in ids]}).write_parquet(path)
        units.append(SourceUnit(str(path), f"hash{f}", path.stat().st_size))
    step = SourceStep("rows", "1", "rows", read_rows, (Output("rows", ROWS),), one_partition, tuple(units), 1,
                      parallel_units=parallel_units)
    return Pipeline("rows", (step,))


@pytest.mark.parametrize("parallel_units", [True, False])
def test_units_are_spread_over_the_workers_only_when_the_step_asks(tmp_path, parallel_units):
    pipeline = source_pipeline(tmp_path, parallel_units)
    serial = tmp_path / "serial"
    LocalExecutor(1).run(pipeline, serial)
    executor = LocalExecutor(2)
    try:
        executor.run(pipeline, tmp_path / "pooled")
    finally:
        executor.close()
    pooled = StageStore(tmp_path / "pooled").read("rows", "rows", ROWS).sort("id")
    expected = StageStore(serial).read("rows", "rows", ROWS).sort("id")
    assert pooled.drop("pid").equals(expected.drop("pid")) and pooled.height == 40
    readers = set(pooled.get_column("pid"))
    if parallel_units:
        assert os.getpid() in readers and len(readers) == 2  # this process and the spawned worker
    else:
        assert readers == {os.getpid()}  # one after another, here
    # where units are read is not part of what they give: the same fingerprint either way
    other = dataclasses.replace(pipeline.steps[0], parallel_units=not parallel_units)
    again = LocalExecutor(1).run(Pipeline("rows", (other,)), serial)
    assert again["rows"].skipped


def read_rows_split_on_threads(unit: SourceUnit, params: Any, emitter) -> None:
    """Rows conformed and cut by partition on worker threads, emitted from this one."""
    from concurrent.futures import ThreadPoolExecutor

    df = pl.read_parquet(unit.path).with_columns(pl.lit(0, dtype=pl.Int64).alias("pid"))
    with ThreadPoolExecutor(2) as pool:
        for rows in pool.map(lambda part: emitter.split("rows", part), df.iter_slices(3)):
            emitter.emit("rows", rows)


def by_parity(df: pl.DataFrame, partitions: int) -> pl.Series:
    return (df.get_column("id") % partitions).cast(pl.Int32)


def test_rows_split_on_other_threads_land_like_emitted_frames(tmp_path):
    pipeline = source_pipeline(tmp_path, parallel_units=False)
    step = dataclasses.replace(pipeline.steps[0], partition_by=by_parity, partitions=2)
    split = dataclasses.replace(step, read=read_rows_split_on_threads)
    LocalExecutor(1).run(Pipeline("rows", (step,)), tmp_path / "frames")
    LocalExecutor(1).run(Pipeline("rows", (split,)), tmp_path / "split")
    for p in (0, 1):
        got = StageStore(tmp_path / "split").read_partition("rows", "rows", p, ROWS)
        want = StageStore(tmp_path / "frames").read_partition("rows", "rows", p, ROWS)
        assert got.drop("pid").equals(want.drop("pid")) and got.height == 20
        assert set(got.get_column("id") % 2) == {p}
    assert StageStore(tmp_path / "split").stats("rows")["rows_out"] == StageStore(tmp_path / "frames").stats("rows")["rows_out"]


def test_rows_split_for_one_output_cannot_be_emitted_as_another(tmp_path):
    def mislabelled(unit: SourceUnit, params: Any, emitter) -> None:
        rows = emitter.split("rows", pl.read_parquet(unit.path).with_columns(pl.lit(0, dtype=pl.Int64).alias("pid")))
        emitter.emit("other", rows)

    pipeline = source_pipeline(tmp_path, parallel_units=False)
    step = dataclasses.replace(pipeline.steps[0], read=mislabelled, outputs=(Output("rows", ROWS), Output("other", ROWS)))
    with pytest.raises(StepOutputError, match="split for output 'rows' were emitted as 'other'"):
        LocalExecutor(1).run(Pipeline("rows", (step,)), tmp_path / "bad")
