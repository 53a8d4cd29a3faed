"""reLAIONet image proofreading: the recipe, its routing and corrections, and a real server round trip.

The pure tests call the recipe and inspect the spec. The round trip writes the images into a
workspace below the real Label Studio's document root (``tests/servers.py``), pushes,
lets simulated proofreaders answer through the API, pulls, and applies the corrections; it also
fetches an image as the browser would and pushes a second time (nothing new). Nothing mocked.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import requests

from annotation.backends.base import BackendError
from annotation.backends.labelstudio.client import LabelStudioBackend
from annotation.backends.labelstudio.config import from_result, label_config, to_result
from annotation.recipes.relaionet import (
    agreement_summary,
    corrections_from_judgments,
    double_sample,
    proofreading_recipe,
    route_double,
)
from annotation.store import ProjectState
from corpusforge.config import load_settings
from corpusforge.ops import relaionet_proofread as ops
from pipelines.relaionet.corrections import apply_corrections, read_corrections
from schemas.relaionet import class_names, wnids
from tests.pipelines.relaionet.test_corrections import candidate_frame

SIM = "@simulated.corpusforge.invalid"


def glosses() -> list[str]:
    return ops.read_glosses()


def synthetic_rows(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "sample_id": [f"{k:06d}" for k in range(n)], "caption": [f"caption {k}" for k in range(n)],
        "caption_class": [k % 1000 for k in range(n)], "text_in_image": ["no"] * n, "ocr_text": [None] * n,
    }, schema_overrides={"ocr_text": pl.String})


def paths_for(rows: pl.DataFrame) -> dict[str, str]:
    return {sid: f"/images/{sid}.png" for sid in rows["sample_id"]}


def small_spec(double_fraction: float = 0.4):
    rows = candidate_frame()
    return proofreading_recipe(rows, paths_for(rows), glosses(), double_fraction=double_fraction, seed=0)


# --------------------------------------------------------------------------- the recipe (pure)


def test_items_show_image_caption_proposed_class_with_gloss_and_the_ocr_flag():
    spec = small_spec()
    assert [i.id for i in spec.items] == candidate_frame()["sample_id"].to_list()
    assert [(d.kind, d.field) for d in spec.display][0] == ("image", "image")
    shark = next(i for i in spec.items if i.id == "100003")
    assert shark.payload["image"] == "/images/100003.png" and shark.payload["caption"] == "great white shark poster"
    assert shark.payload["proposed"] == f"great white shark ({wnids()[2]}): {glosses()[2]}" and shark.payload["proposed_label"] == 2
    assert shark.payload["text_in_image"].startswith("YES") and "'poster'" in shark.payload["text_in_image"]
    assert next(i for i in spec.items if i.id == "100002").payload["text_in_image"] == "not checked (no OCR ran)"
    with pytest.raises(ValueError, match="no image path for sample '100001'"):
        proofreading_recipe(candidate_frame(), {}, glosses())
    with pytest.raises(ValueError, match="double_fraction must be in"):
        proofreading_recipe(candidate_frame(), paths_for(candidate_frame()), glosses(), double_fraction=1.5)


def test_the_double_share_is_seeded_by_id_independent_of_order_and_grows_as_a_superset():
    rows = synthetic_rows(100)
    spec = proofreading_recipe(rows, paths_for(rows), glosses(), double_fraction=0.05, seed=0)
    double = {i.id for i in spec.items if i.strata["proofreaders"] == "double"}
    assert len(double) == 5  # 5% of 100, not 6 (no floating-point overshoot)
    shuffled = rows.sample(fraction=1.0, shuffle=True, seed=3)
    again = proofreading_recipe(shuffled, paths_for(rows), glosses(), double_fraction=0.05, seed=0)
    assert {i.id for i in again.items if i.strata["proofreaders"] == "double"} == double
    assert double < double_sample(rows["sample_id"].to_list(), 0.2, 0)
    assert double != double_sample(rows["sample_id"].to_list(), 0.05, 1)
    assert double_sample(rows["sample_id"].to_list(), 0.0, 0) == set()


def test_the_class_question_is_a_searchable_choice_of_the_1000_names_shown_for_other_class():
    spec = small_spec()
    cls = spec.question("class")
    assert cls.kind == "single_choice" and cls.searchable and cls.choices == class_names() and len(cls.choices) == 1000
    assert cls.shown_when == ("verdict", "other class")
    assert spec.question("verdict").choices == ("confirm", "other class", "unusable") and spec.question("verdict").required
    xml = ET.fromstring(label_config(spec))
    taxonomy = xml.find(".//Taxonomy")
    assert taxonomy is not None and taxonomy.get("name") == "class" and taxonomy.get("maxUsages") == "1"
    assert len(taxonomy.findall("Choice")) == 1000
    holder = next(v for v in xml.iter("View") if v.find("Taxonomy") is not None)
    assert (holder.get("visibleWhen"), holder.get("whenTagName"), holder.get("whenChoiceValue")) == ("choice-selected", "verdict", "other class")
    assert xml.find(".//Image").get("value") == "$image"
    answers = {"verdict": "other class", "class": "goldfish", "note": "a goldfish, not a tench"}
    result = to_result(spec, answers)
    assert {"from_name": "class", "to_name": "cf_target", "type": "taxonomy", "value": {"taxonomy": [["goldfish"]]}} in result
    assert from_result(spec, result) == (answers, [])
    _, problems = from_result(spec, [{"from_name": "class", "type": "taxonomy", "value": {"taxonomy": [["goldfish"], ["tench"]]}}])
    assert problems and "expected one choice" in problems[0]
    # a searchable option changes nothing for the other recipes' fingerprints (no new keys when off)
    assert "searchable" not in spec.question("verdict").ui() and "shown_when" not in spec.question("note").ui()


def test_routing_sends_double_items_to_two_proofreaders_and_the_rest_to_one():
    rows = synthetic_rows(30)
    spec = proofreading_recipe(rows, paths_for(rows), glosses(), double_fraction=0.2, seed=0)
    plan = route_double(spec, ["anna", "ben", "chloe"], seed=0)
    by_item = {a.item.id: a.annotators for a in plan.assignments}
    assert len(by_item) == 30
    for item in spec.items:
        assert len(set(by_item[item.id])) == (2 if item.strata["proofreaders"] == "double" else 1)
    assert plan.strata == {("double",): 6, ("single",): 24}
    assert max(plan.load().values()) - min(plan.load().values()) <= 2
    with pytest.raises(ValueError, match="needs at least 2 proofreaders"):
        route_double(spec, ["anna"])
    with pytest.raises(ValueError, match="no proofreaders"):
        route_double(spec, [])


def judgments(*rows: tuple[str, str, dict, str]) -> pl.DataFrame:
    return pl.DataFrame([
        {"item_id": i, "annotator": a, "updated_at": at, "annotation_id": n, "answers": json.dumps(ans)}
        for n, (i, a, ans, at) in enumerate(rows, start=1)
    ])


def test_corrections_settle_confirm_relabel_unusable_and_dispute_disagreement():
    spec = small_spec(double_fraction=0.0)
    t = "2025-01-01T10:00:00Z"
    later = "2025-01-01T11:00:00Z"
    df = judgments(
        ("100001", "anna", {"verdict": "confirm"}, t),
        ("100002", "anna", {"verdict": "other class", "class": "tiger shark"}, t),
        ("100003", "anna", {"verdict": "unusable", "reason": "text in image"}, t),
        ("100004", "anna", {"verdict": "confirm"}, t),
        ("100004", "ben", {"verdict": "other class", "class": "Labrador retriever"}, t),
        ("100005", "anna", {"verdict": "other class"}, t),  # no class: not applied
        ("100005", "ben", {"verdict": "other class", "class": "analog clock"}, t),  # the proposed class: a confirm
    )
    out = {r["sample_id"]: r for r in corrections_from_judgments(spec, df).iter_rows(named=True)}
    assert (out["100001"]["status"], out["100001"]["label"], out["100001"]["annotators"]) == ("accepted", 0, ["anna"])
    assert (out["100002"]["status"], out["100002"]["label"], out["100002"]["proposed_label"]) == ("relabelled", class_names().index("tiger shark"), 1)
    assert (out["100003"]["status"], out["100003"]["unusable_reason"], out["100003"]["label"]) == ("unusable", "text_in_image", None)
    r = out["100004"]
    assert (r["status"], r["label"], r["agree"], r["annotators"]) == ("disputed", None, False, ["anna", "ben"])
    assert "disagree" in r["problem"] and f"relabelled:{class_names().index('Labrador retriever')}" in r["problem"]
    assert out["100005"]["status"] is None and "anna: verdict 'other class' without a class" in out["100005"]["problem"]

    # an annotator's later judgment replaces their earlier one: the dispute is settled
    df2 = pl.concat([df, judgments(("100004", "ben", {"verdict": "confirm"}, later)).with_columns(pl.lit(99, dtype=pl.Int64).alias("annotation_id"))])
    settled = corrections_from_judgments(spec, df2).filter(pl.col("sample_id") == "100004").row(0, named=True)
    assert (settled["status"], settled["label"], settled["agree"]) == ("accepted", 207, True)


def test_a_double_item_waits_for_its_second_proofreader_and_agreement_counts_pairs():
    spec = small_spec(double_fraction=1.0)
    t = "2025-01-01T10:00:00Z"
    df = judgments(
        ("100001", "anna", {"verdict": "confirm"}, t),
        ("100002", "anna", {"verdict": "confirm"}, t), ("100002", "ben", {"verdict": "confirm"}, t),
        ("100003", "anna", {"verdict": "unusable", "reason": "unsafe"}, t), ("100003", "ben", {"verdict": "unusable", "reason": "not a photo"}, t),
        ("100004", "anna", {"verdict": "confirm"}, t), ("100004", "ben", {"verdict": "unusable"}, t),
    )
    c = corrections_from_judgments(spec, df)
    out = {r["sample_id"]: r for r in c.iter_rows(named=True)}
    assert out["100001"]["status"] is None and "1 of 2" in out["100001"]["problem"]
    assert out["100002"]["status"] == "accepted" and out["100002"]["agree"]
    assert (out["100003"]["status"], out["100003"]["unusable_reason"]) == ("unusable", "other")  # agree on unusable, not on why
    assert out["100004"]["status"] == "disputed"
    a = agreement_summary(c)
    assert (a["items"], a["agreeing"], a["percent_agreement"]) == (3, 2, 66.67)
    assert a["krippendorff_alpha"] is not None and a["fleiss_kappa"] is not None


# --------------------------------------------------------------------------- against the real server


def round_settings(label_studio, tmp_path: Path, monkeypatch, **extra: str):
    """Settings of a workspace below the server's document root, with two proofreaders."""
    monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", label_studio.token)
    ws = label_studio.document_root / f"ws-{tmp_path.name}"
    overrides = {
        "annotation.label_studio.url": f"'{label_studio.url}'",
        "annotation.relaionet.annotators": "['anna', 'ben']",
        "annotation.relaionet.double_fraction": "0.4",
        "annotation.relaionet.document_root": f"'{label_studio.document_root}'",
        **extra,
    }
    return load_settings(None, [f"{k}={v}" for k, v in overrides.items()], workspace=ws)


