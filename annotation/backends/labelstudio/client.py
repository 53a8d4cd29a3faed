"""The Label Studio backend: projects, idempotent chunked push, snapshot pull, annotators.

Talks to a real server through label-studio-sdk 2.x (``max_retries=0``: a retried import can
duplicate tasks, so idempotency is ours). Push keeps ``item id -> task id`` in the workspace and
journals each chunk before importing it; a push interrupted at any point (server killed, Ctrl-C)
is completed by the next one without duplicates: tasks of the journalled chunk that reached the
server are found by their ``cf_item_id`` and mapped instead of imported again.

Images from local files: an image display whose value is an absolute path is imported as
``/data/local-files/?d=<path relative to document_root>`` (the server's
``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``), and a local import storage covering the file's folder
is attached to the project (once), which is what lets the server hand the file to logged-in
users. A path outside the document root is a :class:`BackendError` saying what to set.

Error messages never contain the token.
"""

from __future__ import annotations

import gc
import json
import secrets
import shutil
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Iterator
from urllib.parse import quote

import requests

from annotation.backends.base import BackendAuthError, BackendError, BackendUnavailable, Progress, PullReport, PushReport
from annotation.backends.labelstudio.config import ITEM_KEY, from_result, instruction_html, label_config, task_payload, to_result
from annotation.backends.labelstudio.database import DatabaseUnusable, LabelStudioDatabase
from annotation.routing import Assignment, RoutingPlan
from annotation.spec import AnnotationSpec, Answers, PreAnnotation
from annotation.store import JUDGMENT_COLUMNS, ProjectState
from pipelines.core.faults import fault_point

SIMULATED_DOMAIN = "simulated.corpusforge.invalid"
START_HINT = "corpusforge annotate serve"
PAGE_SIZE = 1000
# Pull: task ids per export request (Django refuses more than 1,000 query fields), and requests in
# flight (one batch is parsed while the server serializes the next; a multi-process server
# serializes both at once).
EXPORT_BATCH = 900
EXPORT_WORKERS = 2
# Push: tasks per import request. The server's time per task falls with bigger requests up to
# about this size (bench/annotate_labelstudio.py; docs/benchmarks.md); a push killed mid-chunk
# recovers that chunk through the Data Manager's task list (about 4 ms per task).
PUSH_CHUNK = 5000
# Where a pull reads from: "auto" (the local server's database when the backend was given one and
# it checks out, else the export API), "api", or "database" (an error when it does not check out).
PULL_SOURCES = ("auto", "api", "database")


LOCAL_FILES_URL = "/data/local-files/?d="
MATCH_NOTHING = "(?!)"  # a regex no file name matches


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (re-enabled after, if it was on).

    For loops that make and drop many acyclic objects (request bodies, parsed batches: reference
    counting frees them) while the process holds a large spec: each of the collector's passes
    walks the whole spec again. A 100,000-item push spent 4.4 s of its 118 s in such passes
    between requests, with the server idle; a pull from the local database a third of its time.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _is_local_path(value: str) -> bool:
    """An absolute file path (not a URL, not Label Studio's own local-files URL)."""
    return value.startswith("/") and not value.startswith(LOCAL_FILES_URL) and "://" not in value


