"""Stage directories: where each step's output lives, and how it becomes visible atomically.

Layout of one pipeline's stages (``root`` is e.g. ``workspace/sad/stages``)::

    <step>/<output>/p00007/*.parquet   rows of partition 7 (one or more files)
    <step>/_rejects/*.parquet          dropped rows with drop_reason (and file/line where known)
    <step>/_progress/*.json            stats of each finished unit or partition
    <step>/_stats.json                 rows in/out, drops per reason, counters, time
    <step>/_fingerprint.json           what the output was computed from
    <step>/_SUCCESS                    written last

A step is computed in ``.tmp/<step>-<fingerprint>/``; finished units and partitions survive a
crash there and are not redone. When the step completes, the directory is renamed onto
``<step>/`` (the old one first moved aside), so readers only ever see complete stages.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.core.faults import fault_point
from pipelines.core.fileio import TMP_MARK, atomic_write_json, read_json

SUCCESS = "_SUCCESS"
FINGERPRINT = "_fingerprint.json"
STATS = "_stats.json"
PROGRESS = "_progress"
REJECTS = "_rejects"


def part_dir(output_dir: Path, partition: int) -> Path:
    return output_dir / f"p{partition:05d}"


@dataclass(frozen=True)
class StageStore:
    root: Path

    def final(self, step: str) -> Path:
        return self.root / step

    def working(self, step: str, fingerprint: str) -> Path:
        return self.root / ".tmp" / f"{step}-{fingerprint[:16]}"

    def is_current(self, step: str, fingerprint: str) -> bool:
        d = self.final(step)
        if not (d / SUCCESS).exists() or not (d / FINGERPRINT).exists():
            return False
        return read_json(d / FINGERPRINT).get("fingerprint") == fingerprint

    def fingerprint_of(self, step: str) -> str | None:
        f = self.final(step) / FINGERPRINT
        if not (self.final(step) / SUCCESS).exists() or not f.exists():
            return None
        return read_json(f).get("fingerprint")

    def begin(self, step: str, fingerprint: str) -> Path:
        """The working directory for this fingerprint (kept across crashes); others are removed."""
        work = self.working(step, fingerprint)
        tmp_root = self.root / ".tmp"
        if tmp_root.exists():
            for stale in tmp_root.glob(f"{step}-*"):
                if stale != work:
                    shutil.rmtree(stale, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        for leftover in work.rglob(f"*{TMP_MARK}*"):
            leftover.unlink(missing_ok=True)
        return work

    def commit(self, step: str, work: Path, fingerprint_record: dict[str, Any], stats: dict[str, Any]) -> Path:
        """Write the markers and swap the working directory into place."""
        atomic_write_json(work / STATS, stats)
        atomic_write_json(work / FINGERPRINT, fingerprint_record)
        (work / SUCCESS).write_text("")
        fault_point(f"executor.commit.before_rename:{step}")
        return self._swap_in(step, work)

    def recover(self, step: str, fingerprint: str) -> bool:
        """Finish a swap that a crash interrupted: a complete working dir waiting to be renamed."""
        work = self.working(step, fingerprint)
        if (work / SUCCESS).exists() and not self.is_current(step, fingerprint):
            self._swap_in(step, work)
            return True
        return False

    def _swap_in(self, step: str, work: Path) -> Path:
        """Rename a complete working directory onto ``<step>/``; the old one is moved aside first."""
        final = self.final(step)
        if final.exists():
            trash = self.root / ".trash" / f"{step}-{uuid.uuid4().hex[:8]}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(final, trash)
            fault_point(f"stage.swap.moved_aside:{step}")  # the old stage is in .trash, the new one not yet in place
        os.replace(work, final)
        shutil.rmtree(self.root / ".trash", ignore_errors=True)
        return final

    # -- reading finished stages

    def partition_files(self, step: str, output: str, partition: int) -> list[Path]:
        return sorted(part_dir(self.final(step) / output, partition).glob("*.parquet"))

    def read_partition(self, step: str, output: str, partition: int, schema: pl.Schema) -> pl.DataFrame:
        files = self.partition_files(step, output, partition)
        if not files:
            return pl.DataFrame(schema=schema)
        return pl.concat([pl.read_parquet(f) for f in files], how="vertical")

    def scan(self, step: str, output: str, schema: pl.Schema) -> pl.LazyFrame:
        """All partitions of an output in partition order (deterministic)."""
        files = sorted((self.final(step) / output).glob("p*/*.parquet"))
        if not files:
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(files, schema=schema)

    def read(self, step: str, output: str, schema: pl.Schema) -> pl.DataFrame:
        return self.scan(step, output, schema).collect()

    def rejects(self, step: str) -> pl.DataFrame:
        files = sorted((self.final(step) / REJECTS).glob("*.parquet"))
        if not files:
            return pl.DataFrame()
        return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")

    def stats(self, step: str) -> dict[str, Any]:
        return read_json(self.final(step) / STATS)
