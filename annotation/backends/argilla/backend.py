"""The Argilla backend: one dataset per recipe, idempotent chunked push, snapshot pull, annotators.

Talks to an argilla-server 2.8 over its REST API (``httpx``, a dependency of the ``argilla``
extra); the mapping of a spec is :mod:`annotation.backends.argilla.mapping`. The workspace side
(task map, push journal, snapshots) is the same :class:`ProjectState` as Label Studio's, under
``<dataset>/argilla/``, so agreement, merge and adjudication read the snapshots unchanged.

* Dataset: named after the spec (``spec.name``) in the configured Argilla workspace. A dataset
  of that name whose fields, questions (types, labels) or metadata differ from the recipe's is a
  :class:`DatasetMismatch` naming each difference: Argilla cannot change the questions of a
  dataset that has records, and silently making another dataset would split the annotations.
  A changed fingerprint that only touches wording (titles, hints, guidelines) updates the
  dataset in place.
* Push: record id (``external_id``) = item id. The task map keeps ``item id -> record id`` (the
  record's UUID as an integer); each chunk is journalled before the request, and the next push
  maps the records of an interrupted chunk that reached the server instead of sending them again.
  Records are only ever created, never re-logged: a re-log replaces the metadata it leaves out.
* Pull: every record with every user's response into a new snapshot: submitted responses become
  judgments, discarded ones are counted as skipped, drafts are counted (``summary.json``:
  ``statuses``) and not judged. The snapshot's integer ``task_id`` and ``annotation_id`` are the
  top 63 bits of the record's and response's UUIDs (``export.json`` keeps the UUIDs).
* Annotators are Argilla users (role annotator) in the workspace; simulated ones have the last
  name ``(simulated)`` and read as ``<username>@simulated.corpusforge.invalid``, as on Label
  Studio. :meth:`submit` answers as that user, with the user's own API key.

Error messages never contain an API key.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from annotation.backends.argilla.mapping import MAX_LABELS, dataset_settings, differences, from_values, record_payload, structure, to_values
from annotation.backends.base import BackendAuthError, BackendError, BackendUnavailable, Progress, PullReport, PushReport
from annotation.backends.labelstudio.client import SIMULATED_DOMAIN, ExportParser, _chunks, _JsonListWriter
from annotation.routing import RoutingPlan
from annotation.spec import AnnotationSpec, Answers
from annotation.store import JUDGMENT_COLUMNS, ProjectState
from pipelines.core.faults import fault_point

START_HINT = "corpusforge annotate serve --backend argilla"
KEY_VAR = "CORPUSFORGE_ARGILLA_API_KEY"
BULK_MAX = 500  # records per bulk request (the server's limit)
PAGE_SIZE = 1000  # records per listing page (the server's limit)
SIMULATED_LAST_NAME = "(simulated)"
STATUSES = ("submitted", "draft", "discarded")


class DatasetMismatch(BackendError):
    """An Argilla dataset of the recipe's name exists with other fields, questions or metadata."""


def fold(server_id: str | uuid.UUID) -> int:
    """A UUID as a non-negative Int64 (its top 63 bits): the snapshot's task and annotation ids."""
    return uuid.UUID(str(server_id)).int >> 65


