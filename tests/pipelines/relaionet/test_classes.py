"""ImageNet classes and the unique-lemma map: the real class file, LAIONet's rules, bad input."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.errors import InputError
from pipelines.relaionet.classes import CLASS_INFO_SCHEMA, build_class_map, load_class_map, match_form, read_class_info

REPO = Path(__file__).resolve().parents[3]
CLASS_INFO = Path(os.environ.get("IMAGENET_CLASS_INFO", REPO.parent / "shared" / "data" / "imagenet" / "class_info.json"))
needs_class_info = pytest.mark.skipif(not CLASS_INFO.is_file(), reason=f"class file not found at {CLASS_INFO}")


def write_classes(tmp_path: Path, entries: object) -> Path:
    path = tmp_path / "class_info.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def entry(cid: int, wnid: str, *lemmas: str, gloss: str = "a thing") -> dict:
    return {"cid": cid, "wnid": wnid, "synset": list(lemmas), "gloss": gloss}


# --------------------------------------------------------------------------- the real class file


@needs_class_info
def test_the_real_file_reads_into_1000_typed_classes():
    classes = read_class_info(CLASS_INFO)
    assert classes.schema == CLASS_INFO_SCHEMA
    assert classes.height == 1000
    assert classes.get_column("class_id").to_list() == list(range(1000))
    assert classes.get_column("wnid").n_unique() == 1000
    first = classes.row(0, named=True)
    assert first == {
        "class_id": 0, "wnid": "n01440764", "name": "tench", "lemmas": ["tench", "Tinca tinca"],
        "gloss": "freshwater dace-like game fish of Europe and western Asia noted for ability to survive outside water",
    }
    assert classes.get_column("lemmas").list.len().sum() == 1860


@needs_class_info
def test_the_real_file_keeps_only_lemmas_unique_to_one_synset():
    raw = json.loads(CLASS_INFO.read_text(encoding="utf-8"))
    owners: dict[str, set[str]] = defaultdict(set)
    for c in raw:
        for lemma in c["synset"]:
            owners[lemma].add(c["wnid"])
    unique = {lemma for lemma, wnids in owners.items() if len(wnids) == 1}
    shared = {lemma for lemma, wnids in owners.items() if len(wnids) > 1}

    cmap = load_class_map(CLASS_INFO)
    assert set(cmap.lemmas) == unique and len(cmap.lemmas) == 1824  # LAIONet's exact-string rule gives the same set
    assert set(cmap.shared_lemmas) == shared and len(shared) == 18
    for lemma in ("crane", "maillot", "crayfish", "crawfish", "panda", "panther", "Sus scrofa", "tub", "horn"):
        assert lemma in cmap.shared_lemmas and lemma not in cmap.lemma_to_class
    assert cmap.shared_lemmas["crane"] == (134, 517)  # the bird and the machine
    assert cmap.class_of("giant panda") == 388 and cmap.class_of("lesser panda") == 387
    assert cmap.class_of("tench") == 0 and cmap.class_of("Tinca tinca") == 0
    assert len(cmap.matchable_classes) == 994


@needs_class_info
def test_synsets_without_a_unique_lemma_are_skipped_with_the_reason():
    cmap = load_class_map(CLASS_INFO)
    skipped = {s.wnid: s for s in cmap.skipped}
    assert {(s.class_id, s.name) for s in cmap.skipped} == {
        (86, "partridge"), (134, "crane"), (517, "crane"), (594, "harp"), (638, "maillot"), (657, "missile"),
    }
    assert skipped["n02012849"].why == "no lemma unique to it: 'crane' is also a lemma of n03126707 crane (class 517)"
    assert "n03494278 harmonica (class 593)" in skipped["n03495258"].why  # "harp" is also a harmonica
    assert not set(cmap.matchable_classes) & {s.class_id for s in cmap.skipped}


@needs_class_info
def test_ignoring_case_decides_uniqueness_on_casefolded_lemmas():
    cmap = load_class_map(CLASS_INFO)
    assert cmap.class_of("Cardigan") == 264 and cmap.class_of("cardigan") == 474  # corgi, sweater
    folded = cmap.with_case(False)
    assert folded is cmap.with_case(False) and folded.with_case(True) is not None
    assert not folded.case_sensitive and len(folded.lemmas) == 1822
    assert "Cardigan" not in folded.lemma_to_class and "cardigan" not in folded.lemma_to_class
    assert folded.class_of("Cardigan Welsh corgi") == 264
    assert folded.lemma_forms["Cardigan Welsh corgi"] == "cardigan welsh corgi"
    sweater = [s for s in folded.skipped if s.class_id == 474]
    assert len(folded.skipped) == 7 and sweater
    assert sweater[0].why == ("no lemma unique to it when case is ignored: "
                              "'cardigan' is also a lemma of n02113186 Cardigan (class 264) as 'Cardigan'")


@needs_class_info
def test_query_texts_are_laionet_name_which_is_gloss():
    cmap = load_class_map(CLASS_INFO)
    assert len(cmap.query_texts) == 1000
    assert cmap.query_text(2) == "great white shark which is large aggressive shark widespread in warm seas; known to attack humans"
    assert cmap.wnids[2] == "n01484850" and cmap.names[2] == "great white shark"


@needs_class_info
def test_lemmas_with_punctuation_match_in_their_words_form():
    cmap = load_class_map(CLASS_INFO)
    forms = cmap.lemma_forms
    assert forms["T-shirt"] == "T shirt"
    assert forms["jack-o'-lantern"] == "jack o lantern"
    assert forms["R.V."] == "R V"
    assert forms["yellow lady's slipper"] == "yellow lady s slipper"
    assert cmap.class_of("tree frog") == cmap.class_of("tree-frog")  # two spellings of one synset stay


# --------------------------------------------------------------------------- the rules on a small file


def test_a_lemma_of_two_synsets_is_dropped_from_both(tmp_path):
    path = write_classes(tmp_path, [
        entry(0, "n1", "crane", "whooping crane", gloss="a bird"),
        entry(1, "n2", "crane", gloss="a machine"),
        entry(2, "n3", "tree frog", "tree-frog", "Frog"),
        entry(3, "n4", "frog"),
    ])
    cmap = load_class_map(path)
    assert cmap.lemmas == ("whooping crane", "tree frog", "tree-frog", "Frog", "frog")
    assert cmap.lemma_forms["tree-frog"] == "tree frog"
    assert cmap.shared_lemmas == {"crane": (0, 1)}
    assert [(s.class_id, s.wnid, s.name) for s in cmap.skipped] == [(1, "n2", "crane")]
    assert cmap.skipped[0].why == "no lemma unique to it: 'crane' is also a lemma of n1 crane (class 0)"
    assert cmap.query_text(1) == "crane which is a machine"
    folded = cmap.with_case(False)  # "Frog" and "frog" collide: n4 is left without a lemma
    assert folded.shared_lemmas == {"crane": (0, 1), "Frog": (2, 3), "frog": (2, 3)}
    assert [s.wnid for s in folded.skipped] == ["n2", "n4"]
    assert "'frog' is also a lemma of n3 tree frog (class 2) as 'Frog'" in folded.skipped[1].why


def test_spellings_that_become_one_form_in_two_synsets_are_shared(tmp_path):
    path = write_classes(tmp_path, [entry(0, "n1", "T-shirt", "tee"), entry(1, "n2", "T shirt", "top")])
    cmap = load_class_map(path)
    assert cmap.lemmas == ("tee", "top")
    assert cmap.shared_lemmas == {"T-shirt": (0, 1), "T shirt": (0, 1)}


def test_match_form_turns_punctuation_into_single_spaces():
    texts = pl.Series(["Dog's  T-shirt!!", "great\twhite—shark", "…", "", None, "Straße ÉCOLE", "a_b 3.5"])
    assert match_form(texts).to_list() == ["Dog s T shirt", "great white shark", "", "", None, "Straße ÉCOLE", "a b 3 5"]
    assert match_form(texts, casefold=True).to_list()[0] == "dog s t shirt"
    assert match_form(texts, casefold=True).to_list()[5] == "strasse école"  # str.casefold, not lower


def test_a_file_with_gaps_in_ids_is_sorted_and_refused(tmp_path):
    path = write_classes(tmp_path, [entry(1, "n2", "b"), entry(0, "n1", "a")])
    assert read_class_info(path).get_column("wnid").to_list() == ["n1", "n2"]
    with pytest.raises(InputError, match=r"class ids must be 0\.\.1 .*missing \[1\], beyond the range \[2\]"):
        read_class_info(write_classes(tmp_path, [entry(0, "n1", "a"), entry(2, "n2", "b")]))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("content,message", [
    (None, "no such class file"),
    ("{not json", "not valid JSON"),
    (json.dumps({"cid": 0}), "expected a non-empty JSON list of classes"),
    (json.dumps([]), "expected a non-empty JSON list of classes"),
    (json.dumps([[0, "n1"]]), "entry 0: expected an object, got list"),
    (json.dumps([{"cid": 0, "wnid": "n1", "gloss": "g"}]), "entry 0: missing field.s. synset"),
    (json.dumps([entry(0, "n1", "a"), {**entry(1, "n2", "b"), "cid": "1"}]), 'entry 1: "cid" must be an integer'),
    (json.dumps([{**entry(0, "n1", "a"), "cid": True}]), '"cid" must be an integer'),
    (json.dumps([{**entry(0, "n1", "a"), "wnid": ""}]), '"wnid" must be a non-empty string'),
    (json.dumps([entry(0, "n1")]), '"synset" must be a non-empty list of lemma strings'),
    (json.dumps([{**entry(0, "n1", "a"), "synset": ["a", 3]}]), '"synset" must be a non-empty list'),
    (json.dumps([{**entry(0, "n1", "a"), "gloss": None}]), '"gloss" must be a string'),
    (json.dumps([entry(0, "n1", "a", "--")]), "lemma.s. without a letter or digit: '--'"),
])
def test_a_malformed_class_file_is_an_input_error_naming_it(tmp_path, content, message):
    path = tmp_path / "class_info.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        read_class_info(path)
    assert str(path) in str(err.value)


def test_duplicated_class_ids_and_wnids_are_named(tmp_path):
    dup_ids = write_classes(tmp_path, [entry(0, "n1", "a"), entry(1, "n2", "b"), entry(1, "n3", "c")])
    with pytest.raises(InputError, match=r"duplicated class ids: 1 \(entries 1, 2\)"):
        read_class_info(dup_ids)
    dup_wnids = write_classes(tmp_path, [entry(0, "n7", "a"), entry(1, "n8", "b"), entry(2, "n7", "c")])
    with pytest.raises(InputError, match=r"duplicated WordNet ids: n7 \(entries 0, 2\)"):
        read_class_info(dup_wnids)


def test_build_class_map_takes_the_frame(tmp_path):
    frame = read_class_info(write_classes(tmp_path, [entry(0, "n1", "ox", "Bos taurus")]))
    cmap = build_class_map(frame, case_sensitive=False)
    assert cmap.lemma_forms == {"ox": "ox", "Bos taurus": "bos taurus"} and cmap.classes is frame
