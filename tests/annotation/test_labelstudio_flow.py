"""Push, pull, merge and adjudicate against a real Label Studio server, and the faults of issue 3.

Every test talks to the real server started by ``tests/servers.py``; nothing is
mocked. Item ids come from the bundled SAD sample built once per module.
"""

from __future__ import annotations

import json
import socket

import polars as pl
import pytest

from annotation.backends.base import BackendAuthError, BackendUnavailable
from annotation.backends.labelstudio.client import SIMULATED_DOMAIN, LabelStudioBackend
from annotation.backends.labelstudio.config import ITEM_KEY, to_result
from annotation.backends.labelstudio.server import LocalLabelStudio
from annotation.merge import adjudication_spec, merge
from annotation.routing import RoutingOptions, route
from annotation.simulate import simulate
from annotation.store import ProjectState
from corpusforge.ops.annotate import current_judgments

pytestmark = pytest.mark.slow


def server_items(backend: LabelStudioBackend, project_id: int) -> list[str]:
    return [i for i, _, _ in backend._server_items(project_id, 0)]


def test_push_is_idempotent_and_keeps_the_item_to_task_map(label_studio, spec, tmp_path):
    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=12, overlap=2, annotators=("a1", "a2", "a3")))
    first = backend.push(spec, plan, state, chunk_size=5)
    assert (first.created, first.already) == (12, 0)
    again = backend.push(spec, plan, state, chunk_size=5)
    assert (again.created, again.already, again.project_id) == (0, 12, first.project_id)
    items = server_items(backend, first.project_id)
    assert sorted(items) == sorted(plan.item_ids)  # each item exactly once
    assert state.task_map().keys() == set(plan.item_ids)
    assert state.assignments()[plan.item_ids[0]] == list(plan.assignments[0].annotators)
    # the pre-annotation went in as a prediction with its model name and score
    task = backend.client.tasks.get(state.task_map()[plan.item_ids[0]])
    (prediction,) = backend.client.predictions.list(task=task.id)
    assert prediction.model_version == spec.preannotations[0].model
    # per-annotator views exist once
    backend.push(spec, plan, state)
    titles = [v.data["title"] for v in backend.client.views.list(project=first.project_id)]
    assert sorted(t for t in titles if t.startswith("assigned:")) == ["assigned: a1", "assigned: a2", "assigned: a3"]
    # a bigger sample adds only the difference
    bigger = route(spec, RoutingOptions(sample_size=len(spec.items)))
    grown = backend.push(spec, bigger, state, chunk_size=7)
    assert grown.created == len(spec.items) - 12
    assert sorted(server_items(backend, first.project_id)) == sorted(i.id for i in spec.items)


