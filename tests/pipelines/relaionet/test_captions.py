"""LAIONet's caption matching, rule by rule, against an independent reference written here; and the bench.

The reference is the plain reading of the rules: every character that is not a letter, digit or
combining mark (by ``unicodedata``) becomes a space, words are split on whitespace and joined by
single spaces, the unique lemmas are worked out from the raw class file, and each lemma is a
regex of its own (``(?<!\\S)lemma(?!\\S)``) over the caption.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import unicodedata
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

from pipelines.relaionet.captions import CAPTION_MATCH_SCHEMA, CaptionMatcher, match_captions
from pipelines.relaionet.classes import load_class_map

from .test_classes import CLASS_INFO, needs_class_info

REPO = Path(__file__).resolve().parents[3]
BENCH = REPO / "bench" / "relaionet_captions.py"

pytestmark = needs_class_info


@pytest.fixture(scope="module")
def class_map():
    return load_class_map(CLASS_INFO)


def one(caption: str | None, class_map, case_sensitive: bool = True) -> dict:
    return match_captions([caption], class_map, case_sensitive=case_sensitive).row(0, named=True)


# --------------------------------------------------------------------------- the rules, case by case


KEPT = [
    # (caption, class id, lemmas found)
    ("a tench on the table", 0, ["tench"]),
    ("Tinca tinca", 0, ["Tinca tinca"]),
    ("tench tench tench", 0, ["tench"]),
    ("the hen's eggs", 8, ["hen"]),  # punctuation to a space: "hen s"
    ("(ox)", 345, ["ox"]),
    ("tench’s fins", 0, ["tench"]),  # non-ASCII punctuation too
    ("tench™ for sale", 0, ["tench"]),  # and symbols
    ("great-white shark!!", 2, ["great white shark", "white shark"]),  # a multi-word lemma across punctuation
    ("great white  shark", 2, ["great white shark", "white shark"]),  # any run of separators is one space
    ("great\nwhite\tshark", 2, ["great white shark", "white shark"]),
    ("my T-shirt", 610, ["T-shirt"]),  # a lemma with a hyphen: its words
    ("T shirt", 610, ["T-shirt"]),
    ("T.shirt", 610, ["T-shirt"]),
    ("R V park", 757, ["R.V."]),
    ("RV park", 757, ["RV"]),
    ("Cardigan Welsh corgi", 264, ["Cardigan", "Cardigan Welsh corgi"]),  # case-sensitive: the corgi
    ("a knitted cardigan", 474, ["cardigan"]),  # and the sweater
    ("tree-frog or tree frog", 31, ["tree frog", "tree-frog"]),  # two spellings of one synset's lemma
]


@pytest.mark.parametrize("caption,class_id,lemmas", KEPT)
def test_a_caption_with_lemmas_of_one_synset_is_kept(class_map, caption, class_id, lemmas):
    row = one(caption, class_map)
    assert (row["class_id"], row["drop_reason"], row["detail"]) == (class_id, None, None)
    assert row["lemmas"] == lemmas


NO_LEMMA = [
    "concatenate oxygen hens",  # whole words only: no "cat", "ox", "hen" inside words
    "a hen2 and oxen",  # a digit is part of the word
    "tenché",  # so is a non-ASCII letter
    "Tench",  # case-sensitive by default
    "t-shirt",
    "a crane at the lake",  # "crane" is a lemma of two synsets: not used at all
    "maillot de bain",
]


@pytest.mark.parametrize("caption", NO_LEMMA)
def test_a_caption_without_a_unique_lemma_as_whole_words_is_no_lemma(class_map, caption):
    assert one(caption, class_map) == {"index": 0, "class_id": None, "lemmas": [], "drop_reason": "no_lemma", "detail": None}


def test_ignoring_case_casefolds_captions_and_lemmas(class_map):
    assert one("TENCH", class_map, case_sensitive=False)["class_id"] == 0
    assert one("a T-SHIRT", class_map, case_sensitive=False)["class_id"] == 610
    assert one("STRAẞE tench", class_map, case_sensitive=False)["class_id"] == 0  # str.casefold on non-ASCII text
    assert one("Cardigan Welsh corgi", class_map, case_sensitive=False)["lemmas"] == ["Cardigan Welsh corgi"]
    # casefolded, "Cardigan" and "cardigan" are one lemma of two synsets: dropped from both
    assert one("a knitted cardigan", class_map, case_sensitive=False)["drop_reason"] == "no_lemma"
    assert one("a knitted cardigan", class_map)["class_id"] == 474  # the default is untouched


def test_lemmas_of_two_synsets_drop_the_caption_and_the_detail_names_them(class_map):
    row = one("ox,hen", class_map)
    assert (row["class_id"], row["drop_reason"]) == (None, "multiple_synsets")
    assert row["lemmas"] == ["hen", "ox"]  # class id order
    assert row["detail"] == 'lemmas of 2 synsets: n01514859 hen (class 8): "hen"; n02403003 ox (class 345): "ox"'
    # LAIONet's rule counts a lemma inside a longer lemma of another synset ("husky" in "Siberian husky")
    row = one("Siberian husky puppy", class_map)
    assert row["drop_reason"] == "multiple_synsets" and row["lemmas"] == ["husky", "Siberian husky"]
    assert "n02109961 Eskimo dog (class 248)" in row["detail"] and "n02110185 Siberian husky (class 250)" in row["detail"]
    row = one("jack-o'-lantern", class_map)  # "jack" (jackfruit) is one of its words
    assert row["drop_reason"] == "multiple_synsets" and row["lemmas"] == ["jack-o'-lantern", "jack"]


def test_classes_whose_every_lemma_holds_another_synsets_lemma_are_never_kept(class_map):
    """LAIONet's rule has no "longest lemma wins": 28 classes can never keep a caption."""
    lemmas = list(class_map.lemmas)
    got = match_captions(lemmas, class_map).with_columns(pl.Series("own", [class_map.class_of(x) for x in lemmas]))
    assert got.filter(pl.col("class_id").is_not_null()).select((pl.col("class_id") == pl.col("own")).all()).item()
    reachable = set(got.filter(pl.col("drop_reason").is_null()).get_column("class_id").to_list())
    never = sorted(set(class_map.matchable_classes) - reachable)
    assert len(never) == 28 and {class_map.names[c] for c in never} >= {"sea lion", "Siberian husky", "bell pepper", "jack-o'-lantern"}
    assert set(got.filter(pl.col("own").is_in(never)).get_column("drop_reason").to_list()) == {"multiple_synsets"}


