"""Pull from the local Label Studio's own SQLite database, read-only, instead of its export API.

Label Studio's export serializes every task, annotation and prediction through Django REST
framework on the server's one process: about 2.8 ms per task with three annotations, so a pull of
100,000 tasks takes minutes whatever the client does (docs/benchmarks.md). When the server is the
local one that ``corpusforge annotate serve`` started, its database is a file in the workspace;
reading the same rows from it takes seconds.

The reader is careful about whose file it reads:

- it opens the database read-only (``mode=ro``; the server keeps it in WAL mode, so reading
  never blocks the server's writes) and reads everything in one transaction, a consistent
  snapshot of the project;
- it checks the tables and columns it reads (Label Studio 1.23's schema) and that the project
  it was asked for is there with the server's title and task count; when any check fails it
  says why (:class:`DatabaseUnusable`) and the caller falls back to the export API.

The JSON it writes has the export's shape for the fields a pull reads: ``id``, ``data``,
``annotations`` (``id``, ``completed_by``, ``result``, ``was_cancelled``, ``ground_truth``,
``lead_time``, ``created_at``, ``updated_at``, ``task``), timestamps formatted as the API formats
them; predictions and drafts are left out.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# what the reader reads, table -> columns (Label Studio 1.23.2's schema)
SCHEMA = {
    "project": ("id", "title"),
    "task": ("id", "data", "project_id"),
    "task_completion": ("id", "task_id", "completed_by_id", "result", "was_cancelled", "ground_truth", "lead_time", "created_at", "updated_at"),
}
BATCH = 5000  # tasks per batch handed to the parser


class DatabaseUnusable(Exception):
    """The database cannot stand in for the export API; the message says why."""


def api_time(value: str | None) -> str | None:
    """Django's SQLite timestamp (UTC, ``YYYY-MM-DD HH:MM:SS[.ffffff]``) as the API writes it (ISO 8601, ``Z``)."""
    return None if value is None else value.replace(" ", "T", 1) + "Z"


class LabelStudioDatabase:
    """A read-only view of one project in the local server's database (a context manager)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DatabaseUnusable(f"no database file at {self.path}")
        try:
            self._conn = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, timeout=30, isolation_level=None)
            self._conn.execute("BEGIN")  # one read transaction: every query sees the same snapshot
            self._check_schema()
        except sqlite3.Error as exc:
            raise DatabaseUnusable(f"cannot read {self.path}: {exc}") from None

    def __enter__(self) -> LabelStudioDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def _check_schema(self) -> None:
        for table, columns in SCHEMA.items():
            have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            missing = [c for c in columns if c not in have]
            if missing:
                raise DatabaseUnusable(f"{self.path} is not the schema this reader knows: table {table} lacks {', '.join(missing)}")

    def check_project(self, project_id: int, title: str, task_number: int) -> None:
        """Raise :class:`DatabaseUnusable` unless project ``project_id`` is here as the server describes it."""
        row = self._conn.execute("SELECT title FROM project WHERE id = ?", (project_id,)).fetchone()
        if row is None:
            raise DatabaseUnusable(f"{self.path} has no project {project_id}: it is not this server's database")
        if row[0] != title:
            raise DatabaseUnusable(f"project {project_id} in {self.path} is titled {row[0]!r}, the server's {title!r}: not this server's database")
        tasks = self.task_count(project_id)
        if tasks != task_number:
            raise DatabaseUnusable(f"project {project_id} in {self.path} has {tasks} tasks, the server reports {task_number}: not this server's database")

    def task_count(self, project_id: int) -> int:
        return self._conn.execute("SELECT count(*) FROM task WHERE project_id = ?", (project_id,)).fetchone()[0]

    def tasks(self, project_id: int, batch: int = BATCH) -> Iterator[tuple[bytes, list[dict[str, Any]]]]:
        """Every task of the project with its annotations, in task id order, ``batch`` tasks at a time.

        Each batch comes twice: as the JSON list ``export.json`` gets (the database's own JSON
        texts spliced in, each one checked by parsing it), and as task dicts for the parser, whose
        annotations carry their ``result`` as that JSON text (the parser reads each distinct
        text once: most annotations repeat a few label combinations).
        """
        tasks = self._conn.execute("SELECT id, data FROM task WHERE project_id = ? ORDER BY id", (project_id,))
        while rows := tasks.fetchmany(batch):
            parsed = [{"id": task_id, "data": _load(data, f"task {task_id}"), "annotations": []} for task_id, data in rows]
            by_id = {t["id"]: t["annotations"] for t in parsed}
            texts: dict[int, list[str]] = {task_id: [] for task_id, _ in rows}
            checked: set[str] = set()
            annotations = self._conn.execute(
                "SELECT a.id, a.task_id, a.completed_by_id, a.result, a.was_cancelled, a.ground_truth, a.lead_time, a.created_at, a.updated_at"
                " FROM task_completion a JOIN task t ON t.id = a.task_id"
                " WHERE t.project_id = ? AND a.task_id BETWEEN ? AND ? ORDER BY a.task_id, a.id",
                (project_id, rows[0][0], rows[-1][0]),
            )
            for ann_id, task_id, user, result, cancelled, ground_truth, lead_time, created, updated in annotations:
                if result is not None and result not in checked:
                    _load(result, f"annotation {ann_id}")  # spliced into export.json below: it must be JSON
                    checked.add(result)
                created, updated = api_time(created), api_time(updated)
                by_id[task_id].append({
                    "id": ann_id, "completed_by": user, "result": result, "was_cancelled": bool(cancelled),
                    "ground_truth": bool(ground_truth), "lead_time": lead_time, "created_at": created, "updated_at": updated, "task": task_id,
                })
                texts[task_id].append(
                    f'{{"id":{ann_id},"completed_by":{"null" if user is None else int(user)},"result":{"null" if result is None else result},'
                    f'"was_cancelled":{_bool(cancelled)},"ground_truth":{_bool(ground_truth)},"lead_time":{_json(lead_time)},'
                    f'"created_at":{_string(created)},"updated_at":{_string(updated)},"task":{task_id}}}'
                )
            raw = ",".join(f'{{"id":{task_id},"data":{data},"annotations":[{",".join(texts[task_id])}]}}' for task_id, data in rows)
            yield f"[{raw}]".encode(), parsed


def _load(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DatabaseUnusable(f"{what} holds text that is not JSON ({exc})") from None


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _json(value: Any) -> str:
    return "null" if value is None else json.dumps(value)


def _string(value: str | None) -> str:
    """A JSON string; the timestamps need no escaping (digits, ``-:.TZ``), anything else goes through json."""
    if value is None:
        return "null"
    return f'"{value}"' if '"' not in value and "\\" not in value else json.dumps(value)
