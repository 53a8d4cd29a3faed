"""The compiled matcher (pipelines/core/automaton.py) against the Python engine and unicodedata.

The compiled engine normalises code point by code point and hands the spots where characters
compose or reorder to unicodedata; these tests feed it exactly those spots (decomposed accents,
Hangul jamo, halfwidth voiced marks, misordered combining marks, expansions that overflow the
buffer) and check every document's image, every match and every count against the Python engine.
"""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from pipelines.core.phrases import MatchSettings, PhraseSet, normalise
from pipelines.facts.count import FactCounter, buckets_of, compile_phrases, count_matches

# Characters chosen for what normalisation does to them.
TROUBLE = [
    "e\u0301", "E\u0301", "a\u0301\u0316", "a\u0316\u0301", "o\u0308\u0304",  # decomposed accents, order
    "\u1100\u1161", "\u1100\u1161\u11a8", "\uac00\u11a8", "\u3131\u314f",  # Hangul jamo L V T, compatibility jamo
    "\uff76\uff9e", "\uff8a\uff9f", "\u304b\u3099", "\u30cf\u309a",  # halfwidth / combining voiced marks
    "\ufdfa", "\u0344", "\u0f73", "\u0340", "\u0301",  # expansions and decompositions into non-starters
    "\u0627\u0654", "\u0648\u0654", "\u0915\u093c",  # Arabic hamza, Devanagari nukta
]
PLAIN = [
    "Paris", "STRASSE", "Straße", "\u1e9e", "ΣΟΦΊΑ", "σοφίας", "\u212a", "\ufb01ne", "\uff21\uff22\uff23", "\u0e01\u0e33",
    "\u13a0\uab70", "東京", "한국어", "Ankaralı", "İstanbul", "\U0001f600", "\u3000", "\xa0", "ﾃｽﾄ", "①", "x²", "½",
]
WORDS = [p for p in PLAIN if p.strip()]
GLUE = [" ", "", ", ", "。", "-", "1", "a", "\u0301", "\u11a8", "\n"]

SETTINGS = [
    MatchSettings(),
    MatchSettings(normalisation="NFC"),
    MatchSettings(casefold=False),
    MatchSettings(normalisation="none"),
]