def test_a_crash_between_import_and_map_write_is_recovered_without_duplicates(label_studio, spec, tmp_path, monkeypatch):
    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=15))
    calls = {"n": 0}
    real = ProjectState.record_tasks

    def crash_on_second_chunk(self, pairs, assigned=None):
        calls["n"] += 1
        if calls["n"] == 2:  # the import reached the server, the map write did not happen
            raise KeyboardInterrupt
        return real(self, pairs, assigned)

    monkeypatch.setattr(ProjectState, "record_tasks", crash_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        backend.push(spec, plan, state, chunk_size=5)
    monkeypatch.setattr(ProjectState, "record_tasks", real)
    assert state.pending() is not None and len(state.task_map()) == 5
    rerun = backend.push(spec, plan, state, chunk_size=5)
    assert (rerun.recovered, rerun.created) == (5, 5)
    items = server_items(backend, rerun.project_id)
    assert len(items) == 15 and sorted(items) == sorted(plan.item_ids)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_killed_mid_push_then_the_rerun_completes_with_no_duplicate(spec, tmp_path):
    server = LocalLabelStudio(tmp_path / "ls", port=_free_port()).start()
    try:
        backend = LabelStudioBackend(server.url, server.token)
        state = ProjectState(tmp_path / "state")
        plan = route(spec, RoutingOptions())

        def kill_after_two_chunks(done: int, total: int) -> None:
            if done >= 8:
                server.kill()

        with pytest.raises(BackendUnavailable, match="lost the connection to Label Studio at .*rerun"):
            backend.push(spec, plan, state, chunk_size=4, progress=kill_after_two_chunks)
        assert not server.is_running()
        server.start()
        rerun = LabelStudioBackend(server.url, server.token).push(spec, plan, state, chunk_size=4)
        items = server_items(LabelStudioBackend(server.url, server.token), rerun.project_id)
        assert len(items) == len(plan.item_ids) == len(set(items))
        assert rerun.already == 8 and rerun.created == len(plan.item_ids) - 8
    finally:
        server.stop()


def _annotate(backend, spec, state, truth_noise=0.0, annotators=("s1", "s2", "s3")):
    truth = {p.item_id: dict(p.answers) for p in spec.preannotations}
    return simulate(backend, spec, state, truth, list(annotators), noise=truth_noise, seed=1, overlap=3)


def test_pull_snapshots_are_immutable_and_track_updates_and_deletions(label_studio, spec, tmp_path):
    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=6))
    backend.push(spec, plan, state)
    sim = _annotate(backend, spec, state)
    assert sim.submitted == 18 and _annotate(backend, spec, state).submitted == 0  # resumable, no repeats
    first = backend.pull(spec, state)
    assert (first.tasks, first.judgments, first.rejected, first.changes) == (6, 18, 0, {"new": 18, "updated": 0, "deleted": 0})
    frozen = {p.name: p.read_bytes() for p in first.snapshot.iterdir()}
    assert all(not (p.stat().st_mode & 0o222) for p in first.snapshot.iterdir())  # read-only
    judgments = pl.read_parquet(first.snapshot / "judgments.parquet")
    assert judgments["simulated"].all() and judgments["annotator"].str.ends_with(SIMULATED_DOMAIN).all()
    # exported 4 tasks a request (2 requests instead of 1): the same judgments, nothing counted as changed
    batched = LabelStudioBackend(label_studio.url, label_studio.token, export_batch=4).pull(spec, state)
    assert batched.changes == {"new": 0, "updated": 0, "deleted": 0}
    assert pl.read_parquet(batched.snapshot / "judgments.parquet").equals(judgments)
    assert len(json.loads((batched.snapshot / "export.json").read_bytes())) == 6

    # an annotator changes one answer, another annotation is deleted
    target = judgments.row(0, named=True)
    backend.update_annotation(spec, target["annotation_id"], {"strategies": ["Analogy"], "stance": "support", "unclear": False})
    deleted = judgments.row(1, named=True)["annotation_id"]
    backend.delete_annotation(deleted)
    second = backend.pull(spec, state)
    assert second.snapshot != first.snapshot
    assert second.changes == {"new": 0, "updated": 1, "deleted": 1}
    assert {p.name: p.read_bytes() for p in first.snapshot.iterdir()} == frozen  # history kept
    current = {(i, a): ans for i, a, ans in current_judgments(second.snapshot)}
    assert current[(target["item_id"], target["annotator"])]["strategies"] == ["Analogy"]
    assert len(current) == 17