def _chunks(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def check_reachable(url: str) -> None:
    """Raise :class:`BackendUnavailable` with the command that starts a server when none answers."""
    try:
        r = requests.get(f"{url.rstrip('/')}/health", timeout=5)
    except requests.RequestException:
        raise BackendUnavailable(
            f"Label Studio is not running at {url}. Start a local one with `{START_HINT}` "
            f"(or point annotation.label_studio.url at your server)."
        ) from None
    if r.status_code != 200:
        raise BackendUnavailable(f"Label Studio at {url} is not healthy (GET /health -> {r.status_code}); see its log.")


class LabelStudioBackend:
    name = "label-studio"

    def __init__(self, url: str, token: str, *, token_source: str = "CORPUSFORGE_LABEL_STUDIO_TOKEN", timeout: float = 300,
                 document_root: Path | None = None, export_batch: int = EXPORT_BATCH, database: Path | None = None,
                 pull_from: str = "auto"):
        from label_studio_sdk import LabelStudio

        if not 1 <= export_batch <= 1000:
            raise ValueError(f"export_batch must be between 1 and 1000 (Label Studio refuses more ids per request), got {export_batch}")
        if pull_from not in PULL_SOURCES:
            raise ValueError(f"pull_from must be one of {', '.join(PULL_SOURCES)}, got {pull_from!r}")
        if pull_from == "database" and database is None:
            raise BackendError(f"annotation.label_studio.pull_from = \"database\" reads the local server's database, and {url} is not "
                               f"the local server; set it to \"auto\" or \"api\"")
        self.export_batch = export_batch
        # the local server's SQLite file: pulls read it instead of the export API (see database.py)
        self.database = Path(database) if database is not None and pull_from != "api" else None
        self.pull_from = pull_from

        self.url = url.rstrip("/")
        # the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT: image paths are served relative to it
        self.document_root = Path(document_root).absolute() if document_root else None
        self._token = token
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Token {token}"
        self._timeout = timeout
        self._check_reachable()
        self.client = LabelStudio(base_url=self.url, api_key=token, max_retries=0, timeout=timeout)
        try:
            self.me = self.client.users.whoami()
        except Exception as exc:  # noqa: BLE001 - the SDK's error carries request headers: never re-raise it
            if getattr(exc, "status_code", None) in (401, 403):
                raise BackendAuthError(
                    f"Label Studio at {self.url} rejected the API token from {token_source}. "
                    f"Copy a valid token from the server (Account & Settings -> Access Token) into {token_source}."
                ) from None
            raise BackendError(f"Label Studio at {self.url} failed to identify the user: {type(exc).__name__} (status {getattr(exc, 'status_code', '?')})") from None

    # -- plumbing

    def _check_reachable(self) -> None:
        check_reachable(self.url)

    def _lost(self, what: str) -> BackendUnavailable:
        """The error for a connection lost (or a request timed out) during ``what``."""
        return BackendUnavailable(f"lost the connection to Label Studio at {self.url} during {what}; "
                                  f"rerun the command when `{START_HINT}` is up again")

    def _get(self, path: str, **params: Any) -> Any:
        try:
            r = self._http.get(f"{self.url}{path}", params=params, timeout=self._timeout)
        except (requests.ConnectionError, requests.Timeout):
            raise self._lost(f"GET {path}") from None
        if r.status_code >= 400:
            raise BackendError(f"Label Studio GET {path} -> {r.status_code}: {r.text[:300]}")
        return r.json()

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (requests.ConnectionError, OSError) as exc:
            raise self._lost(what) from exc
        except Exception as exc:
            name = type(exc).__name__
            if name in ("ConnectError", "RemoteProtocolError", "ReadError", "ReadTimeout", "ConnectTimeout", "WriteError"):
                raise self._lost(what) from None
            status = getattr(exc, "status_code", None)
            if status is not None:
                raise BackendError(f"Label Studio refused {what} ({status}): {str(getattr(exc, 'body', ''))[:300]}") from None
            raise

    def project_url(self, project_id: int) -> str:
        return f"{self.url}/projects/{project_id}/data"

    # -- projects

    def _project(self, project_id: int) -> dict[str, Any] | None:
        """The server's description of the project (title, task_number, ...), or None when it is gone."""
        try:
            r = self._http.get(f"{self.url}/api/projects/{project_id}/", timeout=self._timeout)
        except (requests.ConnectionError, requests.Timeout):
            raise self._lost("the project check") from None
        return r.json() if r.status_code == 200 else None

    def ensure_project(self, spec: AnnotationSpec, state: ProjectState) -> int:
        """Create or update the project of ``spec`` (idempotent); returns its id."""
        marker = f"corpusforge:{spec.name}"
        info = state.project()
        project_id = None
        if info and info.get("url") == self.url and self._project(info["project_id"]) is not None:
            project_id = info["project_id"]
        elif info and info.get("url") == self.url:
            # The project is gone on the server: its tasks are too. Keep the snapshots, re-push.
            state.forget_tasks(set(state.task_map()))
            state.end_chunk()
        if project_id is None:  # adopt a project made by another workspace, or create one
            for p in self._get("/api/projects/", page_size=1000, title=spec.title).get("results", []):
                if p.get("title") == spec.title and marker in (p.get("description") or ""):
                    project_id = p["id"]
                    self._adopt_tasks(project_id, state)
                    break
        fields = dict(
            title=spec.title,
            description=f"{marker} (recipe v{spec.version}, ui {spec.fingerprint})",
            label_config=label_config(spec),
            expert_instruction=instruction_html(spec.guideline),
            show_instruction=True,
            show_skip_button=True,
            enable_empty_annotation=True,
            show_collab_predictions=True,
        )
        if project_id is None:
            project_id = self._call("project creation", self.client.projects.create, **fields).id
        elif not info or info.get("fingerprint") != spec.fingerprint:
            self._call("project update", self.client.projects.update, project_id, **fields)
        state.save_project({"url": self.url, "project_id": project_id, "spec": spec.name, "fingerprint": spec.fingerprint, "title": spec.title})
        return project_id

    def _adopt_tasks(self, project_id: int, state: ProjectState) -> None:
        known = state.task_map()
        found = [(i, t, who) for i, t, who in self._server_items(project_id, newer_than=0) if i not in known]
        if found:
            state.record_tasks([(i, t) for i, t, _ in found], {i: who for i, _, who in found})

    def _server_items(self, project_id: int, newer_than: int) -> Iterator[tuple[str, int, list[str]]]:
        """(item id, task id, assigned annotators) of the tasks with id > ``newer_than``, oldest first."""
        query = {"filters": {"conjunction": "and", "items": [{"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": newer_than}]}, "ordering": ["tasks:id"]}
        page = 1
        while True:
            try:
                body = self._get("/api/tasks", project=project_id, page=page, page_size=PAGE_SIZE, fields="task_only", query=json.dumps(query))
            except BackendError as exc:
                if "404" in str(exc):  # past the last page
                    return
                raise
            tasks = body.get("tasks", [])
            for t in tasks:
                data = t.get("data") or {}
                item = data.get(ITEM_KEY)
                if item is not None:
                    yield item, int(t["id"]), [a for a in str(data.get("cf_assigned") or "").split(",") if a]
            if len(tasks) < PAGE_SIZE:
                return
            page += 1

    def ensure_views(self, project_id: int, annotators: tuple[str, ...]) -> None:
        """One Data Manager tab per annotator showing the tasks routed to them."""
        existing = {v.data.get("title") if isinstance(v.data, dict) else None for v in self.client.views.list(project=project_id)}
        for name in annotators:
            title = f"assigned: {name}"
            if title in existing:
                continue
            filters = {"conjunction": "and", "items": [{"filter": "filter:tasks:data.cf_assigned", "operator": "contains", "type": "String", "value": name}]}
            self._call("view creation", self.client.views.create, project=project_id, data={"title": title, "filters": filters})

    # -- push

    def push(self, spec: AnnotationSpec, plan: RoutingPlan, state: ProjectState, *, chunk_size: int = PUSH_CHUNK, progress: Progress | None = None) -> PushReport:
        started = time.perf_counter()
        project_id = self.ensure_project(spec, state)
        report = PushReport(project_id, self.project_url(project_id))
        pending = state.pending()
        if pending:  # the last push died with a chunk in flight: map whatever reached the server
            wanted = set(pending["item_ids"])
            found = [(i, t, who) for i, t, who in self._server_items(project_id, pending["newest_task_id_before"]) if i in wanted]
            state.record_tasks([(i, t) for i, t, _ in found], {i: who for i, _, who in found})
            state.end_chunk()
            report.recovered = len(found)
        known = state.task_map()
        todo = [a for a in plan.assignments if a.item.id not in known]
        report.already = len(plan.assignments) - len(todo)
        report.gold = sum(a.is_gold for a in plan.assignments)
        pre = {p.item_id: p for p in spec.preannotations}
        newest = max(known.values(), default=0)
        done = report.already
        if progress:
            progress(done, len(plan.assignments))
        chunks = list(_chunks(todo, chunk_size))
        # One import in flight at a time (the journal covers one chunk); the next chunk's request
        # body is made on a helper thread meanwhile, so the server is not kept waiting for it.
        with cyclic_gc_paused(), ThreadPoolExecutor(1, thread_name_prefix="ls-push") as pool:
            upcoming = pool.submit(self._import_body, spec, project_id, chunks[0], pre) if chunks else None
            for k, chunk in enumerate(chunks):
                body = upcoming.result()
                upcoming = pool.submit(self._import_body, spec, project_id, chunks[k + 1], pre) if k + 1 < len(chunks) else None
                ids = [a.item.id for a in chunk]
                state.begin_chunk(ids, newest)
                task_ids = self._import(project_id, body)
                fault_point("annotation.push.imported")  # crash tests: tasks on the server, not yet in the map
                if len(task_ids) != len(ids):
                    raise BackendError(f"Label Studio returned {len(task_ids)} task ids for {len(ids)} imported tasks; rerun the push to reconcile")
                state.record_tasks(zip(ids, task_ids), {a.item.id: a.annotators for a in chunk})
                state.end_chunk()
                newest = max(newest, *task_ids)
                report.created += len(ids)
                done += len(ids)
                if progress:
                    progress(done, len(plan.assignments))
        if plan.options.annotators:
            self.ensure_views(project_id, plan.options.annotators)
        report.seconds = time.perf_counter() - started
        return report

    def _import_body(self, spec: AnnotationSpec, project_id: int, chunk: list[Assignment], pre: dict[str, PreAnnotation]) -> bytes:
        """The JSON body of one import request: the chunk's tasks with their pre-annotations."""
        rows = self._serve_local_images(spec, project_id, [task_payload(spec, a, pre.get(a.item.id)) for a in chunk])
        try:
            return json.dumps(rows, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise BackendError(f"cannot send items {chunk[0].item.id} .. {chunk[-1].item.id} of {spec.name} to Label Studio: {exc}; "
                               "item payloads must be plain JSON (strings, numbers, lists, dicts)") from None

    def _import(self, project_id: int, body: bytes) -> list[int]:
        """POST one chunk to the project's import API; the ids of the tasks it created, in order.

        A plain request with the body encoded once by ``json.dumps``, not the SDK's ``import_tasks``,
        whose generic encoder walked every value of every task again before encoding it."""
        try:
            r = self._http.post(f"{self.url}/api/projects/{project_id}/import", params={"return_task_ids": "true"}, data=body,
                                headers={"Content-Type": "application/json"}, timeout=self._timeout)
        except (requests.ConnectionError, requests.Timeout):
            raise self._lost("task import") from None
        if r.status_code >= 400:
            raise BackendError(f"Label Studio refused task import ({r.status_code}): {r.text[:300]}")
        try:
            return [int(t) for t in r.json().get("task_ids") or []]
        except (ValueError, TypeError, AttributeError):
            raise BackendError(f"Label Studio answered the task import of project {project_id} with something other than its "
                               f"task ids: {r.text[:200]!r}; rerun the push to reconcile") from None

    # -- images from local files

    def _serve_local_images(self, spec: AnnotationSpec, project_id: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows whose image values that are local absolute paths point at Label Studio's local-files
        URL instead, with a local import storage covering their folders attached to the project."""
        fields = [d.field for d in spec.display if d.kind == "image"]
        folders: set[Path] = set()
        for row in rows:
            data = row["data"]
            for name in fields:
                value = data.get(name)
                if isinstance(value, str) and _is_local_path(value):
                    relative = self._relative_to_root(Path(value))
                    folders.add(relative.parent)
                    data[name] = LOCAL_FILES_URL + quote(relative.as_posix(), safe="/")
        for folder in sorted(folders):
            self.ensure_local_storage(project_id, folder)
        return rows

    def _relative_to_root(self, path: Path) -> Path:
        root = self.document_root
        if root is None:
            raise BackendError(
                f"image {path} is a local file, and Label Studio serves local files only from below its "
                f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT: give the backend that folder as document_root "
                f"(reLAIONet: annotation.relaionet.document_root; the local server of `{START_HINT}` serves the workspace's annotation/media)"
            )
        for candidate, base in ((path.absolute(), root), (path.resolve(), root.resolve())):
            try:
                return candidate.relative_to(base)
            except ValueError:
                continue
        raise BackendError(
            f"image {path} is outside Label Studio's local-files document root {root}: set the document root "
            f"(reLAIONet: annotation.relaionet.document_root) to the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT "
            f"and keep the workspace below it, or start the server with `{START_HINT}` in this workspace"
        )

    def ensure_local_storage(self, project_id: int, folder: Path) -> int:
        """Id of a local import storage of the project covering ``folder`` (relative to the document
        root), created when none does. It is never synced: its regex matches nothing, so pressing
        Sync in the UI cannot turn every image into a task; it only grants access to the files."""
        assert self.document_root is not None
        wanted = str(self.document_root / folder)
        for storage in self._call("storage listing", self.client.import_storage.local.list, project=project_id):
            path = (storage.path or "").rstrip("/")
            if path and (wanted == path or wanted.startswith(path + "/")):
                return storage.id
        storage = self._call(
            "local storage creation", self.client.import_storage.local.create,
            project=project_id, path=wanted, use_blob_urls=True, regex_filter=MATCH_NOTHING,
            title="corpusforge images", description="local image files served to annotators (corpusforge; never synced)",
        )
        return storage.id

    # -- annotators and annotations

    def ensure_annotators(self, names: list[str], *, simulated: bool) -> dict[str, int]:
        """User ids of ``names`` (created when missing; simulated ones get a marked e-mail)."""
        by_email = {u.email: u.id for u in self._call("user listing", self.client.users.list)}
        ids = {}
        for name in names:
            email = name if "@" in name else f"{name}@{SIMULATED_DOMAIN if simulated else 'annotators.corpusforge.local'}"
            if email not in by_email:
                user = self._call(
                    "user creation", self.client.users.create,
                    username=email, email=email, password=secrets.token_urlsafe(16),
                    first_name=name.split("@")[0], last_name="(simulated)" if simulated else "",
                )
                by_email[email] = user.id
            ids[name] = by_email[email]
        return ids

    def submit(self, spec: AnnotationSpec, state: ProjectState, item_id: str, annotator: int, answers: Answers, *, task_id: int | None = None) -> int:
        """Create one annotation credited to user ``annotator`` (admin token); returns its id."""
        problems = spec.check_answers(answers)
        if problems:
            raise ValueError(f"answers for {item_id!r}: {'; '.join(problems)}")
        task_id = task_id if task_id is not None else state.task_map().get(item_id)
        if task_id is None:
            raise BackendError(f"item {item_id!r} has no task on {self.url}; push it first")
        ann = self._call("annotation", self.client.annotations.create, task_id, result=to_result(spec, answers), completed_by=annotator)
        return ann.id

    def update_annotation(self, spec: AnnotationSpec, annotation_id: int, answers: Answers) -> None:
        self._call("annotation update", self.client.annotations.update, annotation_id, result=to_result(spec, answers))

    def delete_annotation(self, annotation_id: int) -> None:
        self._call("annotation deletion", self.client.annotations.delete, annotation_id)

    # -- pull

    def _users(self) -> dict[int, str]:
        return {u.id: u.email for u in self._call("user listing", self.client.users.list)}

    def pull(self, spec: AnnotationSpec, state: ProjectState, *, progress: Progress | None = None) -> PullReport:
        """Read every task of the project with its annotations into a new snapshot (see :mod:`annotation.store`).

        From the local server's own database when the backend has it (``database``; see
        :mod:`annotation.backends.labelstudio.database`): one read-only transaction, seconds for
        100,000 tasks. Otherwise, or when that database does not check out (the report's
        ``source`` says why), from the export API:

        The tasks are exported by id, ``export_batch`` (default :data:`EXPORT_BATCH`) at a time with :data:`EXPORT_WORKERS`
        requests in flight, and parsed while the server serializes the next batches: Label Studio
        builds a whole export in memory before sending a byte (a single export of 100,000 tasks
        takes minutes, past any sensible read timeout), and its serialization, not ours, is what
        takes the time. The ids are the workspace's tasks; if the server holds more tasks than
        came back (made in the UI, or by an interrupted push), their ids are listed and exported
        too, so ``export.json`` is every task of the project, annotated or not: the export
        responses' task objects, byte for byte, joined into one JSON list. A project that
        changes during the pull gives a snapshot between its states; the next pull catches up.
        """
        started = time.perf_counter()
        info = state.project()
        if not info:
            raise BackendError(f"nothing was pushed from this workspace yet ({state.root}); run `corpusforge annotate push` first")
        project_id = info["project_id"]
        project = self._project(project_id)
        if project is None:
            raise BackendError(
                f"project {project_id} recorded in {state.root / 'project.json'} no longer exists on {self.url}; "
                f"earlier snapshots in {state.pulls} are intact; push again to recreate it"
            )
        parser = ExportParser(spec, self._users())
        tmp, final = state.new_snapshot_dir()
        try:
            database, source = self._open_database(project_id, project)
            with (tmp / "export.json").open("wb") as f:
                writer = _JsonListWriter(f)
                if database is not None:
                    with database, cyclic_gc_paused():
                        self._read_database(database, project_id, writer, parser, progress, expected=int(project["task_number"]))
                else:
                    known = sorted(set(state.task_map().values()))
                    self._export_tasks(project_id, known, writer, parser, progress, expected=len(known))
                    on_server = self._task_count(project_id)
                    if on_server > parser.tasks:  # tasks this workspace does not know about: find them
                        others = [t for t in self._all_task_ids(project_id) if t not in parser.task_ids]
                        self._export_tasks(project_id, others, writer, parser, progress, expected=parser.tasks + len(others))
                writer.close()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # the half-read snapshot (a killed process leaves it hidden: .<stamp>.tmp)
            raise
        report = parser.finish(tmp, state, source=source)
        if progress:
            progress(parser.tasks, parser.tasks)
        report.snapshot = state.commit_snapshot(tmp, final)
        report.seconds = time.perf_counter() - started
        return report

    def _open_database(self, project_id: int, project: dict[str, Any]):
        """(the local database to pull from, or None; a description of the source the pull uses)."""
        if self.database is None:
            return None, "export API"
        try:
            database = LabelStudioDatabase(self.database)
            try:
                database.check_project(project_id, project.get("title", ""), int(project["task_number"]))
            except BaseException:
                database.close()
                raise
        except (DatabaseUnusable, sqlite3.Error) as exc:
            if self.pull_from == "database":
                raise BackendError(f"cannot pull from the local database: {exc}; set annotation.label_studio.pull_from = \"auto\" to fall back to the export API") from None
            return None, f"export API (the local database was not used: {exc})"
        return database, f"local database {self.database}"

    def _read_database(self, database, project_id: int, writer: _JsonListWriter, parser: ExportParser,
                       progress: Progress | None, *, expected: int) -> None:
        try:
            for raw, tasks in database.tasks(project_id):
                writer.add(raw)
                parser.add(tasks)
                fault_point(f"annotation.pull.exported:{parser.tasks}")  # crash tests: part of the export written
                if progress:
                    progress(parser.tasks, max(expected, parser.tasks))
        except (DatabaseUnusable, sqlite3.Error) as exc:
            raise BackendError(f"reading the local database {self.database} failed after {parser.tasks:,} tasks: {exc}; no snapshot was made. "
                               f"Rerun the pull, or set annotation.label_studio.pull_from = \"api\" to pull through the export API") from None

    def _export_tasks(self, project_id: int, task_ids: list[int], writer: _JsonListWriter, parser: ExportParser,
                      progress: Progress | None, *, expected: int) -> None:
        """Export ``task_ids`` in batches, in order; each batch is written raw and parsed on arrival."""
        size = self.export_batch
        batches = iter([task_ids[i : i + size] for i in range(0, len(task_ids), size)])
        sessions = threading.local()  # one HTTP session per export thread: requests sessions are not thread-safe
        with ThreadPoolExecutor(EXPORT_WORKERS, thread_name_prefix="ls-export") as pool:
            in_flight: deque[Future[bytes]] = deque(pool.submit(self._export_batch, project_id, b, sessions) for b in islice(batches, EXPORT_WORKERS + 1))
            try:
                while in_flight:
                    body = in_flight.popleft().result()
                    following = next(batches, None)
                    if following is not None:  # keep the server busy while this batch is parsed
                        in_flight.append(pool.submit(self._export_batch, project_id, following, sessions))
                    try:
                        tasks = json.loads(body)
                    except ValueError:
                        tasks = None
                    if not isinstance(tasks, list):
                        raise BackendError(f"Label Studio's export of project {project_id} is not a JSON list of tasks: {body[:200]!r}")
                    writer.add(body)
                    parser.add(tasks)
                    fault_point(f"annotation.pull.exported:{parser.tasks}")  # crash tests: part of the export written
                    if progress:
                        progress(parser.tasks, max(expected, parser.tasks))
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise

    def _export_batch(self, project_id: int, task_ids: list[int], sessions: threading.local) -> bytes:
        """The raw JSON export of the tasks ``task_ids`` (those still in the project) with every annotation."""
        session = getattr(sessions, "session", None)
        if session is None:
            session = sessions.session = requests.Session()
            session.headers["Authorization"] = f"Token {self._token}"
        # ids[]: the server reads only this spelling (the SDK's `ids=` is ignored: it would export everything)
        params = {"exportType": "JSON", "download_all_tasks": "true", "download_resources": "false", "ids[]": task_ids}
        try:
            r = session.get(f"{self.url}/api/projects/{project_id}/export", params=params, timeout=self._timeout)
        except (requests.ConnectionError, requests.Timeout):
            raise self._lost("export") from None
        if r.status_code >= 400:
            raise BackendError(f"Label Studio refused the export of {len(task_ids)} tasks of project {project_id} ({r.status_code}): {r.text[:300]}")
        return r.content

    def _task_count(self, project_id: int) -> int:
        return int(self._get(f"/api/projects/{project_id}/")["task_number"])

    def _all_task_ids(self, project_id: int) -> list[int]:
        """Ids of every task of the project, from the Data Manager's task list (slow: about as slow as an export)."""
        ids: list[int] = []
        query = json.dumps({"ordering": ["tasks:id"]})
        page = 1
        while True:
            try:
                body = self._get("/api/tasks", project=project_id, page=page, page_size=PAGE_SIZE, fields="task_only", query=query)
            except BackendError as exc:
                if "404" in str(exc):  # past the last page
                    return ids
                raise
            tasks = body.get("tasks", [])
            ids.extend(int(t["id"]) for t in tasks)
            if len(tasks) < PAGE_SIZE:
                return ids
            page += 1


class _JsonListWriter:
    """Joins the JSON lists of several export responses into one list; each task keeps the server's bytes."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._empty = True
        f.write(b"[")

    def add(self, body: bytes) -> None:
        inner = body.strip()[1:-1].strip()  # a JSON list (checked by the caller): drop its brackets
        if inner:
            self._f.write(inner if self._empty else b"," + inner)
            self._empty = False

    def close(self) -> None:
        self._f.write(b"]")


def _user_of(completed_by: Any, users: dict[int, str]) -> tuple[str, bool]:
    if isinstance(completed_by, dict):
        email = completed_by.get("email") or users.get(completed_by.get("id"), f"user-{completed_by.get('id')}")
    else:
        email = users.get(completed_by, f"user-{completed_by}")
    return email, email.endswith("@" + SIMULATED_DOMAIN)


MEMO_LIMIT = 100_000  # distinct result texts an ExportParser remembers


class ExportParser:
    """Judgments from exported tasks, fed batch by batch (:meth:`add`); :meth:`finish` writes the snapshot files.

    Every annotation of every task is counted; skipped ones (``was_cancelled``) are counted
    apart, annotations whose result does not fit ``spec`` go to the rejects with the reason, and
    tasks without a ``cf_item_id`` (not pushed by corpusforge) are rejected too.
    """

    def __init__(self, spec: AnnotationSpec, users: dict[int, str]) -> None:
        self.spec = spec
        self.users = users
        self.rows: dict[str, list] = {c: [] for c in JUDGMENT_COLUMNS}
        self.rejects: list[dict] = []
        self.skipped = 0
        self.annotations = 0
        self.tasks = 0
        self.task_ids: set[int] = set()
        self.seen_items: set[str] = set()
        self._memo: dict[str, tuple[str | None, list[str]]] = {}  # result text -> _interpret(result)

    def add(self, tasks: list[dict[str, Any]]) -> None:
        """Parse a batch of exported tasks. An annotation's ``result`` is a list, or its JSON text."""
        users, rows, rejects, memo = self.users, self.rows, self.rejects, self._memo
        for task in tasks:
            self.tasks += 1
            if task.get("id") is not None:
                self.task_ids.add(int(task["id"]))
            item_id = (task.get("data") or {}).get(ITEM_KEY)
            if item_id is None:
                rejects.append({"task_id": task.get("id"), "reason": f"task has no {ITEM_KEY}: not pushed by corpusforge"})
                continue
            self.seen_items.add(item_id)
            for ann in task.get("annotations") or []:
                self.annotations += 1
                annotator, simulated = _user_of(ann.get("completed_by"), users)
                if ann.get("was_cancelled"):
                    self.skipped += 1
                    continue
                result = ann.get("result")
                if isinstance(result, str):  # the result's JSON text (the local database): read once per distinct text
                    answers_json, problems = memo.get(result) or self._remember(result)
                else:
                    answers_json, problems = self._interpret(result or [])
                if problems:
                    rejects.append({"item_id": item_id, "task_id": task.get("id"), "annotation_id": ann.get("id"), "annotator": annotator,
                                    "reason": "; ".join(problems), "result": json.loads(result or "[]") if isinstance(result, str) else result})
                    continue
                rows["item_id"].append(item_id)
                rows["task_id"].append(int(task["id"]))
                rows["annotation_id"].append(int(ann["id"]))
                rows["annotator"].append(annotator)
                rows["simulated"].append(simulated)
                rows["created_at"].append(ann.get("created_at") or "")
                rows["updated_at"].append(ann.get("updated_at") or ann.get("created_at") or "")
                rows["answers"].append(answers_json)

    def _interpret(self, result: list) -> tuple[str | None, list[str]]:
        """(the answers as sorted-key JSON, or None; the problems that keep ``result`` from fitting the spec)."""
        answers, problems = from_result(self.spec, result)
        return (None, problems) if problems else (json.dumps(answers, sort_keys=True), problems)

    def _remember(self, text: str) -> tuple[str | None, list[str]]:
        if len(self._memo) >= MEMO_LIMIT:  # free-text answers make every result distinct: keep memory bounded
            self._memo.clear()
        hit = self._memo[text] = self._interpret(json.loads(text) if text else [])
        return hit

    def finish(self, out_dir: Path, state: ProjectState, *, source: str = "export file") -> PullReport:
        """Write judgments.parquet, rejects.jsonl and summary.json into ``out_dir``; the report of it all."""
        import polars as pl

        from pipelines.core.fileio import atomic_write_json

        judgments = pl.DataFrame(self.rows, schema={"item_id": pl.String, "task_id": pl.Int64, "annotation_id": pl.Int64, "annotator": pl.String, "simulated": pl.Boolean, "created_at": pl.String, "updated_at": pl.String, "answers": pl.String})
        judgments.write_parquet(out_dir / "judgments.parquet")
        with (out_dir / "rejects.jsonl").open("w", encoding="utf-8") as f:
            for r in self.rejects:
                f.write(json.dumps(r) + "\n")
        report = PullReport(snapshot=out_dir, tasks=self.tasks, annotations=self.annotations, judgments=judgments.height, rejected=len(self.rejects),
                            skipped=self.skipped, source=source)
        report.deleted_tasks = sorted(set(state.task_map()) - self.seen_items)
        previous = state.latest_snapshot()
        report.changes = _changes(pl.read_parquet(previous / "judgments.parquet") if previous else None, judgments)
        atomic_write_json(out_dir / "summary.json", {
            "tasks": report.tasks, "annotations": self.annotations, "judgments": judgments.height, "rejected": len(self.rejects),
            "skipped": self.skipped, "changes": report.changes, "deleted_tasks": report.deleted_tasks,
            "previous": previous.name if previous else None, "spec": self.spec.name, "fingerprint": self.spec.fingerprint,
            "source": source,
        })
        return report


def parse_export(spec: AnnotationSpec, raw: Path, out_dir: Path, state: ProjectState, users: dict[int, str], *, progress: Progress | None = None) -> PullReport:
    """Normalise a raw JSON export (a file) into judgments + rejects + summary inside ``out_dir``."""
    tasks = json.loads(raw.read_bytes())
    parser = ExportParser(spec, users)
    for k in range(0, len(tasks), 1000):
        parser.add(tasks[k : k + 1000])
        if progress:
            progress(parser.tasks, len(tasks))
    report = parser.finish(out_dir, state)
    if progress:
        progress(len(tasks), len(tasks))
    return report


def _changes(before, after) -> dict[str, int]:
    if before is None:
        return {"new": after.height, "updated": 0, "deleted": 0}
    old = dict(zip(before["annotation_id"].to_list(), before["updated_at"].to_list()))
    new = dict(zip(after["annotation_id"].to_list(), after["updated_at"].to_list()))
    return {
        "new": sum(1 for a in new if a not in old),
        "updated": sum(1 for a, u in new.items() if a in old and old[a] != u),
        "deleted": sum(1 for a in old if a not in new),
    }
