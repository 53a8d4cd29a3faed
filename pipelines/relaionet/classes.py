"""The ImageNet-1k classes and LAIONet's lemma -> class map.

Input: ``class_info.json`` (``../shared/data/imagenet``), a JSON list with one object per class,
``{"cid": 0, "wnid": "n01440764", "synset": ["tench", "Tinca tinca"], "gloss": "freshwater dace-like
game fish ..."}``. :func:`read_class_info` turns it into a frame of :data:`CLASS_INFO_SCHEMA`
(``class_id``, ``wnid``, ``name`` = the first lemma, ``lemmas``, ``gloss``; one row per class, in
class id order). Class ids must be exactly 0..N-1 (1,000 for ImageNet-1k). A missing file, bad JSON,
an entry without those four fields (or with a wrong type, an empty lemma list, a lemma without a
letter or digit), duplicated class ids or WordNet ids, or ids that are not 0..N-1 are an
:class:`InputError` naming the file and the offending entries.

Match form (:func:`match_form`): captions and lemmas are compared as sequences of *words*. A word
is a maximal run of letters, digits and combining marks (Unicode categories L, N, M); every other
character (punctuation, symbols, whitespace) separates words, and the match form is the words
joined by single spaces. This is LAIONet's "punctuation becomes a space" rule, applied to the
lemmas too: "T-shirt" is ``T shirt``, "jack-o'-lantern" ``jack o lantern``, "R.V." ``R V``, so
they match "T-shirt", "t shirt" (case permitting) and "jack o' lantern" alike. LAIONet's own code
padded the raw lemma with spaces and looked for it in the punctuation-free caption, so its 64
lemmas with a hyphen, apostrophe or period could never match; we match them instead. With
``case_sensitive=False`` both sides are casefolded (``str.casefold``) first.

Unique lemmas (LAIONet's rule, ``lemma2wnid(unique_in_ilsvrc)``): a lemma is used only if its match
form belongs to one synset; a lemma that two synsets list ("crane": the bird and the machine) is
dropped from both. Two spellings of one lemma within a synset ("tree frog", "tree-frog") stay.
A synset left without a unique lemma is reported in :attr:`ClassMap.skipped` with the reason and
never matched (LAIONet's ``ignore_empty_wnids``). In the real file: 1,860 lemmas, 18 shared by
two synsets each, 1,824 unique; 6 synsets skipped (two "crane"s, two "maillot"s, "harp",
"missile", "partridge"). Casefolded, "Cardigan" (the corgi) and "cardigan" (the sweater) collide
too: 1,822 unique lemmas and 7 synsets skipped (the sweater; the corgi keeps "Cardigan Welsh corgi").

:class:`ClassMap` also gives LAIONet's query text per class, ``"<name> which is <gloss>"``, for the
text-similarity filter.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Mapping

import polars as pl

from pipelines.core.errors import InputError
from pipelines.core.readers import load_json_file

CLASS_ID = pl.UInt16
CLASS_INFO_SCHEMA = pl.Schema({
    "class_id": CLASS_ID, "wnid": pl.String, "name": pl.String, "lemmas": pl.List(pl.String), "gloss": pl.String,
})
FIELDS = ("cid", "wnid", "synset", "gloss")
FIX = 'Give the ImageNet class file as published: a JSON list of {"cid", "wnid", "synset": [lemmas], "gloss"}'

NON_WORD_RUN = r"[^\p{L}\p{N}\p{M}]+"  # what separates words: anything but letters, digits, marks
NON_ASCII = r"[^\x00-\x7F]"


def match_form(texts: pl.Series, *, casefold: bool = False) -> pl.Series:
    """The words of each text joined by single spaces (casefolded first when asked); null stays
    null, a text without a letter or digit becomes "". Vectorised; ``str.casefold`` runs in Python
    only for the non-ASCII texts (for ASCII it is the lower case)."""
    texts = texts.cast(pl.String)
    if casefold:
        folded = texts.str.to_lowercase()
        rows = texts.str.contains(NON_ASCII).fill_null(False).arg_true()
        if len(rows):
            folded = folded.scatter(rows, [t.casefold() for t in texts.gather(rows).to_list()])
        texts = folded
    return texts.str.replace_all(NON_WORD_RUN, " ").str.strip_chars(" ")


def read_class_info(path: Path | str) -> pl.DataFrame:
    """``class_info.json`` -> one row per class (:data:`CLASS_INFO_SCHEMA`), sorted by class id."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such class file", FIX)
    data = load_json_file(path)
    if not isinstance(data, list) or not data:
        raise InputError(path, "expected a non-empty JSON list of classes", FIX)
    rows = [_class_row(path, i, entry) for i, entry in enumerate(data)]
    _check_ids(path, rows)
    return pl.DataFrame(rows, schema=CLASS_INFO_SCHEMA, orient="row").sort("class_id")