def test_empty_captions(class_map):
    got = match_captions([None, "", "   ", "?!", "tench"], class_map)
    assert got.get_column("drop_reason").to_list() == ["empty_caption"] * 4 + [None]
    assert got.get_column("detail").to_list() == [
        "the caption is missing (null)", "the caption is empty", "the caption is empty", "no letter or digit in the caption", None,
    ]
    assert got.get_column("lemmas").to_list() == [[], [], [], [], ["tench"]]


def test_one_row_per_caption_in_order_with_the_schema(class_map):
    captions = ["tench", None, "goldfish", "nothing here", "ox hen"]
    got = match_captions(captions, class_map)
    assert got.schema == CAPTION_MATCH_SCHEMA
    assert got.get_column("index").to_list() == [0, 1, 2, 3, 4]
    assert got.get_column("class_id").to_list() == [0, None, 1, None, None]
    assert got.get_column("drop_reason").to_list() == [None, "empty_caption", None, "no_lemma", "multiple_synsets"]
    assert match_captions(pl.Series(captions), class_map).equals(got)  # a polars column works as well
    assert match_captions([], class_map).schema == CAPTION_MATCH_SCHEMA
    with pytest.raises(TypeError):
        match_captions(["tench", 3], class_map)  # type: ignore[list-item]
    matcher = CaptionMatcher.build(class_map, case_sensitive=False)
    assert matcher.class_map is class_map.with_case(False) and not matcher.case_sensitive


# --------------------------------------------------------------------------- against the reference


def ref_words(text: str | None, casefold: bool) -> str:
    if text is None:
        return ""
    if casefold:
        text = text.casefold()
    return " ".join("".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in text).split())