def test_merge_and_adjudication_round_trip(label_studio, spec, tmp_path):
    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=5))
    backend.push(spec, plan, state)
    users = backend.ensure_annotators(["x1", "x2"], simulated=True)
    tasks = state.task_map()
    disputed, agreed = plan.item_ids[0], plan.item_ids[1]
    backend.submit(spec, state, disputed, users["x1"], {"strategies": ["Question"], "stance": "oppose", "unclear": False})
    backend.submit(spec, state, disputed, users["x2"], {"strategies": ["Example"], "stance": "oppose", "unclear": False})
    for who in ("x1", "x2"):
        backend.submit(spec, state, agreed, users[who], {"strategies": ["Causality"], "stance": "support", "unclear": False})
    snap = backend.pull(spec, state).snapshot
    result = merge(spec, current_judgments(snap))
    assert [m.item_id for m in result.merged] == [agreed] and [q.item_id for q in result.queue] == [disputed]

    adj_spec = adjudication_spec(spec, result.queue)
    adj_state = ProjectState(tmp_path / "adjudication")
    pushed = backend.push(adj_spec, route(adj_spec, RoutingOptions()), adj_state)
    assert pushed.created == 1
    task = backend.client.tasks.get(adj_state.task_map()[disputed])
    assert "x1@" in task.data["cf_votes"] and "x2@" in task.data["cf_votes"]  # the adjudicator sees every answer
    boss = backend.ensure_annotators(["boss"], simulated=True)["boss"]
    backend.submit(adj_spec, adj_state, disputed, boss, {"strategies": ["Question", "Example"], "stance": "oppose", "unclear": False})
    decisions = {i: (who, ans) for i, who, ans in current_judgments(backend.pull(adj_spec, adj_state).snapshot)}
    final = merge(spec, current_judgments(snap), decisions=decisions)
    by_id = {m.item_id: m for m in final.merged}
    assert not final.queue
    assert by_id[disputed].source == "adjudicated" and by_id[disputed].answers["strategies"] == ["Question", "Example"]
    assert by_id[disputed].adjudicator.startswith("boss@") and by_id[disputed].votes["strategies"]["Question"] == 1
    assert tasks[disputed] != adj_state.task_map()[disputed]


def test_server_not_running_names_the_url_and_the_command():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(BackendUnavailable) as err:
        LabelStudioBackend(url, "x" * 40)
    assert url in str(err.value) and "corpusforge annotate serve" in str(err.value)


def test_wrong_token_is_a_clear_error_that_never_prints_the_token(label_studio):
    secret = "f00dfeed" * 5
    with pytest.raises(BackendAuthError) as err:
        LabelStudioBackend(label_studio.url, secret, token_source="CORPUSFORGE_LABEL_STUDIO_TOKEN")
    text = str(err.value) + repr(err.value)
    assert "rejected the API token from CORPUSFORGE_LABEL_STUDIO_TOKEN" in text and secret not in text
    # the SDK's error (it carries the request headers) is not chained into the traceback
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_unknown_label_from_a_changed_server_config_is_quarantined(label_studio, spec, tmp_path):
    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=2))
    pushed = backend.push(spec, plan, state)
    # someone adds a strategy on the server; an annotator uses it
    project = backend.client.projects.get(pushed.project_id)
    backend.client.projects.update(pushed.project_id, label_config=project.label_config.replace('<Choice value="Statement"', '<Choice value="Sarcasm"/><Choice value="Statement"'))
    user = backend.ensure_annotators(["odd"], simulated=True)["odd"]
    result = to_result(spec, {"strategies": ["Question"], "stance": "oppose"})
    result[0]["value"]["choices"].append("Sarcasm")
    backend.client.annotations.create(state.task_map()[plan.item_ids[0]], result=result, completed_by=user)
    backend.submit(spec, state, plan.item_ids[1], user, {"strategies": ["Example"], "stance": "support", "unclear": False})
    report = backend.pull(spec, state)
    assert (report.judgments, report.rejected) == (1, 1)
    (reject,) = [json.loads(line) for line in (report.snapshot / "rejects.jsonl").read_text().splitlines()]
    assert reject["item_id"] == plan.item_ids[0] and "unknown label(s) 'Sarcasm'" in reject["reason"]
    assert json.loads((report.snapshot / "summary.json").read_text())["rejected"] == 1


def test_tasks_deleted_on_the_server_are_reported_and_snapshots_stay(label_studio, spec, tmp_path):
    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=4))
    backend.push(spec, plan, state)
    _annotate(backend, spec, state, annotators=("d1",))
    first = backend.pull(spec, state)
    before = (first.snapshot / "judgments.parquet").read_bytes()
    gone = plan.item_ids[0]
    backend.client.tasks.delete(state.task_map()[gone])
    second = backend.pull(spec, state)
    assert second.deleted_tasks == [gone] and second.tasks == 3
    assert second.changes["deleted"] == 1
    assert (first.snapshot / "judgments.parquet").read_bytes() == before
    assert json.loads((second.snapshot / "summary.json").read_text())["deleted_tasks"] == [gone]
    data = json.loads((first.snapshot / "export.json").read_text())
    assert gone in {t["data"][ITEM_KEY] for t in data}
