"""The matching semantics, against an independent simple implementation written here.

The corpus is made of sentences that contain KLAR subjects and objects of all 12 languages
(../shared/data/klar), glued to neighbours in the ways the rules care about: spaces,
punctuation, other scripts, letters that must block a match, suffixes.
"""

from __future__ import annotations

import json
import os
import random
import unicodedata
from pathlib import Path

import polars as pl
import pytest

from pipelines.facts.count import buckets_of, compile_phrases, count_matches, merge_partials
from pipelines.core.phrases import MatchSettings, PhraseSet

REPO = Path(__file__).resolve().parents[3]
KLAR = Path(os.environ.get("KLAR_DIR", REPO.parent / "shared" / "data" / "klar"))
needs_klar = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")


# --------------------------------------------------------------------------- the reference


def ref_normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def ref_no_space_script(ch: str) -> bool:
    """Han, Hiragana, Katakana or Thai, by Unicode character name (independent of the engine's ranges)."""
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH", "HIRAGANA", "KATAKANA", "THAI",
                            "HALFWIDTH KATAKANA")) or ch in "々〆〇"


def ref_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNM" and not ref_no_space_script(ch)


def ref_mentions(doc: str, phrase: str, lang: str) -> bool:
    doc, phrase = ref_normalise(doc), ref_normalise(phrase).strip()
    if ref_no_space_script(phrase[0]) and ref_no_space_script(phrase[-1]):
        return phrase in doc
    for start in range(len(doc) - len(phrase) + 1):
        if doc[start:start + len(phrase)] != phrase:
            continue
        before_ok = start == 0 or not ref_word_char(doc[start - 1])
        end = start + len(phrase)
        after_ok = lang in ("ko", "tr") or end == len(doc) or not ref_word_char(doc[end])
        if before_ok and after_ok:
            return True
    return False


# The engines: compiled (numba, the default), and the Python engine with Hyperscan or polars candidates.
ENGINES = {
    "compiled": {"engine": "compiled"},
    "hyperscan": {"engine": "python", "use_hyperscan": True},
    "polars": {"engine": "python", "use_hyperscan": False},
}


def engine(phrases, docs, name="compiled"):
    ps = PhraseSet.build(phrases, MatchSettings(**ENGINES[name]))
    assert (ps.compiled is not None) == (name == "compiled")
    got = ps.match(docs)
    return {(d, p) for d, p in got.iter_rows()}


def reference(phrases, docs):
    return {(d, p) for d, doc in enumerate(docs) for p, (text, lang) in enumerate(phrases) if ref_mentions(doc, text, lang)}


# --------------------------------------------------------------------------- rules, case by case


CASES = [
    # (phrase, lang, document, mentioned?)
    ("Turkey", "en", "Turkeys are birds.", False),
    ("Turkey", "en", "He flew to Turkey, then home.", True),
    ("Turkey", "en", "TURKEY!", True),
    ("Obama", "en", "オバマ大統領とObamaは同じ人", True),  # Latin beside Japanese: a boundary
    ("Obama", "en", "Obamacare", False),
    ("東京", "ja", "私は東京都に住んでいます", True),  # Han-edged: any substring
    ("パリ", "ja", "パリジェンヌ", True),
    ("กรุงเทพ", "th", "ไปกรุงเทพมหานคร", True),
    ("서울", "ko", "서울에서 만났다", True),  # Korean: suffix attaches
    ("서울", "ko", "대서울", False),  # but the start needs a boundary
    ("İstanbul", "tr", "İSTANBUL'da yaşıyor", True),  # casefold: İ -> i + combining dot on both sides
    ("İstanbul", "tr", "istanbul'da yaşıyor", False),  # casefold keeps the dot of İ: plain i is another letter
    ("Ankara", "tr", "Ankara'dan geldi", True),
    ("Ankara", "tr", "Ankarada", True),  # Turkish: suffix attaches without an apostrophe
    ("Paris", "fr", "Ｐａｒｉｓ est belle", True),  # NFKC: full-width Latin
    ("Straße", "en", "die STRASSE ist lang", True),  # casefold: ß -> ss
    ("Αθήνα", "el", "ΑΘΉΝΑ, η πόλη", True),
    ("Κύπρος", "el", "στην κύπρος.", True),  # final sigma casefolds to σ
    ("Москва", "ru", "Москвы", False),  # a Russian inflection is another word
    ("Москва", "ru", "(Москва)", True),
    ("القاهرة", "ar", "في القاهرة اليوم", True),
    ("C++", "en", "I write C++ daily", True),  # ends with punctuation: the next char is a space
    ("New York", "en", "new  york", False),  # two spaces: not the phrase
]