def username_of(name: str) -> str:
    """An Argilla username for an annotator name (``@`` and other characters become ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name).strip("-_") or "annotator"


@dataclass(frozen=True)
class ArgillaUser:
    id: str
    username: str
    api_key: str = field(repr=False)


def check_reachable(url: str, timeout: float = 5) -> None:
    """Raise :class:`BackendUnavailable` with the command that starts a server when none answers."""
    import httpx

    try:
        r = httpx.get(f"{url.rstrip('/')}/api/v1/status", timeout=timeout)
    except httpx.HTTPError:
        raise BackendUnavailable(
            f"Argilla is not running at {url}. Start a local one with `{START_HINT}` "
            f"(or point annotation.argilla.url at your server)."
        ) from None
    if r.status_code == 404:
        raise BackendUnavailable(f"{url} answers, but not as an Argilla 2.x server (GET /api/v1/status -> 404); check annotation.argilla.url")


class ArgillaBackend:
    name = "argilla"

    def __init__(self, url: str, api_key: str, *, workspace: str = "corpusforge", key_source: str = KEY_VAR,
                 timeout: float = 120, max_labels: int = MAX_LABELS, min_submitted: int | None = None, page_size: int = PAGE_SIZE):
        try:
            import httpx
        except ImportError:  # pragma: no cover - the extra pulls it in
            raise BackendError("the Argilla backend needs the `argilla` extra: pip install -e .[argilla]") from None
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE} (the server's limit), got {page_size}")
        self.url = url.rstrip("/")
        self.workspace = workspace
        self.page_size = page_size
        self.max_labels = max_labels
        self.min_submitted = min_submitted  # None: the routing's overlap (k)
        self._timeout = timeout
        check_reachable(self.url)
        self._http = httpx.Client(base_url=self.url, headers={"X-Argilla-Api-Key": api_key}, timeout=timeout)
        r = self._request("GET", "/api/v1/me", "identifying the user", ok=(401, 403))
        if r.status_code in (401, 403):
            raise BackendAuthError(
                f"Argilla at {self.url} rejected the API key from {key_source}. Copy a valid key from the "
                f"server (My settings -> API key) into {key_source}."
            )
        self.me = r.json()
        self._workspace_id: str | None = None
        self._user_clients: dict[str, Any] = {}

    # -- plumbing

    def _request(self, method: str, path: str, what: str, *, ok: tuple[int, ...] = (), client=None, **kwargs: Any):
        import httpx

        try:
            r = (client or self._http).request(method, path, **kwargs)
        except httpx.TransportError:
            raise BackendUnavailable(f"lost the connection to Argilla at {self.url} during {what}; rerun the command when `{START_HINT}` (or your server) is up again") from None
        if r.status_code >= 400 and r.status_code not in ok:
            raise BackendError(f"Argilla refused {what} ({method} {path} -> {r.status_code}): {r.text[:300]}")
        return r

    def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return self._request(method, path, what, **kwargs).json()

    def project_url(self, dataset_id: str) -> str:
        return f"{self.url}/dataset/{dataset_id}/annotation-mode"

    def close(self) -> None:
        self._http.close()
        for c in self._user_clients.values():
            c.close()

    # -- workspace and dataset

    def workspace_id(self) -> str:
        if self._workspace_id is None:
            found = [w for w in self._json("GET", "/api/v1/me/workspaces", "workspace listing")["items"] if w["name"] == self.workspace]
            if found:
                self._workspace_id = found[0]["id"]
            else:
                self._workspace_id = self._json("POST", "/api/v1/workspaces", "workspace creation", json={"name": self.workspace})["id"]
        return self._workspace_id

    def find_dataset(self, name: str) -> dict[str, Any] | None:
        ws = self.workspace_id()
        for d in self._json("GET", "/api/v1/me/datasets", "dataset listing")["items"]:
            if d["name"] == name and d["workspace_id"] == ws:
                return d
        return None

    def server_settings(self, dataset_id: str) -> dict[str, Any]:
        return {
            "fields": self._json("GET", f"/api/v1/datasets/{dataset_id}/fields", "field listing")["items"],
            "questions": self._json("GET", f"/api/v1/datasets/{dataset_id}/questions", "question listing")["items"],
            "metadata": self._json("GET", f"/api/v1/me/datasets/{dataset_id}/metadata-properties", "metadata listing")["items"],
        }

    def _complete(self, dataset_id: str, wanted: Mapping[str, Any], have: Mapping[str, Any]) -> None:
        """Add what a draft dataset lacks (a creation that died half-way), then publish it."""
        paths = {"fields": "fields", "questions": "questions", "metadata": "metadata-properties"}
        for part, path in paths.items():
            present = {x["name"] for x in have[part]}
            for payload in wanted[part]:
                if payload["name"] not in present:
                    self._request("POST", f"/api/v1/datasets/{dataset_id}/{path}", f"adding {payload['name']!r}", json={k: v for k, v in payload.items() if v is not None})
        self._request("PUT", f"/api/v1/datasets/{dataset_id}/publish", "dataset publication")

    def ensure_dataset(self, spec: AnnotationSpec, state: ProjectState, *, min_submitted: int = 1) -> dict[str, Any]:
        """Create, complete or check the dataset of ``spec`` (idempotent); returns the server's dataset."""
        wanted = dataset_settings(spec, min_submitted=min_submitted, max_labels=self.max_labels)
        info = state.project()
        dataset = self.find_dataset(spec.name)
        if info and info.get("url") == self.url and (dataset is None or dataset["id"] != info.get("dataset_id")):
            # the dataset this workspace pushed to is gone: so are its records. Keep the snapshots, re-push.
            state.forget_tasks(set(state.task_map()))
            state.end_chunk()
            info = None
        if dataset is None:
            dataset = self._json("POST", "/api/v1/datasets", "dataset creation", json={
                "name": spec.name, "guidelines": wanted["guidelines"], "distribution": wanted["distribution"], "workspace_id": self.workspace_id()})
        have = self.server_settings(dataset["id"])
        if dataset.get("status") == "draft":
            self._complete(dataset["id"], wanted, have)
            have = self.server_settings(dataset["id"])
        problems = differences(structure(wanted), structure(have))
        if problems:
            raise DatasetMismatch(
                f"Argilla dataset {spec.name!r} in workspace {self.workspace!r} at {self.url} has other settings than recipe "
                f"{spec.name} v{spec.version}: " + "; ".join(problems) + ". Argilla cannot change the questions of a dataset "
                f"with records: export what you need, delete the dataset in Argilla (or rename it there), then push again."
            )
        if not info or info.get("fingerprint") != spec.fingerprint:
            self._update_wording(dataset, wanted, have)
            if not info:
                self._adopt_records(dataset["id"], state)
        state.save_project({"url": self.url, "dataset_id": dataset["id"], "project_id": fold(dataset["id"]), "workspace": self.workspace,
                            "spec": spec.name, "fingerprint": spec.fingerprint, "title": spec.title, "backend": self.name})
        return dataset

    def _update_wording(self, dataset: Mapping[str, Any], wanted: Mapping[str, Any], have: Mapping[str, Any]) -> None:
        """Titles, descriptions, hints and guidelines: what a dataset with records may still change."""
        if dataset.get("guidelines") != wanted["guidelines"]:
            self._request("PATCH", f"/api/v1/datasets/{dataset['id']}", "guideline update", json={"guidelines": wanted["guidelines"]})
        by_name = {q["name"]: q for q in have["questions"]}
        for q in wanted["questions"]:
            server = by_name[q["name"]]
            change = {k: q[k] for k in ("title", "description") if q[k] is not None and server.get(k) != q[k]}
            if "options" in q["settings"] and server["settings"].get("options") != q["settings"]["options"]:
                change["settings"] = {"type": q["settings"]["type"], "options": q["settings"]["options"]}
            if change:
                self._request("PATCH", f"/api/v1/questions/{server['id']}", f"question {q['name']!r} update", json=change)
        fields = {f["name"]: f for f in have["fields"]}
        for f in wanted["fields"]:
            if fields[f["name"]].get("title") != f["title"]:
                self._request("PATCH", f"/api/v1/fields/{fields[f['name']]['id']}", f"field {f['name']!r} update", json={"title": f["title"]})

    def _records(self, dataset_id: str, *, include: tuple[str, ...] = ()) -> Iterator[list[dict[str, Any]]]:
        """Every record of the dataset, a page at a time, oldest first."""
        offset = 0
        while True:
            params: list[tuple[str, Any]] = [("offset", offset), ("limit", self.page_size), *(("include", i) for i in include)]
            body = self._json("GET", f"/api/v1/datasets/{dataset_id}/records", "record listing", params=params)
            items = body.get("items", [])
            if items:
                yield items
            offset += len(items)
            if len(items) < self.page_size or offset >= body.get("total", 0):
                return

    def server_records(self, dataset_id: str) -> dict[str, str]:
        """external id -> record id of every record of the dataset."""
        return {r["external_id"]: r["id"] for page in self._records(dataset_id) for r in page if r.get("external_id")}

    def _adopt_records(self, dataset_id: str, state: ProjectState) -> None:
        """Records pushed from another workspace (or before the task map was lost): mapped, never re-sent."""
        known = state.task_map()
        found = [(i, uuid.UUID(r).int) for i, r in self.server_records(dataset_id).items() if i not in known]
        if found:
            state.record_tasks(found)

    # -- push

    def push(self, spec: AnnotationSpec, plan: RoutingPlan, state: ProjectState, *, chunk_size: int = BULK_MAX, progress: Progress | None = None) -> PushReport:
        started = time.perf_counter()
        k = self.min_submitted or max(1, plan.options.overlap or 1)
        dataset = self.ensure_dataset(spec, state, min_submitted=k)
        report = PushReport(fold(dataset["id"]), self.project_url(dataset["id"]))
        report.recovered = self._recover_chunk(dataset["id"], plan, state)
        known = state.task_map()
        todo = [a for a in plan.assignments if a.item.id not in known]
        report.already, report.gold = len(plan.assignments) - len(todo), sum(a.is_gold for a in plan.assignments)
        questions = {q["name"]: q["id"] for q in self._json("GET", f"/api/v1/datasets/{dataset['id']}/questions", "question listing")["items"]}
        pre = {p.item_id: p for p in spec.preannotations}
        done = report.already
        if progress:
            progress(done, len(plan.assignments))
        for chunk in _chunks(todo, max(1, min(chunk_size, BULK_MAX))):
            ids = [a.item.id for a in chunk]
            try:
                items = [record_payload(spec, a, pre.get(a.item.id), questions, self.max_labels) for a in chunk]
            except ValueError as exc:
                raise BackendError(f"cannot make Argilla records of {spec.name}: {exc}") from None
            state.begin_chunk(ids, 0)
            body = self._json("POST", f"/api/v1/datasets/{dataset['id']}/records/bulk", "record creation", json={"items": items})
            made = {r["external_id"]: r["id"] for r in body["items"]}
            fault_point("annotation.push.imported")  # crash tests: records on the server, not yet in the map
            if set(made) != set(ids):
                raise BackendError(f"Argilla created {len(made)} records for {len(ids)} items; rerun the push to reconcile")
            state.record_tasks([(i, uuid.UUID(made[i]).int) for i in ids], {a.item.id: a.annotators for a in chunk})
            state.end_chunk()
            report.created += len(ids)
            done += len(ids)
            if progress:
                progress(done, len(plan.assignments))
        report.seconds = time.perf_counter() - started
        return report

    def _recover_chunk(self, dataset_id: str, plan: RoutingPlan, state: ProjectState) -> int:
        """The last push died with a chunk in flight: map whatever of it reached the server; how many."""
        pending = state.pending()
        if not pending:
            return 0
        wanted = set(pending["item_ids"])
        assigned = {a.item.id: a.annotators for a in plan.assignments}
        found = [(i, uuid.UUID(r).int) for i, r in self.server_records(dataset_id).items() if i in wanted]
        state.record_tasks(found, {i: assigned.get(i, ()) for i, _ in found})
        state.end_chunk()
        return len(found)

    # -- annotators and responses

    def _users(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/v1/users", "user listing")["items"]

    def ensure_annotators(self, names: list[str], *, simulated: bool) -> dict[str, ArgillaUser]:
        """Argilla users (role annotator, members of the workspace) for ``names``, with their API keys."""
        by_name = {u["username"]: u for u in self._users()}
        ws = self.workspace_id()
        members = {u["id"] for u in self._json("GET", f"/api/v1/workspaces/{ws}/users", "workspace members")["items"]}
        out = {}
        for name in names:
            username = username_of(name)
            user = by_name.get(username)
            if user is None:
                user = self._json("POST", "/api/v1/users", f"creating user {username!r}", json={
                    "username": username, "first_name": name.split("@")[0][:100], "role": "annotator",
                    "last_name": SIMULATED_LAST_NAME if simulated else None, "password": secrets.token_urlsafe(16)})
            if user["id"] not in members:
                self._request("POST", f"/api/v1/workspaces/{ws}/users", f"adding {username!r} to workspace {self.workspace!r}", json={"user_id": user["id"]})
            key = self._json("GET", f"/api/v1/users/{user['id']}", f"reading the API key of {username!r}")["api_key"]
            out[name] = ArgillaUser(user["id"], username, key)
        return out

    def _as_user(self, user: ArgillaUser):
        import httpx

        if user.id not in self._user_clients:
            self._user_clients[user.id] = httpx.Client(base_url=self.url, headers={"X-Argilla-Api-Key": user.api_key}, timeout=self._timeout)
        return self._user_clients[user.id]

    def record_id(self, state: ProjectState, item_id: str, task_id: int | None = None) -> str:
        task_id = task_id if task_id is not None else state.task_map().get(item_id)
        if task_id is None:
            raise BackendError(f"item {item_id!r} has no record on {self.url}; push it first")
        return str(uuid.UUID(int=task_id))

    def submit(self, spec: AnnotationSpec, state: ProjectState, item_id: str, annotator: ArgillaUser, answers: Answers, *,
               task_id: int | None = None, status: str = "submitted") -> int:
        """Answer one record as ``annotator`` (with their API key); returns the response's id (folded)."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: use one of {', '.join(STATUSES)}")
        problems = spec.check_answers(answers)
        if problems:
            raise ValueError(f"answers for {item_id!r}: {'; '.join(problems)}")
        rid = self.record_id(state, item_id, task_id)
        body: dict[str, Any] = {"status": status, "values": to_values(spec, answers)}
        if status == "discarded" and not body["values"]:
            del body["values"]
        r = self._json("POST", f"/api/v1/records/{rid}/responses", f"the response of {annotator.username!r} to {item_id!r}",
                       client=self._as_user(annotator), json=body)
        return fold(r["id"])

    # -- pull

    def pull(self, spec: AnnotationSpec, state: ProjectState, *, progress: Progress | None = None) -> PullReport:
        """Every record with every response into a new snapshot (see :mod:`annotation.store`)."""
        started = time.perf_counter()
        info = state.project()
        if not info or "dataset_id" not in info:
            raise BackendError(f"nothing was pushed to Argilla from this workspace yet ({state.root}); run `corpusforge annotate push --backend argilla` first")
        dataset_id = info["dataset_id"]
        if self._request("GET", f"/api/v1/datasets/{dataset_id}", "dataset lookup", ok=(404,)).status_code == 404:
            raise BackendError(
                f"dataset {dataset_id} recorded in {state.root / 'project.json'} no longer exists on {self.url}; "
                f"earlier snapshots in {state.pulls} are intact; push again to recreate it"
            )
        users = {u["id"]: u for u in self._users()}
        expected = len(state.task_map())
        parser = ResponseParser(spec, users)
        tmp, final = state.new_snapshot_dir()
        with (tmp / "export.json").open("wb") as f:
            writer = _JsonListWriter(f)
            for page in self._records(dataset_id, include=("responses", "suggestions")):
                writer.add(json.dumps(page, ensure_ascii=False).encode())
                parser.add(page)
                fault_point(f"annotation.pull.exported:{parser.tasks}")  # crash tests: part of the export written
                if progress:
                    progress(parser.tasks, max(expected, parser.tasks))
            writer.close()
        report = parser.finish(tmp, state)
        report.snapshot = state.commit_snapshot(tmp, final)
        report.seconds = time.perf_counter() - started
        return report


def annotator_of(user: Mapping[str, Any] | None, user_id: str) -> tuple[str, bool]:
    """(name in the snapshot, simulated?) of an Argilla user: simulated ones read as on Label Studio."""
    if user is None:
        return f"user-{user_id}", False
    if user.get("last_name") == SIMULATED_LAST_NAME:
        return f"{user['username']}@{SIMULATED_DOMAIN}", True
    return user["username"], False


class ResponseParser(ExportParser):
    """Judgments from Argilla records (with responses): the Label Studio parser's bookkeeping and
    snapshot files, fed Argilla records. Discarded responses count as skipped, drafts as drafts."""

    def __init__(self, spec: AnnotationSpec, users: dict[str, dict[str, Any]]) -> None:
        super().__init__(spec, {})
        self.argilla_users = users
        self.statuses = {s: 0 for s in STATUSES}

    def add(self, records: list[dict[str, Any]]) -> None:  # type: ignore[override]
        rows, rejects = self.rows, self.rejects
        for record in records:
            self.tasks += 1
            item_id = record.get("external_id")
            if item_id is None:
                rejects.append({"task_id": record.get("id"), "reason": "record has no external id: not pushed by corpusforge"})
                continue
            self.seen_items.add(item_id)
            for resp in record.get("responses") or []:
                self.annotations += 1
                status = str(resp.get("status"))
                self.statuses[status] = self.statuses.get(status, 0) + 1
                annotator, simulated = annotator_of(self.argilla_users.get(resp.get("user_id")), resp.get("user_id"))
                if status == "discarded":
                    self.skipped += 1
                    continue
                if status != "submitted":  # a draft is not an answer yet
                    continue
                answers, problems = from_values(self.spec, resp.get("values"))
                if problems:
                    rejects.append({"item_id": item_id, "task_id": record.get("id"), "annotation_id": resp.get("id"), "annotator": annotator,
                                    "reason": "; ".join(problems), "result": resp.get("values")})
                    continue
                for column, value in zip(JUDGMENT_COLUMNS, (item_id, fold(record["id"]), fold(resp["id"]), annotator, simulated,
                                                             resp.get("inserted_at") or "", resp.get("updated_at") or resp.get("inserted_at") or "",
                                                             json.dumps(answers, sort_keys=True))):
                    rows[column].append(value)

    def finish(self, out_dir: Path, state: ProjectState) -> PullReport:
        from pipelines.core.fileio import atomic_write_json

        report = super().finish(out_dir, state)
        summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
        summary.update(backend="argilla", statuses=self.statuses, drafts=self.statuses.get("draft", 0))
        atomic_write_json(out_dir / "summary.json", summary)
        return report
