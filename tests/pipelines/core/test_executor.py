"""The local executor: where a source step's units are read."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest

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
def test_units_are_read_by_the_workers_only_when_the_step_asks(tmp_path, parallel_units):
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
        assert os.getpid() not in readers and 1 <= len(readers) <= 2  # the pool's processes
    else:
        assert readers == {os.getpid()}  # one after another, here
    # where units are read is not part of what they give: the same fingerprint either way
    other = dataclasses.replace(pipeline.steps[0], parallel_units=not parallel_units)
    again = LocalExecutor(1).run(Pipeline("rows", (other,)), serial)
    assert again["rows"].skipped
