"""Fact verification: the recipe picks the doubtful facts, judgments become corrections, the
corrections make the next facts table, and one round trip through the real Label Studio and the
command line changes the next count.

The counts frames are KLAR's facts with counts set by hand (``doctored_counts``); the round trip
builds on KLAR and a corpus of three documents written here.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import lru_cache

import polars as pl
import pytest

from annotation.backends.labelstudio.config import label_config
from annotation.recipes.facts import (
    CORRECTION_SCHEMA,
    NO_ENGLISH,
    corrections_from_judgments,
    route_by_language,
    verification_recipe,
)
from pipelines.facts.corrections import FACT_COLUMNS, apply_fact_corrections
from schemas.facts import LANGUAGES
from tests.corpusforge.test_cli_sad import cf
from tests.pipelines.facts.test_pipeline import KLAR

pytestmark = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")

# Donatello (46), Abdul Hamid I (72), Algiers (3761), Kuwait City (3898), Emmanuelle Seigner (4090), Toyota (6135)
INDICES = (46, 72, 3761, 3898, 4090, 6135)
NATURAL_SAME_FORMS = {  # KLAR itself gives these subject == object
    "ar:3761", "ru:3761", "tr:3761", "uk:3761", "el:3898", "fr:3898", "tr:3898", "en:6135", "es:6135", "fr:6135", "tr:6135",
}


@lru_cache(maxsize=1)
def klar_facts() -> pl.DataFrame:
    from pipelines.facts.facts import read_facts

    return read_facts(KLAR).facts


def doctored_counts() -> pl.DataFrame:
    """Six KLAR indices in every language, with counts and forms set so that each reason fires."""
    facts = klar_facts().filter(pl.col("index").is_in(INDICES))
    cooccurrence = {("en", 46): 3, ("fr", 46): 1, ("en", 4090): 2}  # fr agrees with English: not doubtful
    key = pl.struct("lang", "index")
    return facts.with_columns(
        subject=pl.when(key == {"lang": "tr", "index": 4090}).then(pl.lit(" fransızca "))  # same as the object, once folded
        .when(key == {"lang": "ko", "index": 72}).then(pl.lit("\u200b "))  # a zero-width space: blank
        .otherwise(pl.col("subject")),
        subject_docs=pl.lit(5, pl.Int64),
        object_docs=pl.lit(4, pl.Int64),
        cooccurrence_docs=pl.struct("lang", "index").map_elements(
            lambda r: cooccurrence.get((r["lang"], r["index"]), 0), return_dtype=pl.Int64
        ),
    )


def expected_reasons(english_zero_rule: bool = True) -> dict[str, list[str]]:
    want: dict[str, list[str]] = {i: ["same_forms"] for i in NATURAL_SAME_FORMS}
    want["tr:4090"] = ["same_forms"]
    want["ko:72"] = ["empty_form"]
    if english_zero_rule:
        for lang in LANGUAGES:
            if lang != "en":
                want.setdefault(f"{lang}:4090", []).append("zero_but_english")
                if lang != "fr":
                    want.setdefault(f"{lang}:46", []).append("zero_but_english")
    return want


# --------------------------------------------------------------------------- the recipe


def test_recipe_picks_exactly_the_doubtful_facts_with_their_reasons():
    spec = verification_recipe(doctored_counts())
    got = {i.id: list(i.payload["reason_codes"]) for i in spec.items}
    assert got == expected_reasons()
    assert [i.id for i in spec.items] == sorted(got, key=lambda i: (i.split(":")[0], int(i.split(":")[1])))
    assert {i.id: i.strata for i in spec.items}["tr:4090"] == {"lang": "tr", "reason": "same_forms+zero_but_english"}

    without = verification_recipe(doctored_counts(), english_zero_rule=False)
    assert {i.id: list(i.payload["reason_codes"]) for i in without.items} == expected_reasons(english_zero_rule=False)


def test_items_show_the_fact_its_counts_english_and_reasons_and_prefill_the_boxes():
    spec = verification_recipe(doctored_counts())
    ja = {i.id: i for i in spec.items}["ja:46"].payload
    assert (ja["subject"], ja["object"], ja["subject_aliases"], ja["object_aliases"]) == ("ドナテッロ", "フィレンツェ", "", "")
    assert ja["language"] == "Japanese (ja)" and ja["relation"] == "place_of_death"
    assert ja["counts"] == "subject in 5, object in 4, both in 0"
    assert ja["english"] == "Donatello -> Florence (both in 3 documents)"
    assert "zero_but_english" in ja["reasons"] and "3 do in English" in ja["reasons"]
    ko = {i.id: i for i in spec.items}["ko:72"].payload
    assert "the subject is blank" in ko["reasons"]

    xml = ET.fromstring(label_config(spec))
    boxes = {t.get("name"): t.get("value") for t in xml.iter("TextArea")}
    assert boxes == {"subject": "$subject", "object": "$object", "subject_aliases": "$subject_aliases",
                     "object_aliases": "$object_aliases", "note": None}
    assert [c.get("value") for c in xml.iter("Choice")] == ["confirm", "fix"]
    for reason in ("same_forms", "empty_form", "zero_but_english"):
        assert reason in spec.guideline

    no_english = verification_recipe(doctored_counts().filter(pl.col("lang") != "en"))
    assert all(i.payload["english"] == NO_ENGLISH and "zero_but_english" not in i.payload["reason_codes"] for i in no_english.items)
    with pytest.raises(ValueError, match="lack column"):
        verification_recipe(doctored_counts().drop("cooccurrence_docs"))
    twice = pl.concat([doctored_counts(), doctored_counts().head(1)])
    with pytest.raises(ValueError, match="more than once"):
        verification_recipe(twice)


def test_routing_sends_a_language_to_its_verifiers_and_leaves_the_rest_open():
    spec = verification_recipe(doctored_counts())
    plan = route_by_language(spec, {"tr": ["ayse", "emre"], "ja": ["kenji"]})
    assert sorted(plan.item_ids) == sorted(i.id for i in spec.items)
    who = {a.item.id: a.annotators for a in plan.assignments}
    assert {who[i] for i in who if i.startswith("tr:")} == {("ayse",), ("emre",)}
    assert who["ja:46"] == ("kenji",) and who["ru:3761"] == ()
    assert set(plan.options.annotators) == {"ayse", "emre", "kenji"}
    assert plan.strata[("tr", "same_forms+zero_but_english")] == 1


# --------------------------------------------------------------------------- corrections


def judgment(item: str, answers: dict, at: str, annotator: str = "a@x", annotation_id: int = 1) -> dict:
    return {"item_id": item, "annotation_id": annotation_id, "annotator": annotator, "created_at": at, "updated_at": at,
            "answers": json.dumps(answers, ensure_ascii=False)}


def sample_judgments() -> pl.DataFrame:
    return pl.DataFrame([
        # the latest judgment wins, whoever made it
        judgment("ru:3761", {"verdict": "fix", "object": "Algeria"}, "2025-03-01T09:00:00Z", "a@x", 1),
        judgment("ru:3761", {"verdict": "confirm", "object": "ignored"}, "2025-03-01T10:00:00Z", "b@x", 2),
        # a fix that changes nothing is a confirmation
        judgment("tr:3761", {"verdict": "fix", "subject": "Cezayir ", "object": "Cezayir", "subject_aliases": ""}, "2025-03-01T10:00:00Z"),
        # aliases: one per line, blank lines and repeats dropped
        judgment("uk:3761", {"verdict": "fix", "subject_aliases": "Алжир-місто\n\n Алжир-місто \r\nАлжир"}, "2025-03-01T10:00:00Z"),
        # same time: the later annotation wins; the time is read in UTC
        judgment("ja:46", {"verdict": "confirm"}, "2025-03-01T12:00:00+02:00", "a@x", 7),
        judgment("ja:46", {"verdict": "fix", "subject_aliases": "Donatello", "note": " seen in Japanese text "}, "2025-03-01T12:00:00+02:00", "kenji@x", 8),
        # a fixed form: the old one goes
        judgment("es:6135", {"verdict": "fix", "subject": "Toyota", "object": "Toyota (Aichi)", "subject_aliases": "Toyota Motor Corporation"}, "2025-03-01T10:00:00Z"),
        # unusable: not applied, and no earlier judgment stands in
        judgment("ar:3761", {"verdict": "fix", "object": "  "}, "2025-03-01T10:00:00Z"),
        judgment("el:3898", {"verdict": "fix", "object": "Πόλη του Κουβέιτ"}, "2025-03-01T09:00:00Z", annotation_id=3),
        judgment("el:3898", {"note": "not sure"}, "2025-03-01T10:00:00Z", annotation_id=4),
        judgment("fr:3898", {"verdict": "maybe"}, "2025-03-01T10:00:00Z"),
        judgment("somewhere", {"verdict": "confirm"}, "2025-03-01T10:00:00Z"),
        judgment("elsewhere", {"verdict": "confirm"}, "2025-03-01T10:00:00Z"),
        # a fact that is not an item (any more): still decided, from the boxes it holds
        judgment("de:5", {"verdict": "fix", "object": "Berlin"}, "2025-03-01T10:00:00Z"),
    ])


def test_corrections_follow_the_latest_judgment_of_each_item():
    spec = verification_recipe(doctored_counts())
    c = corrections_from_judgments(spec, sample_judgments())
    assert c.schema == pl.Schema(CORRECTION_SCHEMA)
    rows = {r["item_id"]: r for r in c.iter_rows(named=True)}
    assert list(rows) == sorted(rows)
    assert rows["ru:3761"]["status"] == "confirmed" and rows["ru:3761"]["object"] is None and rows["ru:3761"]["annotator"] == "b@x"
    assert rows["tr:3761"]["status"] == "confirmed"
    assert rows["uk:3761"]["status"] == "fixed" and rows["uk:3761"]["subject_aliases"] == ["Алжир-місто", "Алжир"]
    assert rows["uk:3761"]["subject"] is None and rows["uk:3761"]["object_aliases"] is None  # not in the answers: kept
    ja = rows["ja:46"]
    assert (ja["status"], ja["subject_aliases"], ja["annotator"], ja["note"]) == ("fixed", ["Donatello"], "kenji@x", "seen in Japanese text")
    assert ja["annotated_at"].isoformat() == "2025-03-01T10:00:00+00:00"
    assert (ja["subject_before"], ja["reasons"], ja["lang"], ja["index"]) == ("ドナテッロ", ["zero_but_english"], "ja", 46)
    es = rows["es:6135"]
    assert (es["status"], es["subject"], es["object"], es["subject_aliases"]) == ("fixed", None, "Toyota (Aichi)", ["Toyota Motor Corporation"])
    assert es["object_before"] == "Toyota"
    assert rows["ar:3761"]["status"] is None and "blank object" in rows["ar:3761"]["problem"]
    assert rows["el:3898"]["status"] is None and rows["el:3898"]["problem"] == "no verdict"
    assert "unknown label 'maybe'" in rows["fr:3898"]["problem"]
    assert "not <lang>:<index>" in rows["somewhere"]["problem"] and rows["somewhere"]["lang"] is None
    de = rows["de:5"]
    assert (de["status"], de["object"], de["object_before"], de["reasons"]) == ("fixed", "Berlin", None, None)


def test_applied_corrections_fix_forms_set_aliases_and_report_unknown_facts():
    counts = doctored_counts()
    spec = verification_recipe(counts)
    corrections = corrections_from_judgments(spec, sample_judgments())
    facts, report = apply_fact_corrections(counts, corrections)
    assert facts.columns == list(FACT_COLUMNS) and facts.height == counts.height
    assert facts.select("lang", "index").equals(counts.select("lang", "index"))
    by = {(r["lang"], r["index"]): r for r in facts.iter_rows(named=True)}
    # a fixed form replaces the old one, which is not kept as an alias
    assert (by["es", 6135]["object"], by["es", 6135]["object_aliases"]) == ("Toyota (Aichi)", [])
    assert by["es", 6135]["subject_aliases"] == ["Toyota Motor Corporation"]
    # an alias equal to the main form is dropped
    assert by["uk", 3761]["subject_aliases"] == ["Алжир-місто"]
    assert by["ja", 46]["subject_aliases"] == ["Donatello"]
    # confirmed and unusable corrections change nothing
    before = {(r["lang"], r["index"]): r for r in counts.select(FACT_COLUMNS).iter_rows(named=True)}
    for key in (("ru", 3761), ("tr", 3761), ("ar", 3761), ("el", 3898)):
        assert by[key] == before[key]
    assert report.unknown == ("de:5",)
    assert (report.confirmed, report.unsettled) == (2, 5)
    assert set(report.facts_changed) == {"es:6135", "uk:3761", "ja:46"}
    assert {c.describe() for c in report.changes} >= {"es:6135 object: 'Toyota' -> 'Toyota (Aichi)'", "ja:46 subject_aliases: +'Donatello'"}
    assert json.loads(json.dumps(report.to_json()))["facts_changed"] == 3

    again, second = apply_fact_corrections(facts, corrections)
    assert again.equals(facts) and second.changes == () and set(second.unchanged) == {"es:6135", "uk:3761", "ja:46"}


def test_apply_rules_on_a_handmade_table():
    facts = pl.DataFrame({
        "lang": ["ko", "ko"], "relation": ["capital_of", "capital_of"], "index": [1, 2],
        "subject": ["베이징시", "서울"], "object": ["중국", "대한민국"],
        "subject_aliases": [["베이징", "北京"], []], "object_aliases": [[], []],
    })
    corrections = pl.DataFrame(
        {"lang": ["ko"], "index": [1], "status": ["fixed"], "subject": ["베이징"], "object": [None],
         "subject_aliases": [None], "object_aliases": [None]},
        schema_overrides={"object": pl.String, "subject_aliases": pl.List(pl.String), "object_aliases": pl.List(pl.String)},
    )
    fixed, report = apply_fact_corrections(facts, corrections)
    # the stem becomes the form: it was an alias, so it leaves the alias list; the old form is not kept
    assert fixed.row(0, named=True)["subject"] == "베이징" and fixed.row(0, named=True)["subject_aliases"] == ["北京"]
    assert fixed.row(1, named=True) == facts.row(1, named=True)
    assert [c.describe() for c in report.changes] == ["ko:1 subject: '베이징시' -> '베이징'", "ko:1 subject_aliases: -'베이징'"]
    with pytest.raises(ValueError, match="2 corrections for ko:1"):
        apply_fact_corrections(facts, pl.concat([corrections, corrections]))
    with pytest.raises(ValueError, match="lacks column"):
        apply_fact_corrections(facts.drop("relation"), corrections)


# --------------------------------------------------------------------------- one round through the server and the CLI


@pytest.mark.slow
def test_verification_round_trip_changes_the_next_count(label_studio, tmp_path, monkeypatch):
    monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", label_studio.token)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = [
        {"id": "d1", "text": "Donatello died in Florence in 1466."},
        {"id": "d2", "text": "Donatelloはフィレンツェで亡くなった。"},  # the Latin name in Japanese text
        {"id": "d3", "text": "Алжир — крупнейший город страны."},
    ]
    (corpus / "docs.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    ws = tmp_path / "ws"
    s = ["-w", str(ws), "--set", f"annotation.label_studio.url={label_studio.url}", "--set", "annotation.facts.annotators={ja = ['kenji']}"]

    def run(*args):
        return cf(*args, *s, cwd=tmp_path).stdout

    build = ("build", "facts", "--corpus", str(corpus))
    refused = cf(*build, "--facts", "latest", *s, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "annotate pull facts" in " ".join((refused.stdout + refused.stderr).split())
    run(*build, "--facts", str(KLAR))
    from pipelines.facts.pipeline import read_candidate

    def fact(lang: str, index: int) -> dict:
        counts = read_candidate(ws / "facts" / "stages")["counts"]
        return counts.filter((pl.col("lang") == lang) & (pl.col("index") == index)).row(0, named=True)

    assert fact("ja", 46)["cooccurrence_docs"] == 0 and fact("ru", 3761)["cooccurrence_docs"] == 1  # Алжир is both
    spec = verification_recipe(read_candidate(ws / "facts" / "stages")["counts"])
    n = len(spec.items)
    assert 20 < n < 100 and {"ja:46", "ru:3761"} <= {i.id for i in spec.items}

    pushed = run("annotate", "push", "facts")
    assert f"{n} tasks created, 0 already there" in pushed and "ja/zero_but_english 1" in pushed
    refused = cf("annotate", "merge", "facts", *s, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "--facts latest" in refused.stdout + refused.stderr
    assert f"{n} simulated verdicts submitted" in run("annotate", "simulate", "facts", "--simulated")
    pulled = run("annotate", "pull", "facts")
    assert f"{n} verdicts" in pulled and "Corrections: confirmed" in pulled and "fixed" in pulled

    corrections = pl.read_parquet(next((ws / "annotation" / "facts" / "corrections").glob("*/corrections.parquet")))
    ja = corrections.filter(pl.col("item_id") == "ja:46").row(0, named=True)
    assert (ja["status"], ja["subject_aliases"], ja["annotator"]) == ("fixed", ["Donatello"], "kenji@simulated.corpusforge.invalid")

    rebuilt = run(*build, "--facts", "latest")
    assert "facts.jsonl" in rebuilt
    ru, ja = fact("ru", 3761), fact("ja", 46)
    assert (ru["subject"], ru["object"], ru["object_aliases"]) == ("Алжир", "Algeria", [])  # the fixed form, the old one gone
    assert ru["cooccurrence_docs"] == 0
    assert ja["subject_aliases"] == ["Donatello"]  # the added alias counts: d1 and d2 mention it, d2 with the object
    assert (ja["subject_docs"], ja["cooccurrence_docs"]) == (2, 1)
    # the corrected facts hold no new doubt: pushing again creates nothing
    assert "0 tasks created" in run("annotate", "push", "facts")
