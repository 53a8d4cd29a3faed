"""The workspace side of an annotation project: task map, push journal, pull snapshots.

Layout (under ``<workspace>/annotation/<dataset>/<backend>/``)::

    project.json              server URL, project id, spec name and fingerprint
    tasks.jsonl               item id -> task id, appended after every committed chunk
    pending.json              the chunk being imported (item ids, newest task id before it)
    pulls/<UTC timestamp>/    one immutable snapshot per pull:
        export.json           the server's raw export, byte for byte
        judgments.parquet     one row per annotation that parsed: item, annotator, answers
        rejects.jsonl         annotations that did not (unknown label, ...), with the reason
        summary.json          counts, and what changed since the previous pull
    merged/<UTC timestamp>/   merged labels and the adjudication queue (annotation.merge)

Snapshot files are written under a temporary name, renamed, then made read-only; a pull never
writes into an existing snapshot. The task map is append-only: a crash can at worst leave a
truncated last line, which is ignored (the journal makes the next push recover those tasks
from the server instead).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from pipelines.core import faults
from pipelines.core.faults import fault_point, fault_write
from pipelines.core.fileio import atomic_write_json

JUDGMENT_COLUMNS = (
    "item_id", "task_id", "annotation_id", "annotator", "simulated", "created_at", "updated_at", "answers",
)


SNAPSHOT_NAME = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z")  # utc_stamp(): the name of every snapshot


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def make_read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if p.is_file():
            p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


@dataclass(frozen=True)
class ProjectState:
    root: Path
    # the task map as last read: {"key": (inode, bytes read, last line read), "map": {...}} (see _current_map)
    _map_cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- project

    def project(self) -> dict[str, Any] | None:
        path = self.root / "project.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def save_project(self, info: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.root / "project.json", info)

    # -- task map

    def _task_rows(self, start: int = 0) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        """(end offset, raw line, row) of each complete line of tasks.jsonl from byte ``start`` on."""
        path = self.root / "tasks.jsonl"
        if not path.exists():
            return
        with path.open("rb") as f:
            f.seek(start)
            offset = start
            for line in f:
                if not line.endswith(b"\n"):
                    return  # truncated by a crash: the journal recovers these from the server
                offset += len(line)
                yield offset, line, json.loads(line)

    def _current_map(self) -> dict[str, int]:
        """The task map, read incrementally (a push records a chunk at a time, and re-reading the
        whole file each time made a push quadratic in its size). The file only grows by appends;
        :meth:`forget_tasks` replaces it and a torn tail gets cut, so the cache is used only when
        the file is the same inode, no shorter than what was read, and still holds the last line
        read at the same place; otherwise the map is read again from the start. Callers must not
        modify the dict returned."""
        path = self.root / "tasks.jsonl"
        try:
            st = path.stat()
        except FileNotFoundError:
            self._map_cache.clear()
            return {}
        inode, read, last = self._map_cache.get("key", (None, 0, b""))
        if inode != st.st_ino or st.st_size < read or not self._still_holds(path, read, last):
            self._map_cache.update(key=(st.st_ino, 0, b""), map={})
            read, last = 0, b""
        mapping = self._map_cache["map"]
        if st.st_size > read:
            for read, last, row in self._task_rows(read):
                mapping[row["item_id"]] = int(row["task_id"])
            self._map_cache["key"] = (st.st_ino, read, last)
        return mapping

    @staticmethod
    def _still_holds(path: Path, end: int, line: bytes) -> bool:
        if not line:
            return end == 0
        with path.open("rb") as f:
            f.seek(end - len(line))
            return f.read(len(line)) == line

    def task_map(self) -> dict[str, int]:
        return dict(self._current_map())

    def assignments(self) -> dict[str, list[str]]:
        """Item id -> annotators it was routed to (items routed to anyone are absent)."""
        return {row["item_id"]: row["assigned"] for _, _, row in self._task_rows() if row.get("assigned")}

    def record_tasks(self, pairs: Iterable[tuple[str, int]], assigned: Mapping[str, Sequence[str]] | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        assigned = assigned or {}
        # Idempotent: a push killed after appending a chunk but before closing its journal
        # recovers the same (item, task) pairs on the rerun; they are not appended twice.
        known = self._current_map()
        pairs = [(i, t) for i, t in pairs if known.get(i) != t]
        text = "".join(json.dumps({"item_id": i, "task_id": t, "assigned": list(assigned.get(i, ()))}) + "\n" for i, t in pairs)
        path = self.root / "tasks.jsonl"
        if path.exists() and path.stat().st_size:
            with path.open("rb") as f:  # drop a truncated tail before appending after it
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._truncate_partial_line(path)
        with path.open("a", encoding="utf-8") as f:
            if text and faults.ACTIVE:
                half = len(text) // 2  # crash tests: a kill here leaves a truncated last line
                f.write(text[:half])
                f.flush()
                fault_point("annotation.tasks.append", path)
                f.write(text[half:])
            else:
                f.write(text)
            f.flush()
            os.fsync(f.fileno())
        fault_point("annotation.tasks.appended", path)

    @staticmethod
    def _truncate_partial_line(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: data.rfind(b"\n") + 1])

    def forget_tasks(self, item_ids: set[str]) -> None:
        """Drop items from the map (their tasks were deleted on the server and will be re-pushed)."""
        keep = [row for _, _, row in self._task_rows() if row["item_id"] not in item_ids]
        tmp = self.root / "tasks.jsonl.tmp"
        tmp.write_text("".join(json.dumps(row) + "\n" for row in keep), encoding="utf-8")
        fault_write(self.root / "tasks.jsonl", tmp)
        os.replace(tmp, self.root / "tasks.jsonl")

    # -- push journal

    def pending(self) -> dict[str, Any] | None:
        path = self.root / "pending.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def begin_chunk(self, item_ids: list[str], newest_task_id: int) -> None:
        atomic_write_json(self.root / "pending.json", {"item_ids": item_ids, "newest_task_id_before": newest_task_id})

    def end_chunk(self) -> None:
        fault_point("annotation.chunk.before_end", self.root / "pending.json")
        (self.root / "pending.json").unlink(missing_ok=True)

    # -- pull snapshots

    @property
    def pulls(self) -> Path:
        return self.root / "pulls"

    def snapshots(self) -> list[Path]:
        """Committed snapshots, oldest first: folders named by :func:`utc_stamp` (never a symlink)."""
        if not self.pulls.exists():
            return []
        return sorted(p for p in self.pulls.iterdir()
                      if SNAPSHOT_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink() and (p / "summary.json").exists())

    def snapshot(self, name: str) -> Path:
        """The committed snapshot called ``name`` (a :func:`utc_stamp`); anything else (a path, ``..``,
        a symlink, a snapshot that is not there) is a :class:`ValueError` saying which exist."""
        if not isinstance(name, str) or not SNAPSHOT_NAME.fullmatch(name):
            raise ValueError(f"invalid snapshot name {name!r}: snapshots are named by their UTC stamp, e.g. {utc_stamp()}")
        path = self.pulls / name
        if path not in self.snapshots():
            known = ", ".join(p.name for p in self.snapshots()[-3:]) or "none yet"
            raise ValueError(f"no snapshot {name!r} in {self.pulls} (latest: {known})")
        return path

    def latest_snapshot(self) -> Path | None:
        snaps = self.snapshots()
        return snaps[-1] if snaps else None

    def new_snapshot_dir(self) -> tuple[Path, Path]:
        """(temporary dir to fill, final name); :meth:`commit_snapshot` renames one to the other."""
        stamp = utc_stamp()
        final = self.pulls / stamp
        tmp = self.pulls / f".{stamp}.tmp"
        tmp.mkdir(parents=True)
        return tmp, final

    @staticmethod
    def commit_snapshot(tmp: Path, final: Path) -> Path:
        if final.exists():
            raise FileExistsError(f"snapshot {final} already exists; snapshots are never overwritten")
        for written in sorted(p for p in tmp.iterdir() if p.is_file()):
            fault_write(written, written)  # crash tests: a kill in the middle of a snapshot file
        make_read_only(tmp)
        fault_point("annotation.snapshot.before_rename", final)
        os.replace(tmp, final)
        fault_point("annotation.snapshot.after_rename", final)
        return final

    @property
    def merged(self) -> Path:
        return self.root / "merged"