@pytest.mark.parametrize("phrase,lang,doc,expected", CASES)
def test_rules_case_by_case(phrase, lang, doc, expected):
    assert ref_mentions(doc, phrase, lang) is expected  # the reference says what the rule says
    for name in ENGINES:
        assert engine([(phrase, lang)], [doc], name) == ({(0, 0)} if expected else set()), name


@pytest.mark.parametrize("name", ENGINES)
def test_a_phrase_of_two_languages_with_two_rules_is_confirmed_per_rule(name):
    phrases = [("Ankara", "en"), ("Ankara", "tr")]
    assert engine(phrases, ["Ankaralı", "Ankara"], name) == {(0, 1), (1, 0), (1, 1)}


# --------------------------------------------------------------------------- KLAR, all 12 languages


def klar_phrases() -> list[tuple[str, str]]:
    out = []
    for lang_dir in sorted(KLAR.iterdir()):
        for f in sorted(lang_dir.glob("*.json")):
            for s in json.loads(f.read_text(encoding="utf-8"))["samples"]:
                out += [(s["subject"], lang_dir.name), (s["object"], lang_dir.name)]
    return out


GLUE = [" ", ", ", "。", " (", ") ", "「", "」", "、", "と", "x", "1", "s ", "-", "''", "ที่", "는 ", "'da "]


@needs_klar
@pytest.mark.parametrize("name", ENGINES)
def test_sentences_with_klar_phrases_in_12_languages_match_the_reference(name):
    phrases = klar_phrases()
    assert len({lang for _, lang in phrases}) == 12
    rng = random.Random(7)
    docs = []
    for _ in range(150):
        parts = []
        for _ in range(rng.randint(1, 6)):
            text = rng.choice(phrases)[0]
            if rng.random() < 0.2:
                text = text.upper()
            parts += [rng.choice(GLUE), text]
        docs.append("".join(parts) + rng.choice(GLUE))
    # the reference is quadratic: check it on a subset of phrases that includes every phrase used
    used = {p for doc in docs for p in range(len(phrases)) if ref_normalise(phrases[p][0]).strip() in ref_normalise(doc)}
    subset = sorted(used | set(rng.sample(range(len(phrases)), 300)))
    sub_phrases = [phrases[i] for i in subset]
    got, want = engine(sub_phrases, docs, name), reference(sub_phrases, docs)
    assert got == want
    assert len(want) > 300  # a real workload: hundreds of mentions, blocked ones among them
    assert {sub_phrases[p][1] for _, p in want} == {lang for _, lang in phrases}


# --------------------------------------------------------------------------- counting


def test_counts_are_documents_with_subject_object_and_both_at_checkpoints():
    facts = pl.DataFrame({
        "fact_id": [0, 1], "lang": ["en", "ja"], "subject": ["Paris", "パリ"], "object": ["France", "フランス"],
        "subject_aliases": [["City of Light"], []], "object_aliases": [[], []],
    })
    phrases, sides = compile_phrases(facts, MatchSettings())
    docs = ["Paris, France", "The City of Light is Paris", "France", "パリはフランスの首都", "nothing", "Paris and France again"]
    steps = [10, 20, 30, 40, None, 60]
    matches = phrases.match(docs)
    partial = count_matches(matches, sides, buckets_of(steps, len(docs), [25, 50]))
    totals, at = merge_partials(facts, partial, [25, 50])
    got = {r["fact_id"]: (r["subject_docs"], r["object_docs"], r["cooccurrence_docs"]) for r in totals.iter_rows(named=True)}
    assert got == {0: (3, 3, 2), 1: (1, 1, 1)}  # aliases count once per document
    cum = {(r["fact_id"], r["checkpoint"]): (r["subject_docs"], r["object_docs"], r["cooccurrence_docs"]) for r in at.iter_rows(named=True)}
    assert cum == {(0, 25): (2, 1, 1), (0, 50): (2, 2, 1), (1, 25): (0, 0, 0), (1, 50): (1, 1, 1)}


# --------------------------------------------------------------------------- phrases with their own boundaries


@pytest.mark.parametrize("name", ENGINES)
def test_phrases_built_without_boundaries_match_as_given(name):
    settings = MatchSettings(normalisation="none", casefold=False, substring_scripts=(), **ENGINES[name])
    ps = PhraseSet.build([(" ox ", "en"), (" white shark ", "en"), ("Ox", "tr")], settings, boundaries=False)
    assert ps.patterns == (" ox ", " white shark ", "Ox") and {r for rules in ps.rules for r, _ in rules} == {"substring"}
    docs = [" an ox ", " oxen ", " great white shark ", " Oxford ", " white sharks "]
    got = {(d, p) for d, p in ps.match(docs, normalised=True).iter_rows()}
    assert got == {(0, 0), (2, 1), (3, 2)}  # the spaces are the boundaries; "Ox" is any substring
    with pytest.raises(ValueError, match="phrase 0"):
        PhraseSet.build([("  ", "en")], settings, boundaries=False)