def ref_lemmas(casefold: bool) -> dict[str, tuple[str, int]]:
    """Unique lemma -> (its words, class id), from the raw class file."""
    owners: dict[str, set[int]] = defaultdict(set)
    entries = []
    for c in json.loads(CLASS_INFO.read_text(encoding="utf-8")):
        for lemma in c["synset"]:
            words = ref_words(lemma, casefold)
            owners[words].add(c["cid"])
            entries.append((lemma, words, c["cid"]))
    return {lemma: (words, cid) for lemma, words, cid in entries if len(owners[words]) == 1}


def ref_match(caption: str | None, lemmas: dict, casefold: bool) -> tuple[int | None, list[str], str | None]:
    words = ref_words(caption, casefold)
    if not words:
        return None, [], "empty_caption"
    found = [lemma for lemma, (form, _) in lemmas.items()
             if form in words and re.search(r"(?<!\S)" + re.escape(form) + r"(?!\S)", words)]
    classes = {lemmas[lemma][1] for lemma in found}
    if not classes:
        return None, [], "no_lemma"
    if len(classes) > 1:
        return None, sorted(found), "multiple_synsets"
    return classes.pop(), sorted(found), None


GLUE = [" ", " ", ", ", "-", "'s ", "’", "—", " (", ") ", "_", "/", "\t", "  ", "!", "™", "é", "x", "2", "s ", ".", "\u00a0"]
FILLER = ["the", "photo", "of", "oxen", "hens", "concatenate", "jackpot", "Crane", "crane", "panda", "café", "STRASSE",
          "naïve", "İstanbul", "ŉ", "ǅ", "ﬁsh", "2019"]


def generated_captions(class_map, n: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    lemmas = list(class_map.lemmas) + list(class_map.shared_lemmas)
    captions: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.03:
            captions.append(rng.choice([None, "", " ", "?!", "★"]))
            continue
        parts = []
        for _ in range(rng.randint(1, 5)):
            token = rng.choice(lemmas) if rng.random() < 0.6 else rng.choice(FILLER)
            r = rng.random()
            if r < 0.1:
                token = token.upper()
            elif r < 0.2:
                token = token.lower()
            elif r < 0.3:
                token = token.replace(" ", rng.choice(["-", "_", ", ", "  ", ".", "\n"]))
            parts += [token, rng.choice(GLUE)]
        captions.append(rng.choice(["", " ", "#", "x"]) + "".join(parts))
    return captions


@pytest.mark.parametrize("case_sensitive", [True, False], ids=["case-sensitive", "casefold"])
def test_generated_captions_agree_with_the_reference(class_map, case_sensitive):
    captions = generated_captions(class_map, 3000, seed=11 if case_sensitive else 12)
    lemmas = ref_lemmas(casefold=not case_sensitive)
    assert set(lemmas) == set(class_map.with_case(case_sensitive).lemmas)
    got = match_captions(captions, class_map, case_sensitive=case_sensitive)
    mine = [(c, sorted(x), r) for c, x, r in got.select("class_id", "lemmas", "drop_reason").iter_rows()]
    want = [ref_match(c, lemmas, not case_sensitive) for c in captions]
    bad = [(i, captions[i], mine[i], want[i]) for i in range(len(captions)) if mine[i] != want[i]]
    assert not bad, bad[:5]
    reasons = pl.Series([r for _, _, r in want]).value_counts(name="n")
    assert reasons.height == 4 and reasons.get_column("n").min() > 50  # every outcome, plenty of each


# --------------------------------------------------------------------------- the bench


def test_the_bench_runs_on_a_small_sample(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--captions", "20000", "--batch", "7000", "--naive-captions", "200", "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "captions/s per core" in proc.stdout and "target ours >= 200,000 captions/s per core" in proc.stdout
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["captions"] == 20000 and sum(result["results"].values()) == 20000
    assert result["naive_agrees"] and result["naive"]["captions"] == 200
    assert all(result["results"][k] > 0 for k in ("kept", "no_lemma", "multiple_synsets", "empty_caption"))
    assert result["ours"]["captions_per_cpu_s"] > 0 and result["ours"]["captions_per_wall_s"] > 0
    assert isinstance(result["target"]["pass"], bool)