def test_round_trip_push_simulate_pull_apply(label_studio, tmp_path, monkeypatch):
    settings = round_settings(label_studio, tmp_path, monkeypatch)
    cands = candidate_frame()
    double = sorted(double_sample(cands["sample_id"].to_list(), 0.4, 0))
    single = [s for s in cands["sample_id"] if s not in double]
    assert len(double) == 2 and len(single) == 3

    report, plan, written = ops.push(settings, cands)
    assert (report.created, report.already, written) == (5, 0, 5)
    assert sorted(len(a.annotators) for a in plan.assignments) == [1, 1, 1, 2, 2]
    images = sorted(p.name for p in ops.images_dir(settings).iterdir())
    assert images == ["100001.png", "100002.jpg", "100003.png", "100004.jpg", "100005.png"]
    data = dict(zip(cands["sample_id"], cands["image"].struct.field("bytes")))
    assert (ops.images_dir(settings) / "100002.jpg").read_bytes() == data["100002"]

    # the image as the labelling page loads it: a local-files URL, served to a logged-in user only
    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    task_id = ProjectState(ops.project_state(settings).root).task_map()["100002"]
    headers = {"Authorization": f"Token {label_studio.token}"}
    task = requests.get(f"{label_studio.url}/api/tasks/{task_id}/", headers=headers, timeout=30).json()
    url = task["data"]["image"]
    rel = (ops.images_dir(settings) / "100002.jpg").relative_to(label_studio.document_root)
    assert url == f"/data/local-files/?d={rel.as_posix()}"
    served = requests.get(label_studio.url + url, headers=headers, timeout=30)
    assert served.status_code == 200 and served.content == data["100002"]
    assert requests.get(label_studio.url + url, timeout=30).status_code in (401, 403)
    storages = backend.client.import_storage.local.list(project=report.project_id)
    assert len(storages) == 1 and storages[0].path == str(ops.images_dir(settings))

    # a second push: nothing new, no file rewritten, still one storage
    before = {p.name: p.stat().st_mtime_ns for p in ops.images_dir(settings).iterdir()}
    report2, _, written2 = ops.push(settings, cands)
    assert (report2.created, report2.already, written2) == (5 - 5, 5, 0)
    assert {p.name: p.stat().st_mtime_ns for p in ops.images_dir(settings).iterdir()} == before
    assert len(backend.client.import_storage.local.list(project=report.project_id)) == 1

    relabel, unusable, confirm = single
    disputed, agreed = double
    key = {
        relabel: {"verdict": "other class", "class": "tiger shark", "note": "a tiger shark"},
        unusable: {"verdict": "unusable", "reason": "not a photo"},
        disputed: {"ben": {"verdict": "other class", "class": "wall clock"}},  # anna confirms (the default)
    }
    sim = ops.simulate(settings, key, cands)
    assert (sim.submitted, sim.already) == (7, 0)
    assert ops.simulate(settings, key, cands).submitted == 0  # resumable: nothing twice

    outcome = ops.pull(settings, cands)
    assert outcome.report.judgments == 7 and outcome.report.rejected == 0
    assert outcome.counts == {"accepted": 2, "disputed": 1, "relabelled": 1, "unusable": 1}
    assert outcome.added["agreement"] == {"items": 2, "agreeing": 1, "percent_agreement": 50.0,
                                          "krippendorff_alpha": outcome.added["agreement"]["krippendorff_alpha"],
                                          "fleiss_kappa": outcome.added["agreement"]["fleiss_kappa"]}
    summary = json.loads((outcome.corrections.parent / "summary.json").read_text())
    assert summary["agreement"]["percent_agreement"] == 50.0 and summary["by_status"]["disputed"] == 1
    assert ops.latest_corrections(settings) == outcome.corrections

    applied = apply_corrections(cands, read_corrections(outcome.corrections))
    out = {r["sample_id"]: r for r in applied.candidates.iter_rows(named=True)}
    assert (out[relabel]["proofread_status"], out[relabel]["label"], out[relabel]["label_source"]) == (
        "relabelled", class_names().index("tiger shark"), "proofreader")
    assert (out[unusable]["proofread_status"], out[unusable]["unusable_reason"]) == ("unusable", "not_a_photo")
    assert out[confirm]["proofread_status"] == "accepted" and out[agreed]["proofread_status"] == "accepted"
    assert out[disputed]["proofread_status"] == "disputed"
    assert sorted(out[disputed]["annotators"]) == [f"anna{SIM}", f"ben{SIM}"]
    assert Counter(applied.counts).most_common(1)[0] == ("accepted", 2) and applied.unknown.height == 0


