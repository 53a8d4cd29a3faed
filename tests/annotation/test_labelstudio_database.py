"""Pulls from the local Label Studio's own database, against the export API of the same real server.

A pull from the database must give the snapshot a pull through the export API gives: the same
judgments, rejects and counts, including annotations updated, deleted and skipped, labels the
recipe does not know and tasks this workspace did not push. A database that is not the server's
(stale copy, another project, an unknown schema) is never read: the pull falls back to the API
and says why, or refuses when told to read the database. A pull killed while it reads leaves no
snapshot, and the rerun gives the same one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from annotation.backends.base import BackendError
from annotation.backends.labelstudio.client import LabelStudioBackend
from annotation.backends.labelstudio.config import ITEM_KEY, task_payload, to_result
from annotation.backends.labelstudio.database import DatabaseUnusable, LabelStudioDatabase, api_time
from annotation.backends.labelstudio.server import DATABASE_FILE
from annotation.routing import RoutingOptions, route
from annotation.simulate import simulate
from annotation.store import ProjectState
from corpusforge.config import load_settings
from corpusforge.ops.annotate import TOKEN_VAR, connect_label_studio
from tests.conftest import REPO, SAD_SAMPLE

pytestmark = pytest.mark.slow
QUIET = {"new": 0, "updated": 0, "deleted": 0}


def _database(server) -> Path:
    return server.data_dir / DATABASE_FILE


def _copy(server, to: Path) -> Path:
    """A consistent copy of the running server's database (the backup API sees the WAL too)."""
    src = sqlite3.connect(f"{_database(server).as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(to)
    src.backup(dst)
    src.close()
    dst.close()
    return to


def _project_with_every_kind_of_annotation(backend: LabelStudioBackend, spec, state: ProjectState) -> None:
    """Pushed tasks with simulated annotations, one updated and one deleted; plus tasks imported by
    hand: one with a skipped annotation and one with a label the recipe does not know, and one
    without a corpusforge item id."""
    plan = route(spec, RoutingOptions(sample_size=8))
    pushed = backend.push(spec, plan, state)
    truth = {p.item_id: dict(p.answers) for p in spec.preannotations}
    simulate(backend, spec, state, truth, ["d1", "d2", "d3"], noise=0.3, seed=3, overlap=3)
    first = backend.pull(spec, state)
    judgments = pl.read_parquet(first.snapshot / "judgments.parquet")
    backend.update_annotation(spec, judgments["annotation_id"][0], {"strategies": ["Analogy", "Example"], "stance": "support", "unclear": True})
    backend.delete_annotation(judgments["annotation_id"][1])
    user = backend.ensure_annotators(["d4"], simulated=True)["d4"]
    extra = [a for a in route(spec, RoutingOptions()).assignments if a.item.id not in set(plan.item_ids)][:3]
    pre = {p.item_id: p for p in spec.preannotations}
    skipped, unknown, stranger = (task_payload(spec, a, pre[a.item.id]) for a in extra)
    skipped["annotations"] = [{"completed_by": user, "result": [], "was_cancelled": True}]
    bad = to_result(spec, {"strategies": ["Example"], "stance": "oppose", "unclear": False})
    bad[0]["value"]["choices"] = ["Sarcasm"]  # a label the recipe does not know
    unknown["annotations"] = [{"completed_by": user, "result": bad, "was_cancelled": False}]
    del stranger["data"][ITEM_KEY]  # as if made in the UI
    stranger["annotations"] = [{"completed_by": user, "result": [], "was_cancelled": False}]
    backend.client.projects.import_tasks(pushed.project_id, request=[skipped, unknown, stranger], return_task_ids=True)


def test_a_pull_from_the_local_database_equals_the_export_api_pull(label_studio, spec, tmp_path):
    api = LabelStudioBackend(label_studio.url, label_studio.token)
    local = LabelStudioBackend(label_studio.url, label_studio.token, database=_database(label_studio))
    state = ProjectState(tmp_path / "state")
    _project_with_every_kind_of_annotation(api, spec, state)

    by_api = api.pull(spec, state)
    by_db = local.pull(spec, state)
    assert by_api.source == "export API" and by_db.source == f"local database {_database(label_studio)}"
    assert by_db.changes == QUIET  # nothing differs from the API's snapshot just before
    for field in ("tasks", "annotations", "judgments", "rejected", "skipped", "deleted_tasks"):
        assert getattr(by_db, field) == getattr(by_api, field), field
    assert (by_db.tasks, by_db.skipped, by_db.rejected) == (11, 1, 2)  # 8 pushed + 3 imported; "Sarcasm" and the stranger
    assert pl.read_parquet(by_db.snapshot / "judgments.parquet").equals(pl.read_parquet(by_api.snapshot / "judgments.parquet"))
    assert (by_db.snapshot / "rejects.jsonl").read_text() == (by_api.snapshot / "rejects.jsonl").read_text()
    assert "Sarcasm" in (by_db.snapshot / "rejects.jsonl").read_text()
    summary_api, summary_db = (json.loads((r.snapshot / "summary.json").read_text()) for r in (by_api, by_db))
    assert summary_db.pop("source").startswith("local database")
    assert {k: v for k, v in summary_db.items() if k not in ("changes", "previous")} == \
        {k: v for k, v in summary_api.items() if k not in ("changes", "previous", "source")}
    # export.json: every field the database reader writes is the API's, value for value
    exported_api, exported_db = (json.loads((r.snapshot / "export.json").read_bytes()) for r in (by_api, by_db))
    assert [t["id"] for t in exported_db] == sorted(t["id"] for t in exported_api)
    api_tasks = {t["id"]: t for t in exported_api}
    for task in exported_db:
        twin = api_tasks[task["id"]]
        assert task["data"] == twin["data"]
        assert [a["id"] for a in task["annotations"]] == sorted(a["id"] for a in twin["annotations"])
        twins = {a["id"]: a for a in twin["annotations"]}
        for ann in task["annotations"]:
            assert ann == {k: twins[ann["id"]][k] for k in ann}
    # and the API's next pull sees no change either
    assert api.pull(spec, state).changes == QUIET


def test_a_database_that_is_not_the_servers_is_never_read(label_studio, spec, tmp_path):
    stale = _copy(label_studio, tmp_path / "stale.sqlite3")  # before this test's project exists
    state = ProjectState(tmp_path / "state")
    api = LabelStudioBackend(label_studio.url, label_studio.token)
    plan = route(spec, RoutingOptions(sample_size=4))
    project_id = api.push(spec, plan, state).project_id
    simulate(api, spec, state, {p.item_id: dict(p.answers) for p in spec.preannotations}, ["e1"], noise=0.0, seed=1, overlap=1)

    renamed = _copy(label_studio, tmp_path / "renamed.sqlite3")
    with sqlite3.connect(renamed) as db:
        db.execute("UPDATE project SET title = 'another project' WHERE id = ?", (project_id,))
    short = _copy(label_studio, tmp_path / "short.sqlite3")
    with sqlite3.connect(short) as db:
        db.execute("DELETE FROM task WHERE id = (SELECT max(id) FROM task WHERE project_id = ?)", (project_id,))
    other_schema = _copy(label_studio, tmp_path / "schema.sqlite3")
    with sqlite3.connect(other_schema) as db:
        db.execute("ALTER TABLE task_completion RENAME COLUMN result TO result_json")

    cases = {
        stale: f"has no project {project_id}: it is not this server's database",
        renamed: "is titled 'another project'",
        short: "has 3 tasks, the server reports 4",
        other_schema: "table task_completion lacks result",
        tmp_path / "missing.sqlite3": "no database file at",
    }
    for path, why in cases.items():
        report = LabelStudioBackend(label_studio.url, label_studio.token, database=path).pull(spec, state)
        assert report.source.startswith("export API (the local database was not used: ") and why in report.source, report.source
        assert report.judgments == 4
        with pytest.raises(BackendError) as err:
            LabelStudioBackend(label_studio.url, label_studio.token, database=path, pull_from="database").pull(spec, state)
        assert why in str(err.value) and 'pull_from = "auto"' in str(err.value)
    # "api" never opens the file, "database" needs one
    assert LabelStudioBackend(label_studio.url, label_studio.token, database=stale, pull_from="api").pull(spec, state).source == "export API"
    with pytest.raises(BackendError, match="is not the local server"):
        LabelStudioBackend(label_studio.url, label_studio.token, pull_from="database")


def test_the_database_is_opened_read_only(label_studio, tmp_path):
    copy = _copy(label_studio, tmp_path / "copy.sqlite3")
    before = copy.read_bytes()
    with LabelStudioDatabase(copy) as db, pytest.raises(sqlite3.OperationalError, match="readonly"):
        db._conn.execute("DELETE FROM task")
    assert copy.read_bytes() == before
    with pytest.raises(DatabaseUnusable, match="no database file"):
        LabelStudioDatabase(tmp_path / "nothing.sqlite3")
    assert api_time("2026-11-27 09:41:35.225000") == "2026-11-27T09:41:35.225000Z"
    assert api_time("2026-11-27 09:41:35") == "2026-11-27T09:41:35Z"  # Django drops zero microseconds, and so does the API


def test_the_local_server_of_a_workspace_is_pulled_from_its_database(label_studio, spec, tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_VAR, raising=False)
    ws = tmp_path / "ws"
    (ws / "annotation").mkdir(parents=True)
    (ws / "annotation" / "label-studio").symlink_to(label_studio.data_dir)  # as if `corpusforge annotate serve` ran here
    backend = connect_label_studio(load_settings(None, [], workspace=ws))
    assert backend.url == label_studio.url and backend.database == ws / "annotation" / "label-studio" / DATABASE_FILE
    state = ProjectState(tmp_path / "state")
    backend.push(spec, route(spec, RoutingOptions(sample_size=3)), state)
    assert backend.pull(spec, state).source.startswith("local database ")
    api_only = connect_label_studio(load_settings(None, ["annotation.label_studio.pull_from='api'"], workspace=ws))
    assert api_only.database is None and api_only.pull(spec, state).source == "export API"


KILLED_PULL = """
import sys
from pathlib import Path
from annotation.backends.labelstudio.client import LabelStudioBackend
from annotation.recipes.sad import sad_recipe
from annotation.store import ProjectState
from pipelines.sad.pipeline import build_sad, read_candidate
from pipelines.sad.settings import SadSettings

url, token, database, state, stages, sample = sys.argv[1:]
build_sad([Path(sample)], SadSettings(), Path(stages))
tables = read_candidate(Path(stages))
spec = sad_recipe(tables["dialogues"], tables["utterances"])
print(LabelStudioBackend(url, token, database=Path(database)).pull(spec, ProjectState(Path(state))).source)
"""


@pytest.mark.parametrize("point", ["annotation.pull.exported:5", "annotation.snapshot.before_rename"])
def test_a_pull_from_the_database_killed_midway_leaves_no_snapshot_and_the_rerun_completes(label_studio, spec, tmp_path, point):
    local = LabelStudioBackend(label_studio.url, label_studio.token, database=_database(label_studio))
    state = ProjectState(tmp_path / "state")
    local.push(spec, route(spec, RoutingOptions(sample_size=5)), state)
    simulate(local, spec, state, {p.item_id: dict(p.answers) for p in spec.preannotations}, ["k1", "k2"], noise=0.2, seed=2, overlap=2)
    first = local.pull(spec, state)
    frozen = {p.name: p.read_bytes() for p in first.snapshot.iterdir()}
    env = {**os.environ, "CORPUSFORGE_FAULT_AT": point, "PYTHONPATH": str(REPO)}
    args = [label_studio.url, label_studio.token, str(_database(label_studio)), str(state.root), str(tmp_path / "stages"), str(SAD_SAMPLE / "reddit")]
    killed = subprocess.run([sys.executable, "-c", KILLED_PULL, *args], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stdout + killed.stderr  # SIGKILLed at the point
    assert state.snapshots() == [first.snapshot]  # no half snapshot counts as one
    assert {p.name: p.read_bytes() for p in first.snapshot.iterdir()} == frozen
    rerun = local.pull(spec, state)
    assert rerun.source.startswith("local database") and rerun.changes == QUIET and rerun.judgments == 10
    assert pl.read_parquet(rerun.snapshot / "judgments.parquet").equals(pl.read_parquet(first.snapshot / "judgments.parquet"))


def test_a_database_row_that_is_not_json_stops_the_pull_with_a_message_and_no_snapshot(label_studio, spec, tmp_path):
    api = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    project_id = api.push(spec, route(spec, RoutingOptions(sample_size=3)), state).project_id
    broken = _copy(label_studio, tmp_path / "broken.sqlite3")
    with sqlite3.connect(broken) as db:  # the schema checks JSON_VALID: only a damaged file gets past it
        db.execute("PRAGMA ignore_check_constraints = ON")
        task_id = db.execute("SELECT max(id) FROM task WHERE project_id = ?", (project_id,)).fetchone()[0]
        db.execute("UPDATE task SET data = '{\"cf_item_id\": ' WHERE id = ?", (task_id,))
    with pytest.raises(BackendError) as err:
        LabelStudioBackend(label_studio.url, label_studio.token, database=broken).pull(spec, state)
    message = str(err.value)
    assert f"task {task_id} holds text that is not JSON" in message and "no snapshot was made" in message and 'pull_from = "api"' in message
    assert state.snapshots() == [] and not any(state.pulls.iterdir())  # not even the half-read one