def fuzz_docs(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pool = TROUBLE + PLAIN
    return ["".join(rng.choice(GLUE) + rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(n)]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.normalisation}-casefold={s.casefold}")
def test_each_document_is_normalised_exactly_as_unicodedata_does(settings):
    docs = fuzz_docs(3000, seed=1) + ["", "plain ascii", "\ufdfa" * 5000, "e" + "\u0301" * 300, "\u0301start"]
    docs += ["a\u0301\x00\u0301b \u1100\u1161"]  # a U+0000 inside a window: the windows go to unicodedata one by one
    ps = PhraseSet.build([("paris", "en")], settings)
    compiled = ps.compiled
    assert compiled is not None
    buf, starts, ends = compiled.normalise(docs)
    got = [buf[s:e].tobytes().decode("utf-8") for s, e in zip(starts, ends)]
    want = [normalise(d, settings) for d in docs]
    assert got == want
    if settings.normalisation != "none":  # the spots unicodedata must take were there, and were taken
        assert any(unicodedata_changes_more_than_per_char(d, settings) for d in docs)


def unicodedata_changes_more_than_per_char(doc: str, settings: MatchSettings) -> bool:
    return normalise(doc, settings) != "".join(normalise(c, settings) for c in doc)


@pytest.mark.parametrize("n_docs", [0, 1, 2, 3, 501])
def test_compiled_matches_equal_the_python_engine(n_docs):
    phrases = [(p, lang) for p in WORDS + ["café", "cafe\u0301", "가", "각", "ガ", "パ", "ö", "ṓ", "ab"] for lang in ("en", "tr")]
    docs = fuzz_docs(n_docs, seed=n_docs) if n_docs != 501 else fuzz_docs(500, seed=2) + ["café " * 2000]
    compiled = PhraseSet.build(phrases, MatchSettings())
    python = PhraseSet.build(phrases, MatchSettings(engine="python"))
    got, want = compiled.match(docs), python.match(docs)
    assert got.sort("doc", "phrase").equals(want.sort("doc", "phrase"))
    if n_docs == 501:
        assert want.height > 1000


def test_fact_counts_of_the_compiled_counter_equal_the_python_engine():
    rng = random.Random(5)
    subjects = WORDS[:10] + ["café", "가", "ガ"]
    objects = WORDS[10:20] + ["cafe\u0301", "각", "パ"]
    facts = pl.DataFrame({
        "fact_id": list(range(0, 2 * len(subjects), 2)),  # not dense: ids are the table's own
        "lang": [rng.choice(["en", "ko", "tr", "ja"]) for _ in subjects],
        "subject": subjects, "object": objects,
        "subject_aliases": [["Paris"] if i % 3 == 0 else [] for i in range(len(subjects))],
        "object_aliases": [[] for _ in subjects],
    })
    docs = fuzz_docs(2000, seed=3)
    steps = [rng.choice([None, 5, 15, 25, 99]) for _ in docs]
    buckets = buckets_of(steps, len(docs), [10, 20])
    phrases, sides = compile_phrases(facts, MatchSettings())
    counter = FactCounter(phrases, sides)
    assert counter.compiled is not None
    got = counter.count(docs, buckets).sort("fact_id", "bucket")
    py_phrases, py_sides = compile_phrases(facts, MatchSettings(engine="python"))
    want = count_matches(py_phrases.match(docs), py_sides, buckets).sort("fact_id", "bucket")
    assert got.equals(want)
    assert want.get_column("cooccurrence_docs").sum() > 0 and want.get_column("bucket").n_unique() == 3


def test_normalisation_tables_are_stored_and_loaded_and_a_damaged_file_is_rebuilt(tmp_path, monkeypatch):
    from pipelines.core import automaton

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    build = automaton.norm_tables.__wrapped__  # past the per-process cache
    args = ("NFKC", True, ((0x4E00, 0x9FFF),))
    path = automaton._tables_file(*args)
    assert path.parent == tmp_path and not path.exists()
    built = build(*args)
    assert path.exists()

    def same(a, b):
        return a.check == b.check and all((getattr(a, n) == getattr(b, n)).all() for n in automaton._TABLE_ARRAYS)

    made = 0
    original = automaton._build_norm_tables

    def counting(*a):
        nonlocal made
        made += 1
        return original(*a)

    monkeypatch.setattr(automaton, "_build_norm_tables", counting)
    assert same(build(*args), built) and made == 0  # loaded, not built
    path.write_bytes(path.read_bytes()[:1000])  # cut short, as by a crash of another writer
    assert same(build(*args), built) and made == 1  # built again, and stored again
    assert same(build(*args), built) and made == 1
    assert automaton._tables_file("NFKC", False, ((0x4E00, 0x9FFF),)) != path  # other settings, other file


def test_the_automaton_laid_out_by_a_first_batch_finds_the_same_matches(monkeypatch):
    """find() renumbers states and byte classes by how often the first big enough batch visits
    them (CompiledMatcher.lay_out); any numbering must give the same matches and counts."""
    from pipelines.core.automaton import CompiledMatcher

    phrases = [(p, lang) for p in WORDS + ["café", "cafe\u0301", "가", "각", "ガ", "パ", "ö", "ṓ", "ab"] for lang in ("en", "tr")]
    first, later = fuzz_docs(400, seed=11), fuzz_docs(600, seed=12) + ["café " * 500]
    python = PhraseSet.build(phrases, MatchSettings(engine="python"))
    monkeypatch.setattr(CompiledMatcher, "LAYOUT_MIN", 1)
    compiled = PhraseSet.build(phrases, MatchSettings())
    matcher = compiled.compiled
    assert matcher is not None and not matcher.laid_out
    built = matcher.automaton
    want_later = python.match(later).sort("doc", "phrase")
    assert compiled.match(first).sort("doc", "phrase").equals(python.match(first).sort("doc", "phrase"))
    assert matcher.laid_out and matcher.automaton[0] is not built[0]  # the first batch laid it out
    assert compiled.match(later).sort("doc", "phrase").equals(want_later)
    # the layout is a real renumbering: states and classes moved, the root stayed
    table, term, _, byte_class = matcher.automaton
    assert not np.array_equal(term, built[1]) and not np.array_equal(byte_class, built[3])
    assert sorted(term.tolist()) == sorted(built[1].tolist()) and table.shape == built[0].shape
    assert (table[: matcher.stride] == built[0][: matcher.stride]).sum() < matcher.stride  # row 0 is the root's, reordered
    # and a layout learnt from other text, or laid out again, changes nothing either
    matcher.lay_out(*matcher.normalise(["ab " * 1000 + "東京 한국어"]))
    assert compiled.match(later).sort("doc", "phrase").equals(want_later)
    assert want_later.height > 500
