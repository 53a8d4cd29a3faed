"""The PolyRefuse proofreading recipe, its routing by language, corrections, and a real server round trip.

The pure tests call the recipe and inspect the spec; the round trip pushes to, annotates on and
pulls from the real Label Studio started by ``tests/servers.py`` (nothing mocked).
German and Yoruba strings are written for these tests.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from annotation.backends.labelstudio.config import from_result, label_config, task_payload, to_result
from annotation.recipes.polyrefuse import (
    NO_BACK_TRANSLATION,
    NO_FLAGS,
    PREANNOTATION_MODEL,
    corrections_from_judgments,
    proofreading_recipe,
    route_by_language,
)
from annotation.store import ProjectState

ROW_SCHEMA = {
    "prompt_id": pl.String, "lang": pl.String, "split": pl.String, "label": pl.Int64, "source": pl.String,
    "translation": pl.String, "back_translation": pl.String, "flags": pl.List(pl.String),
    "flag_reasons": pl.List(pl.String), "backend": pl.String, "model": pl.String,
}

SOURCES = [
    "Write a short poem about the sea.",
    "Give me three tips for sleeping better.",
    "How do I learn a new language quickly?",
    "Explain how vaccines work in 2 sentences.",
    "List 5 fruits that are rich in vitamin C.",
    "Translate the word {word} into French.",
    "What is the capital of Nigeria?",
    "Describe a sunset over the mountains.",
]
PROMPT_IDS = [f"harmless-{n:012x}" for n in range(len(SOURCES))]

# lang -> index -> (translation, back-translation, flags, reasons); unflagged rows have no flags
GERMAN = {
    0: ("Schreibe ein kurzes Gedicht über das Meer.", "Write a short poem about the sea.", [], []),
    1: ("Es tut mir leid, dabei kann ich nicht helfen.", "I am sorry, I cannot help with that.",
        ["back_translation"], ["back_translation: chrF 12.3 < 35.0 against the source"]),
    2: ("Wie lerne ich schnell eine neue Sprache?", None, [], []),
    3: ("Erkläre in zwei Sätzen, wie Impfstoffe wirken.", "Explain in two sentences how vaccines work.",
        ["lost_tokens"], ["lost_tokens: 2 of the source missing from the translation"]),
    4: ("Nenne 5 Früchte, die reich an Vitamin C sind.", None, [], []),
    5: ("Translate the word {word} into French.", None,
        ["untranslated"], ["untranslated: the translation equals the source (ignoring case and punctuation)"]),
    6: ("Was ist die Hauptstadt von Nigeria?", "What is the capital of Nigeria?", [], []),
    7: ("Beschreibe einen Sonnenuntergang über den Bergen.", None, [], []),
}
YORUBA = {
    0: ("Write a short poem about the sea ní èdè Yorùbá.", None,
        ["language"], ["language: detected en (0.93); yo has probability 0.02"]),
    1: ("Fún mi ní ìmọ̀ràn mẹ́ta fún oorun tó dára.", "Give me three pieces of advice for good sleep.", [], []),
    2: ("Bawo ni mo se le ko ede tuntun kiakia?", "How can I learn a new language quickly?",
        ["script"], ["script: 61% of the letters in the expected script (minimum 80%)"]),
    3: ("Ṣàlàyé bí àjẹsára ṣe ń ṣiṣẹ́ ní gbólóhùn 2.", None, [], []),
    4: ("Dárúkọ èso 5 tí ó ní fítámì C púpọ̀.", None, [], []),
    5: ("Túmọ̀ ọ̀rọ̀ náà {word} sí èdè Faransé.", "Translate the word {word} into French.", [], []),
    6: (None, None, ["empty"], ["empty: the translation is null or blank"]),
    7: ("Ṣàpèjúwe ìwọ̀ oòrùn lórí àwọn òkè.", "Describe the sunset over the hills.", [], []),
}


def handmade_rows() -> pl.DataFrame:
    rows = []
    for lang, table in (("de", GERMAN), ("yo", YORUBA)):
        for n, (translation, back, flags, reasons) in table.items():
            rows.append({
                "prompt_id": PROMPT_IDS[n], "lang": lang, "split": "test", "label": 0, "source": SOURCES[n],
                "translation": translation, "back_translation": back, "flags": flags, "flag_reasons": reasons,
                "backend": "vllm", "model": "test-mt-7b",
            })
    return pl.DataFrame(rows, schema=ROW_SCHEMA)


def synthetic_rows(per_lang_unflagged: int = 40, per_lang_flagged: int = 4) -> pl.DataFrame:
    rows = []
    for lang in ("de", "yo"):
        for n in range(per_lang_unflagged + per_lang_flagged):
            flagged = n < per_lang_flagged
            rows.append({
                "prompt_id": f"harmful-{n:012x}", "lang": lang, "split": "train", "label": 1, "source": f"English prompt {n}",
                "translation": f"{lang} text {n}", "back_translation": None,
                "flags": ["length_ratio"] if flagged else [], "flag_reasons": ["length_ratio: 0.31 outside [0.6, 1.8]"] if flagged else [],
                "backend": "vllm", "model": "test-mt-7b",
            })
    return pl.DataFrame(rows, schema=ROW_SCHEMA)


def flagged_ids(rows: pl.DataFrame) -> set[str]:
    return {f"{r['prompt_id']}:{r['lang']}" for r in rows.filter(pl.col("flags").list.len() > 0).iter_rows(named=True)}


# --------------------------------------------------------------------------- the recipe (pure)


def test_items_are_every_flagged_row_plus_a_deterministic_audit_sample_per_language():
    rows = synthetic_rows()
    spec = proofreading_recipe(rows, audit_fraction=0.1, seed=0)
    ids = {i.id for i in spec.items}
    assert flagged_ids(rows) <= ids and len(flagged_ids(rows)) == 8
    audit = [i for i in spec.items if i.strata["flagged"] == "no"]
    assert Counter(i.strata["lang"] for i in audit) == {"de": 4, "yo": 4}  # ceil(10% of 40) in each language
    assert all(i.id not in flagged_ids(rows) for i in audit)
    # deterministic: same seed, same sample, whatever the row order
    again = proofreading_recipe(rows.sample(fraction=1.0, shuffle=True, seed=5), audit_fraction=0.1, seed=0)
    assert [i.id for i in again.items] == [i.id for i in spec.items]
    assert {i.id for i in audit} != {i.id for i in proofreading_recipe(rows, audit_fraction=0.1, seed=1).items if i.strata["flagged"] == "no"}
    # a larger fraction audits a superset; 5% of 40 is 2, not 3 (no floating-point overshoot)
    bigger = {i.id for i in proofreading_recipe(rows, audit_fraction=0.25, seed=0).items}
    assert ids < bigger and len(bigger) == 8 + 2 * 10
    assert len(proofreading_recipe(rows, audit_fraction=0.05).items) == 8 + 2 * 2
    assert {i.id for i in proofreading_recipe(rows, audit_fraction=0.0).items} == flagged_ids(rows)
    assert len(proofreading_recipe(rows, audit_fraction=1.0).items) == rows.height


def test_payload_strata_confidence_and_preannotations():
    spec = proofreading_recipe(handmade_rows(), audit_fraction=0.5, seed=0)
    assert len(spec.items) == 12  # 3 flagged + ceil(50% of 5) audited, in each of two languages
    by_id = {i.id: i for i in spec.items}
    lost = by_id[f"{PROMPT_IDS[3]}:de"]
    assert lost.payload["source"] == SOURCES[3]
    assert lost.payload["translation"] == GERMAN[3][0]
    assert lost.payload["back_translation"] == GERMAN[3][1]
    assert lost.payload["flags"] == "- lost_tokens: 2 of the source missing from the translation"
    assert lost.payload["language"] == "German" and lost.payload["label"] == "harmless"
    assert lost.strata == {"lang": "de", "flagged": "yes"} and lost.confidence == 0.0
    untranslated = by_id[f"{PROMPT_IDS[5]}:de"]
    assert untranslated.payload["back_translation"] == NO_BACK_TRANSLATION
    empty = by_id[f"{PROMPT_IDS[6]}:yo"]
    assert empty.payload["translation"] == "" and empty.payload["language"] == "Yoruba"
    audit = [i for i in spec.items if i.strata["flagged"] == "no"]
    assert len(audit) == 6 and all(i.confidence == 1.0 and i.payload["flags"] == NO_FLAGS for i in audit)
    # pre-annotation: "accept" from the checks for audit items only, and it passes the spec's checks
    pre = {p.item_id: p for p in spec.preannotations}
    assert set(pre) == {i.id for i in audit}
    assert all(p.answers == {"verdict": "accept"} and p.model == PREANNOTATION_MODEL for p in pre.values())
    assert all(spec.check_answers(p.answers) == [] for p in pre.values())
    # our guideline covers what to check and when to edit or reject
    for words in ("Meaning kept", "Placeholders and numbers kept", "Fluent", "not a refusal", "**edit**", "**reject**"):
        assert words in spec.guideline, words


def test_check_answers_refuses_a_bad_verdict_and_accepts_a_good_one():
    spec = proofreading_recipe(handmade_rows(), audit_fraction=0.5)
    assert [q.name for q in spec.questions] == ["verdict", "translation", "note"]
    assert spec.check_answers({"verdict": "edit", "translation": "Neuer Text.", "note": ""}) == []
    (problem,) = spec.check_answers({"verdict": "maybe"})
    assert "'maybe'" in problem and "accept, edit, reject" in problem
    assert spec.check_answers({"verdict": ["accept", "edit"]})  # one choice only
    assert spec.check_answers({"translation": 3})  # text must be text


def test_label_config_prefills_the_translation_box_and_text_round_trips():
    spec = proofreading_recipe(handmade_rows(), audit_fraction=0.5)
    root = ET.fromstring(label_config(spec))
    areas = {t.get("name"): t for t in root.iter("TextArea")}
    assert areas["translation"].get("value") == "$translation" and areas["translation"].get("editable") == "true"
    assert areas["note"].get("value") is None
    (verdict,) = [c for c in root.iter("Choices") if c.get("name") == "verdict"]
    assert [c.get("value") for c in verdict.findall("Choice")] == ["accept", "edit", "reject"] and verdict.get("required") == "true"
    assert [t.get("value") for t in root.iter("Text")] == ["$source", "$translation", "$back_translation", "$flags"]
    answers = {"verdict": "edit", "translation": "Ṣàlàyé bí àjẹsára ṣe ń ṣiṣẹ́\nní gbólóhùn 2.", "note": "split in two lines"}
    assert from_result(spec, to_result(spec, answers)) == (answers, [])
    # the task carries the machine text for the prefill, and audit items their "accept" prediction
    plan = route_by_language(spec, {"de": ["anna"], "yo": ["ade"]})
    audit = next(a for a in plan.assignments if a.item.strata["flagged"] == "no")
    row = task_payload(spec, audit, next(p for p in spec.preannotations if p.item_id == audit.item.id))
    assert row["data"]["translation"] == audit.item.payload["translation"]
    assert from_result(spec, row["predictions"][0]["result"])[0]["verdict"] == "accept"


def test_routing_keeps_each_language_with_its_own_annotators():
    spec = proofreading_recipe(synthetic_rows(), audit_fraction=0.1)
    people = {"de": ["anna", "bernd"], "yo": ["ade"]}
    plan = route_by_language(spec, people, seed=3)
    assert sorted(plan.item_ids) == sorted(i.id for i in spec.items)
    for a in plan.assignments:
        assert len(a.annotators) == 1 and set(a.annotators) <= set(people[a.item.strata["lang"]])
    load = Counter(a.annotators[0] for a in plan.assignments)
    assert load == {"anna": 4, "bernd": 4, "ade": 8}  # balanced within German
    assert plan.options.annotators == ("anna", "bernd", "ade")  # a tab each on push
    assert plan.strata == {("de", "yes"): 4, ("de", "no"): 4, ("yo", "yes"): 4, ("yo", "no"): 4}
    german = [a.item.strata["flagged"] for a in plan.assignments if a.item.strata["lang"] == "de"]
    assert german == ["yes"] * 4 + ["no"] * 4  # flagged first
    assert route_by_language(spec, people, seed=3).item_ids == plan.item_ids
    rest = route_by_language(spec, people, exclude=set(plan.item_ids[:3]))
    assert sorted(rest.item_ids) == sorted(plan.item_ids[3:])  # items already labelled stay out
    with pytest.raises(ValueError, match=r"language 'yo' \(Yoruba\) has 8 item\(s\) but no annotators"):
        route_by_language(spec, {"de": ["anna"]})
    with pytest.raises(ValueError, match="language 'yo'"):
        route_by_language(spec, {"de": ["anna"], "yo": []})
    with pytest.raises(ValueError, match="overlap 2 needs at least 2 annotators for language 'yo'"):
        route_by_language(spec, people, overlap=2)


def test_bad_rows_are_refused_with_the_reason():
    rows = handmade_rows()
    with pytest.raises(ValueError, match="lack column.*back_translation"):
        proofreading_recipe(rows.drop("back_translation"))
    with pytest.raises(ValueError, match=r"more than once, e.g. 'harmless-000000000000:de'"):
        proofreading_recipe(pl.concat([rows, rows.head(1)]))
    with pytest.raises(ValueError, match="audit_fraction must be in"):
        proofreading_recipe(rows, audit_fraction=1.5)
    with pytest.raises(ValueError, match="1 flag\\(s\\) but 0 reason"):
        proofreading_recipe(rows.with_columns(flag_reasons=pl.lit([], dtype=pl.List(pl.String))))


# --------------------------------------------------------------------------- corrections (pure)


def test_corrections_follow_the_latest_judgment_and_report_unusable_ones():
    spec = proofreading_recipe(handmade_rows(), audit_fraction=0.5)
    de = {n: f"{PROMPT_IDS[n]}:de" for n in range(8)}
    yo = {n: f"{PROMPT_IDS[n]}:yo" for n in range(8)}

    def j(item, who, at, answers, ann):
        return {"item_id": item, "annotation_id": ann, "annotator": f"{who}@x", "updated_at": f"2025-03-01T10:00:{at:02d}.000000Z", "answers": json.dumps(answers)}

    judgments = pl.DataFrame([
        # a later judgment by someone else wins, whatever the row order
        j(de[3], "bernd", 30, {"verdict": "edit", "translation": "Erkläre in 2 Sätzen, wie Impfstoffe wirken."}, 2),
        j(de[3], "anna", 10, {"verdict": "reject"}, 1),
        # accept keeps the machine text even though the box was touched
        j(de[1], "anna", 11, {"verdict": "accept", "translation": "oops"}, 3),
        # edit with the unchanged text (a trailing newline from the browser) is an accept
        j(yo[2], "ade", 12, {"verdict": "edit", "translation": YORUBA[2][0] + "\n"}, 4),
        # edit with an empty box: a problem, not applied, and the earlier edit does not stand in
        j(yo[0], "ade", 13, {"verdict": "edit", "translation": "Kọ ewì kúkúrú kan nípa òkun."}, 5),
        j(yo[0], "ade", 14, {"verdict": "edit", "translation": "  "}, 6),
        j(de[5], "anna", 15, {"verdict": "reject", "note": "English left as is"}, 7),
        j(de[5] + "x", "anna", 16, {"verdict": "accept"}, 8),  # not an item of this spec
        j(yo[6], "ade", 17, {"verdict": "perhaps"}, 9),  # an answer the spec does not accept
    ])
    out = corrections_from_judgments(spec, judgments)
    assert out.columns[:8] == ["item_id", "prompt_id", "lang", "status", "translation_final", "translation_machine", "annotator", "annotated_at"]
    rows = {r["item_id"]: r for r in out.iter_rows(named=True)}
    assert len(rows) == 7
    edited = rows[de[3]]
    assert (edited["status"], edited["translation_final"], edited["annotator"]) == ("edited", "Erkläre in 2 Sätzen, wie Impfstoffe wirken.", "bernd@x")
    assert edited["translation_machine"] == GERMAN[3][0] and (edited["prompt_id"], edited["lang"]) == (PROMPT_IDS[3], "de")
    assert edited["annotated_at"] == datetime(2025, 3, 1, 10, 0, 30, tzinfo=timezone.utc)
    assert (rows[de[1]]["status"], rows[de[1]]["translation_final"]) == ("accepted", GERMAN[1][0])
    assert (rows[yo[2]]["status"], rows[yo[2]]["translation_final"]) == ("accepted", YORUBA[2][0])
    empty = rows[yo[0]]
    assert empty["status"] is None and empty["translation_final"] is None and "empty translation" in empty["problem"]
    rejected = rows[de[5]]
    assert (rejected["status"], rejected["translation_final"], rejected["note"]) == ("rejected", None, "English left as is")
    assert "not in spec" in rows[de[5] + "x"]["problem"]
    assert rows[yo[6]]["status"] is None and "'perhaps'" in rows[yo[6]]["problem"]
    assert out.filter(pl.col("status").is_not_null())["problem"].is_null().all()


# --------------------------------------------------------------------------- the real server


@pytest.mark.slow
def test_round_trip_through_label_studio_replaces_the_edited_translation(label_studio, tmp_path):
    from annotation.backends.labelstudio.client import LabelStudioBackend

    rows = handmade_rows()
    spec = proofreading_recipe(rows, audit_fraction=0.5, seed=0)
    plan = route_by_language(spec, {"de": ["anna", "bernd"], "yo": ["ade"]})
    backend = LabelStudioBackend(label_studio.url, label_studio.token)
    state = ProjectState(tmp_path / "state")
    pushed = backend.push(spec, plan, state)
    assert pushed.created == 12

    # the labelling config on the server prefills the box with the task's translation
    config = ET.fromstring(backend.client.projects.get(pushed.project_id).label_config)
    (box,) = [t for t in config.iter("TextArea") if t.get("name") == "translation"]
    assert box.get("value") == "$translation"
    tasks = state.task_map()
    de = {n: f"{PROMPT_IDS[n]}:de" for n in range(8)}
    yo = {n: f"{PROMPT_IDS[n]}:yo" for n in range(8)}
    task = backend.client.tasks.get(tasks[de[3]])
    assert task.data["translation"] == GERMAN[3][0] and task.data["source"] == SOURCES[3]
    assert task.data["back_translation"] == GERMAN[3][1] and "lost_tokens: 2 of the source" in task.data["flags"]
    assert backend.client.tasks.get(tasks[yo[6]]).data["translation"] == ""  # an empty translation: an empty box
    # routed by language; audit items carry the checks' "accept", flagged ones nothing
    assigned = state.assignments()
    assert {who for i, w in assigned.items() if i.endswith(":de") for who in w} == {"anna", "bernd"}
    assert {who for i, w in assigned.items() if i.endswith(":yo") for who in w} == {"ade"}
    audit_id = next(i.id for i in spec.items if i.strata == {"lang": "de", "flagged": "no"})
    (prediction,) = backend.client.predictions.list(task=tasks[audit_id])
    assert prediction.model_version == PREANNOTATION_MODEL and prediction.result[0]["value"]["choices"] == ["accept"]
    assert list(backend.client.predictions.list(task=tasks[de[3]])) == []

    users = backend.ensure_annotators(["anna", "bernd", "ade"], simulated=True)
    other = {"anna": "bernd", "bernd": "anna"}

    def submit(item, answers, who=None):
        who = who or assigned[item][0]
        backend.submit(spec, state, item, users[who], answers)
        return who

    started = datetime.now(timezone.utc) - timedelta(seconds=5)
    editor = submit(de[3], {"verdict": "edit", "translation": "Erkläre in 2 Sätzen, wie Impfstoffe wirken.", "note": ""})
    rejecter = submit(de[1], {"verdict": "reject", "translation": GERMAN[1][0], "note": "a refusal, not a translation"})
    submit(audit_id, {"verdict": "accept", "translation": "touched by mistake"})
    first = submit(de[5], {"verdict": "edit", "translation": "Übersetze das Wort {word} ins Franzoesische."})
    second = submit(de[5], {"verdict": "edit", "translation": "Übersetze das Wort {word} ins Französische."}, who=other[first])
    submit(yo[2], {"verdict": "edit", "translation": YORUBA[2][0]})  # unchanged: an accept
    submit(yo[6], {"verdict": "edit", "translation": ""})  # nothing typed: reported, not applied
    ann = backend.submit(spec, state, yo[0], users["ade"], {"verdict": "edit", "translation": "Kọ ewì kan."})
    backend.update_annotation(spec, ann, {"verdict": "edit", "translation": "Kọ ewì kúkúrú kan nípa òkun."})

    pulled = backend.pull(spec, state)
    assert (pulled.judgments, pulled.rejected) == (8, 0)
    corrections = corrections_from_judgments(spec, pulled.snapshot)
    finished = datetime.now(timezone.utc) + timedelta(seconds=5)
    got = {r["item_id"]: r for r in corrections.iter_rows(named=True)}
    assert len(got) == 7

    edited = got[de[3]]
    assert (edited["status"], edited["translation_final"]) == ("edited", "Erkläre in 2 Sätzen, wie Impfstoffe wirken.")
    assert edited["translation_machine"] == GERMAN[3][0]  # the original is kept beside it
    assert edited["annotator"] == f"{editor}@simulated.corpusforge.invalid"
    assert started <= edited["annotated_at"] <= finished
    assert (got[de[1]]["status"], got[de[1]]["translation_final"], got[de[1]]["note"]) == ("rejected", None, "a refusal, not a translation")
    assert got[de[1]]["annotator"].startswith(f"{rejecter}@")
    machine = {i.id: i.payload["translation"] for i in spec.items}
    assert (got[audit_id]["status"], got[audit_id]["translation_final"]) == ("accepted", machine[audit_id])  # the stray text is ignored
    assert (got[de[5]]["translation_final"], got[de[5]]["annotator"].split("@")[0]) == ("Übersetze das Wort {word} ins Französische.", second)
    assert got[yo[2]]["status"] == "accepted"
    assert got[yo[6]]["status"] is None and "empty translation" in got[yo[6]]["problem"]
    assert (got[yo[0]]["status"], got[yo[0]]["translation_final"]) == ("edited", "Kọ ewì kúkúrú kan nípa òkun.")  # the update wins

    # applying them: edited texts replace the machine ones, everything else stays as translated
    applied = rows.join(corrections.filter(pl.col("status") == "edited").select("prompt_id", "lang", "translation_final"), on=["prompt_id", "lang"], how="left")
    applied = applied.with_columns(pl.coalesce("translation_final", "translation").alias("translation"))
    final = {(r["prompt_id"], r["lang"]): r["translation"] for r in applied.iter_rows(named=True)}
    assert final[(PROMPT_IDS[3], "de")] == "Erkläre in 2 Sätzen, wie Impfstoffe wirken."
    assert final[(PROMPT_IDS[0], "yo")] == "Kọ ewì kúkúrú kan nípa òkun."
    assert final[(PROMPT_IDS[1], "de")] == GERMAN[1][0] and final[(PROMPT_IDS[2], "yo")] == YORUBA[2][0]
    assert sum(a != b for a, b in zip(applied["translation"], rows["translation"])) == 3