def _class_row(path: Path, i: int, entry: object) -> tuple[int, str, str, list[str], str]:
    def bad(problem: str) -> InputError:
        return InputError(path, f"entry {i}: {problem}", FIX)

    if not isinstance(entry, dict):
        raise bad(f"expected an object, got {type(entry).__name__}")
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        raise bad(f"missing field(s) {', '.join(missing)}")
    cid, wnid, lemmas, gloss = (entry[f] for f in FIELDS)
    if not isinstance(cid, int) or isinstance(cid, bool) or not 0 <= cid < 65536:
        raise bad(f'"cid" must be an integer 0..65535, got {json.dumps(cid)}')
    if not isinstance(wnid, str) or not wnid.strip():
        raise bad(f'"wnid" must be a non-empty string, got {json.dumps(wnid)}')
    if not isinstance(lemmas, list) or not lemmas or not all(isinstance(x, str) for x in lemmas):
        raise bad(f'"synset" must be a non-empty list of lemma strings, got {json.dumps(lemmas)[:200]}')
    if not isinstance(gloss, str):
        raise bad(f'"gloss" must be a string, got {json.dumps(gloss)[:200]}')
    wordless = [x for x in lemmas if not any(ch.isalnum() for ch in x)]
    if wordless:
        raise bad(f"lemma(s) without a letter or digit: {', '.join(map(repr, wordless))}")
    return cid, wnid.strip(), lemmas[0], lemmas, gloss


