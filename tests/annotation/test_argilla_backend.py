"""The Argilla backend: the mapping of every recipe (pure), and push / pull / simulate / faults
against the real argilla-server 2.8 (``argilla`` fixture), with a parity check against Label Studio."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import polars as pl
import pytest

from annotation.backends.argilla.mapping import (
    MAX_LABELS, dataset_settings, differences, from_values, record_payload, structure, suggestions, to_values,
)
from annotation.backends.base import BackendAuthError, BackendUnavailable
from annotation.routing import RoutingOptions, route
from annotation.store import ProjectState

SAD_SAMPLE = Path(__file__).resolve().parents[2] / "pipelines" / "sad" / "sample"


def _kinds(settings):
    return {q["name"]: q["settings"]["type"] for q in settings["questions"]}


# --------------------------------------------------------------------------- mapping (pure, every recipe)


def test_sad_maps_to_fields_questions_metadata_suggestions_and_distribution(spec):
    s = dataset_settings(spec, min_submitted=3)
    assert s["distribution"] == {"strategy": "overlap", "min_submitted": 3}
    kinds = _kinds(s)
    for q in spec.questions:
        expected = {"multi_choice": "multi_label_selection", "single_choice": "label_selection", "flag": "label_selection", "text": "text"}[q.kind]
        assert kinds[q.name] == expected
    dialogue = [f for f in s["fields"] if f["settings"]["use_markdown"]]
    assert dialogue and sum(f["required"] for f in s["fields"]) == 1
    assert "cf_gold" in structure(s)["metadata"] and "cf_confidence" in structure(s)["metadata"]
    plan = route(spec, RoutingOptions(sample_size=3, overlap=2, annotators=("a", "b")))
    a = plan.assignments[0]
    pre = next(p for p in spec.preannotations if p.item_id == a.item.id)
    qids = {q.name: f"id-{q.name}" for q in spec.questions}
    rec = record_payload(spec, a, pre, qids)
    assert rec["external_id"] == a.item.id and rec["metadata"]["cf_assigned"] == list(a.annotators)
    assert all(rec["metadata"]["cf_" + k] == v for k, v in a.item.strata.items())
    by_q = {x["question_id"]: x for x in rec["suggestions"]}
    for name, value in pre.answers.items():
        q = spec.question(name)
        if q.kind == "multi_choice" and not value:
            continue
        assert by_q[f"id-{name}"]["agent"] == pre.model
        score = by_q[f"id-{name}"]["score"]
        assert (score == [pre.score] * len(value)) if isinstance(score, list) else score == pre.score
    # answers round-trip, including an empty label set and a flag
    for p in spec.preannotations[:20]:
        answers, problems = from_values(spec, json.loads(json.dumps(to_values(spec, p.answers))))
        assert not problems and answers == {**{q.name: [] for q in spec.questions if q.kind == "multi_choice"},
                                             **{q.name: False for q in spec.questions if q.kind == "flag"}, **p.answers}


def test_polyrefuse_renames_the_field_that_shares_a_question_name_and_prefills_the_correction():
    from annotation.recipes.polyrefuse import proofreading_recipe
    from tests.annotation.test_polyrefuse_proofreading import handmade_rows

    spec = proofreading_recipe(handmade_rows(), audit_fraction=0.5)
    s = dataset_settings(spec)
    names = [f["name"] for f in s["fields"]]
    assert "translation_shown" in names and "translation" in _kinds(s) and _kinds(s)["translation"] == "text"
    item = spec.items[0]
    sug = suggestions(spec, item.payload, None)
    assert sug["translation"]["value"] == item.payload["translation"] and sug["translation"]["agent"] == "corpusforge:source"
    answers, problems = from_values(spec, to_values(spec, {"verdict": "edit", "translation": "Neu"}))
    assert not problems and answers == {"verdict": "edit", "translation": "Neu"}
    assert from_values(spec, {"verdict": {"value": "maybe"}})[1]  # an unknown label is a problem, not an answer


def test_facts_maps_every_correction_box_and_its_strata():
    from annotation.recipes.facts import verification_recipe
    from tests.annotation.test_facts_verification import doctored_counts

    spec = verification_recipe(doctored_counts())
    s = dataset_settings(spec)
    assert [k for q, k in _kinds(s).items() if k == "text"] and _kinds(s)["verdict"] == "label_selection"
    assert {"cf_lang", "cf_reason"} <= set(structure(s)["metadata"])
    verdict = next(q for q in s["questions"] if q["name"] == "verdict")
    assert all("description" in o for o in verdict["settings"]["options"])  # hints ride on the labels
    plan = route(spec, RoutingOptions())
    rec = record_payload(spec, plan.assignments[0], None, {q.name: q.name for q in spec.questions})
    assert rec["metadata"]["cf_lang"] == plan.assignments[0].item.strata["lang"]


def test_relaionet_images_travel_as_data_urls_and_1000_classes_become_a_typed_answer(tmp_path):
    from annotation.recipes.relaionet import proofreading_recipe
    from tests.annotation.test_relaionet_proofreading import glosses, synthetic_rows

    rows = synthetic_rows(3)
    paths = {}
    for sid in rows["sample_id"]:
        (tmp_path / f"{sid}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + sid.encode())
        paths[sid] = str(tmp_path / f"{sid}.png")
    spec = proofreading_recipe(rows, paths, glosses(), double_fraction=0.5, seed=0)
    s = dataset_settings(spec)
    kinds = _kinds(s)
    assert kinds["class"] == "text" and len(spec.question("class").choices) > MAX_LABELS
    assert kinds["reason"] == "label_selection" and "Answer only when" in next(q for q in s["questions"] if q["name"] == "reason")["description"]
    # a server that allows 1,000 labels gets a searchable label question
    wide = next(q for q in dataset_settings(spec, max_labels=2000)["questions"] if q["name"] == "class")
    assert wide["settings"]["type"] == "label_selection" and wide["settings"]["visible_options"] == 20
    plan = route(spec, RoutingOptions())
    rec = record_payload(spec, plan.assignments[0], None, {q.name: q.name for q in spec.questions})
    assert rec["fields"]["image"].startswith('<img src="data:image/png;base64,')
    choice = spec.question("class").choices[5]
    assert from_values(spec, {"verdict": {"value": "other class"}, "class": {"value": choice}}) [0]["class"] == choice
    assert from_values(spec, {"verdict": {"value": "other class"}, "class": {"value": "a cat, probably"}})[1]


def test_differences_name_what_changed(spec):
    a = dataset_settings(spec)
    b = json.loads(json.dumps(a))
    b["questions"][0]["settings"]["options"].append({"value": "New", "text": "New"})
    b["fields"].pop()
    found = differences(structure(b), structure(a))
    assert any("other labels" in d and "New" in d for d in found) and any("is on the server but not in the recipe" in d for d in found)


# --------------------------------------------------------------------------- the real server

rg = pytest.importorskip("argilla", reason="the Argilla SDK is the `argilla` extra: pip install -e .[argilla]")


def _backend(argilla, workspace=None, **kw):
    from annotation.backends.argilla.backend import ArgillaBackend

    return ArgillaBackend(argilla.url, argilla.api_key, workspace=workspace or f"ws-{uuid.uuid4().hex[:8]}", **kw)


@pytest.mark.slow
def test_push_is_idempotent_resumable_and_never_wipes_metadata(argilla, spec, tmp_path, monkeypatch):
    backend = _backend(argilla)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=12, overlap=2, annotators=("a1", "a2", "a3")))
    real = ProjectState.record_tasks
    steps = iter([real, None])  # the first chunk is mapped; the second dies after its records reached the server

    def record_or_die(self, pairs, assigned=None):
        step = next(steps, real)
        if step is None:
            raise KeyboardInterrupt("killed between record creation and the map write")
        return step(self, pairs, assigned)

    monkeypatch.setattr(ProjectState, "record_tasks", record_or_die)
    with pytest.raises(KeyboardInterrupt):
        backend.push(spec, plan, state, chunk_size=5)
    monkeypatch.undo()
    resumed = backend.push(spec, plan, state, chunk_size=5)
    assert (resumed.recovered, resumed.created, resumed.already) == (5, 2, 10)  # already: mapped before this push ran
    again = backend.push(spec, plan, state)
    assert (again.created, again.already) == (0, 12)
    dataset_id = state.project()["dataset_id"]
    records = [r for page in backend._records(dataset_id) for r in page]
    assert sorted(r["external_id"] for r in records) == sorted(plan.item_ids)  # each item exactly once
    # a workspace that lost its task map adopts the records instead of re-logging them: metadata stays
    other = ProjectState(tmp_path / "other")
    adopted = backend.push(spec, plan, other)
    assert (adopted.created, adopted.already) == (0, 12)
    after = {r["external_id"]: r for page in backend._records(dataset_id) for r in page}
    for r in records:
        assert after[r["external_id"]]["metadata"] == r["metadata"] and r["metadata"]["cf_gold"] in ("yes", "no")


@pytest.mark.slow
def test_pull_reads_submitted_draft_and_discarded_responses(argilla, spec, tmp_path):
    backend = _backend(argilla)
    state = ProjectState(tmp_path / "state")
    plan = route(spec, RoutingOptions(sample_size=4, overlap=2))
    backend.push(spec, plan, state)
    users = backend.ensure_annotators(["ann1", "ann2"], simulated=True)
    ids = plan.item_ids
    answers = {q.name: [] for q in spec.questions if q.kind == "multi_choice"}
    answers.update(spec.preannotations[0].answers)
    backend.submit(spec, state, ids[0], users["ann1"], answers)
    backend.submit(spec, state, ids[0], users["ann2"], answers, status="draft")
    backend.submit(spec, state, ids[1], users["ann1"], {}, status="discarded")
    report = backend.pull(spec, state)
    assert (report.tasks, report.annotations, report.judgments, report.skipped) == (4, 3, 1, 1)
    summary = json.loads((report.snapshot / "summary.json").read_text())
    assert summary["statuses"] == {"submitted": 1, "draft": 1, "discarded": 1}
    row = pl.read_parquet(report.snapshot / "judgments.parquet").row(0, named=True)
    assert row["annotator"] == "ann1@simulated.corpusforge.invalid" and row["simulated"]
    assert json.loads(row["answers"]) == {**{q.name: False for q in spec.questions if q.kind == "flag"}, **answers}
    assert json.loads((report.snapshot / "export.json").read_text())[0]["external_id"] in ids
    # read one record a page (4 requests instead of 1): the same judgments, nothing counted as changed
    from annotation.backends.argilla.backend import ArgillaBackend

    paged = ArgillaBackend(argilla.url, argilla.api_key, page_size=1).pull(spec, state)
    assert paged.changes == {"new": 0, "updated": 0, "deleted": 0}
    assert pl.read_parquet(paged.snapshot / "judgments.parquet").equals(pl.read_parquet(report.snapshot / "judgments.parquet"))
    with pytest.raises(ValueError, match="page_size must be between 1 and 1000"):
        ArgillaBackend(argilla.url, argilla.api_key, page_size=5000)


@pytest.mark.slow
def test_faults_server_down_wrong_key_and_a_dataset_with_other_settings(argilla, spec, tmp_path):
    from annotation.backends.argilla.backend import ArgillaBackend, DatasetMismatch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailable, match="not running at http://127.0.0.1:.*annotate serve --backend argilla"):
        ArgillaBackend(f"http://127.0.0.1:{port}", "whatever")
    wrong = "wrong-" + uuid.uuid4().hex
    with pytest.raises(BackendAuthError) as err:
        ArgillaBackend(argilla.url, wrong)
    assert wrong not in str(err.value) and "CORPUSFORGE_ARGILLA_API_KEY" in str(err.value)
    backend = _backend(argilla)
    plan = route(spec, RoutingOptions(sample_size=2))
    backend.push(spec, plan, ProjectState(tmp_path / "a"))
    from dataclasses import replace

    changed = replace(spec, questions=(replace(spec.questions[0], choices=(*spec.questions[0].choices, "Brand new")), *spec.questions[1:]))
    with pytest.raises(DatasetMismatch, match="other labels.*Brand new"):
        backend.push(changed, route(changed, RoutingOptions(sample_size=2)), ProjectState(tmp_path / "b"))


@pytest.mark.slow
def test_parity_with_label_studio_merged_labels_and_agreement(argilla, label_studio, spec, tmp_path):
    """The same simulated annotations through both servers give the same merge and agreement."""
    from annotation.agreement import agreement_report
    from annotation.backends.labelstudio.client import LabelStudioBackend
    from annotation.merge import MergePolicy, merge
    from annotation.simulate import oracle_from_preannotations, simulate
    from corpusforge.ops.annotate import current_judgments

    plan = route(spec, RoutingOptions(sample_size=15, overlap=3))
    truth = oracle_from_preannotations(spec, 0.15, seed=7)
    outcomes = {}
    for name, backend in (("ls", LabelStudioBackend(label_studio.url, label_studio.token)), ("argilla", _backend(argilla))):
        state = ProjectState(tmp_path / name)
        backend.push(spec, plan, state)
        sim = simulate(backend, spec, state, truth, ["ann1", "ann2", "ann3"], noise=0.2, seed=3)
        assert sim.submitted == 45
        snapshot = backend.pull(spec, state).snapshot
        judgments = sorted(current_judgments(snapshot), key=lambda j: (j[0], j[1]))
        result = merge(spec, judgments, MergePolicy(min_annotators=1, min_agreement=0.6))
        multi = {q.name: q.choices for q in spec.questions if q.kind == "multi_choice"}
        single = {q.name: q.choices for q in spec.questions if q.kind == "single_choice"}
        flags = tuple(q.name for q in spec.questions if q.kind == "flag")
        report = agreement_report(judgments, multi, single, flags)
        outcomes[name] = (judgments, sorted(map(json.dumps, result.rows()), key=str), result.counts(), report.to_markdown())
    assert outcomes["ls"][0] == outcomes["argilla"][0]
    assert outcomes["ls"][1:] == outcomes["argilla"][1:]


@pytest.mark.slow
def test_cli_push_simulate_pull_with_backend_argilla(argilla, tmp_path, monkeypatch):
    from tests.corpusforge.test_cli_sad import cf

    monkeypatch.setenv("CORPUSFORGE_ARGILLA_API_KEY", argilla.api_key)
    ws = str(tmp_path / "ws")
    s = ["--set", f"annotation.argilla.url={argilla.url}", "--set", f"annotation.argilla.workspace=cli-{uuid.uuid4().hex[:6]}",
         "--set", "annotation.sad.annotators=['ann1','ann2','ann3']"]

    def run(*args):
        result = cf(*args, "-w", ws, *s, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    cf("build", "sad", "--input", str(SAD_SAMPLE / "reddit"), "-w", ws, cwd=tmp_path)
    assert "10 tasks created, 0 already there" in run("annotate", "push", "sad", "--backend", "argilla", "--sample-size", "10")
    assert "0 tasks created, 10 already there" in run("annotate", "push", "sad", "--backend", "argilla", "--sample-size", "10")
    assert "30 simulated annotations submitted" in run("annotate", "simulate", "sad", "--backend", "argilla", "--simulated", "--noise", "0.2")
    assert "10 tasks, 30 judgments" in run("annotate", "pull", "sad", "--backend", "argilla")
    assert (tmp_path / "ws" / "annotation" / "sad" / "argilla" / "project.json").exists()
    assert not (tmp_path / "ws" / "annotation" / "sad" / "label-studio").exists()


@pytest.mark.slow
def test_sad_adjudication_round_through_argilla(argilla, spec, tmp_path):
    """Push, three simulated annotators, pull, merge; the queue goes to an adjudication dataset, a
    simulated adjudicator decides it, and the next merge takes those decisions (as the ops do)."""
    from annotation.merge import MergePolicy, adjudication_spec, merge
    from annotation.simulate import oracle_from_preannotations, simulate
    from corpusforge.ops.annotate import current_judgments

    backend = _backend(argilla)
    state, adj_state = ProjectState(tmp_path / "argilla"), ProjectState(tmp_path / "argilla-adjudication")
    plan = route(spec, RoutingOptions(sample_size=12, overlap=3, annotators=("ann1", "ann2", "ann3")))
    truth = oracle_from_preannotations(spec, 0.15, seed=5)
    backend.push(spec, plan, state)
    assert simulate(backend, spec, state, truth, ["ann1", "ann2", "ann3"], noise=0.3, seed=1).submitted == 36
    judgments = current_judgments(backend.pull(spec, state).snapshot)
    policy = MergePolicy(min_annotators=3, min_agreement=0.9)  # strict: noisy annotators leave a queue
    first = merge(spec, judgments, policy)
    queued = {q.item_id for q in first.queue}
    assert queued and first.counts()["merged"] + len(queued) == 12

    adj_spec = adjudication_spec(spec, first.queue)
    pushed = backend.push(adj_spec, route(adj_spec, RoutingOptions()), adj_state)
    assert pushed.created == len(queued) and "/dataset/" in pushed.project_url
    records = [r for page in backend._records(adj_state.project()["dataset_id"]) for r in page]
    assert {r["external_id"] for r in records} == queued
    assert all("Why queued" in r["fields"]["cf_votes"] for r in records)  # every annotator's answers shown
    adjudicated = simulate(backend, adjudication_spec(spec, []), adj_state, truth, ["adjudicator"], noise=0.0, seed=0)
    assert adjudicated.submitted == len(queued)

    decided = backend.pull(adjudication_spec(spec, []), adj_state)  # as ops.adjudication_pull: no items needed
    assert decided.judgments == len(queued)
    decisions = {item: (who, answers) for item, who, answers in current_judgments(decided.snapshot)}
    assert all(who == "adjudicator@simulated.corpusforge.invalid" for who, _ in decisions.values())
    final = merge(spec, judgments, policy, decisions=decisions)
    counts = final.counts()
    assert counts["queued"] == 0 and counts["merged"] == 12 and counts["source_adjudicated"] == len(queued)
    rows = {r["item_id"]: r for r in final.rows()}
    for item in queued:
        assert json.loads(rows[item]["answers"]) == decisions[item][1]