def test_an_answer_key_the_recipe_refuses_is_caught_before_anything_is_submitted(label_studio, tmp_path, monkeypatch):
    settings = round_settings(label_studio, tmp_path, monkeypatch)
    cands = candidate_frame()
    with pytest.raises(ops.AnnotationError, match="not candidates, e.g. nope"):
        ops.simulate(settings, {"nope": {"verdict": "confirm"}}, cands)
    with pytest.raises(ops.AnnotationError, match="unknown label 'maybe'"):
        ops.simulate(settings, {"100001": {"verdict": "maybe"}}, cands)


def test_an_image_outside_the_document_root_is_a_clear_error(label_studio, tmp_path):
    rows = candidate_frame().head(1)
    outside = tmp_path / "elsewhere" / "100001.png"
    spec = proofreading_recipe(rows, {"100001": str(outside)}, glosses(), double_fraction=0.0)
    plan = route_double(spec, ["anna"])
    backend = LabelStudioBackend(label_studio.url, label_studio.token, document_root=label_studio.document_root)
    with pytest.raises(BackendError, match="outside Label Studio's local-files document root.*annotation.relaionet.document_root"):
        backend.push(spec, plan, ProjectState(tmp_path / "state"))
    no_root = LabelStudioBackend(label_studio.url, label_studio.token)
    with pytest.raises(BackendError, match="is a local file.*document_root"):
        no_root.push(spec, plan, ProjectState(tmp_path / "state2"))