def _check_ids(path: Path, rows: list[tuple[int, str, str, list[str], str]]) -> None:
    for position, what in ((0, "class ids"), (1, "WordNet ids")):
        entries: dict[object, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            entries[row[position]].append(i)
        dups = {value: at for value, at in entries.items() if len(at) > 1}
        if dups:
            listed = "; ".join(f"{value} (entries {', '.join(map(str, at))})" for value, at in list(dups.items())[:20])
            raise InputError(path, f"duplicated {what}: {listed}", "Each class must appear once; fix or re-download the file")
    ids = {row[0] for row in rows}
    if ids != set(range(len(rows))):
        missing = sorted(set(range(len(rows))) - ids)[:20]
        beyond = sorted(ids - set(range(len(rows))))[:20]
        raise InputError(
            path, f"class ids must be 0..{len(rows) - 1} (one per entry); missing {missing}, beyond the range {beyond}",
            "Give every class its ImageNet label index",
        )


@dataclass(frozen=True)
class SkippedSynset:
    """A synset none of whose lemmas is unique to it: never matched."""

    class_id: int
    wnid: str
    name: str
    why: str


@dataclass(frozen=True, eq=False)
class ClassMap:
    """Unique lemmas -> ImageNet class, for one case rule. Build it with :func:`build_class_map`.

    ``classes``: the class table; ``lemma_to_class``: each unique lemma (as spelled in the file) ->
    class id, in class id order; ``lemma_forms``: unique lemma -> its match form (casefolded when
    not ``case_sensitive``); ``shared_lemmas``: each dropped lemma -> the class ids sharing its
    match form; ``skipped``: the synsets left without a unique lemma. Compared by identity."""

    classes: pl.DataFrame
    case_sensitive: bool
    lemma_to_class: Mapping[str, int]
    lemma_forms: Mapping[str, str]
    shared_lemmas: Mapping[str, tuple[int, ...]]
    skipped: tuple[SkippedSynset, ...]
    _other_case: dict[bool, "ClassMap"] = field(default_factory=dict, repr=False)

    @property
    def lemmas(self) -> tuple[str, ...]:
        """The unique lemmas, in class id order."""
        return tuple(self.lemma_to_class)

    def class_of(self, lemma: str) -> int:
        """The class id of a unique lemma (``KeyError`` for any other string)."""
        return self.lemma_to_class[lemma]

    @cached_property
    def wnids(self) -> tuple[str, ...]:
        return tuple(self.classes.get_column("wnid").to_list())

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(self.classes.get_column("name").to_list())

    @cached_property
    def query_texts(self) -> tuple[str, ...]:
        """Per class id, LAIONet's text for the similarity filter: ``"<name> which is <gloss>"``."""
        return tuple(f"{name} which is {gloss}" for name, gloss in self.classes.select("name", "gloss").iter_rows())

    def query_text(self, class_id: int) -> str:
        return self.query_texts[class_id]

    @cached_property
    def matchable_classes(self) -> tuple[int, ...]:
        """The class ids with at least one unique lemma."""
        return tuple(sorted(set(self.lemma_to_class.values())))

    def with_case(self, case_sensitive: bool) -> "ClassMap":
        """This map for the other case rule (built once, then kept)."""
        if case_sensitive == self.case_sensitive:
            return self
        if case_sensitive not in self._other_case:
            self._other_case[case_sensitive] = build_class_map(self.classes, case_sensitive=case_sensitive)
        return self._other_case[case_sensitive]


def build_class_map(classes: pl.DataFrame, *, case_sensitive: bool = True) -> ClassMap:
    """The unique lemmas of ``classes`` (a :func:`read_class_info` frame) under one case rule."""
    exploded = classes.select("class_id", "lemmas").explode("lemmas")
    lemmas_in = exploded.get_column("lemmas")
    entries = list(zip(exploded.get_column("class_id").to_list(), lemmas_in.to_list(),
                       match_form(lemmas_in, casefold=not case_sensitive).to_list()))
    form_of = {(class_id, lemma): form for class_id, lemma, form in entries}
    spellings: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))  # form -> class -> lemmas
    for class_id, lemma, form in entries:
        if lemma not in spellings[form][class_id]:
            spellings[form][class_id].append(lemma)
    lemma_to_class: dict[str, int] = {}
    lemma_forms: dict[str, str] = {}
    shared: dict[str, tuple[int, ...]] = {}
    for class_id, lemma, form in entries:
        if len(spellings[form]) == 1:
            lemma_to_class[lemma] = class_id
            lemma_forms[lemma] = form
        else:
            shared[lemma] = tuple(sorted(spellings[form]))
    wnids = classes.get_column("wnid").to_list()
    names = classes.get_column("name").to_list()
    has_unique = set(lemma_to_class.values())
    case = "" if case_sensitive else " when case is ignored"
    skipped = []
    for class_id, lemmas in classes.select("class_id", "lemmas").iter_rows():
        if class_id in has_unique:
            continue
        reasons = []
        for lemma in dict.fromkeys(lemmas):
            others = [
                f"{wnids[other]} {names[other]} (class {other})" + ("" if lemma in spelled else f" as {' / '.join(map(repr, spelled))}")
                for other, spelled in spellings[form_of[class_id, lemma]].items() if other != class_id
            ]
            reasons.append(f"{lemma!r} is also a lemma of {', '.join(others)}")
        why = f"no lemma unique to it{case}: " + "; ".join(reasons)
        skipped.append(SkippedSynset(class_id, wnids[class_id], names[class_id], why))
    return ClassMap(classes, case_sensitive, lemma_to_class, lemma_forms, shared, tuple(skipped))


def load_class_map(path: Path | str, *, case_sensitive: bool = True) -> ClassMap:
    """:func:`build_class_map` of :func:`read_class_info`."""
    return build_class_map(read_class_info(path), case_sensitive=case_sensitive)
