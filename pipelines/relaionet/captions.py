"""LAIONet's caption matching: which ImageNet class a LAION caption names, or why none.

Rules (LAIONet, Shirali & Hardt 2023; the words rule is :func:`pipelines.relaionet.classes.match_form`):

* Punctuation becomes a space before matching, in the caption and in the lemmas: both are
  compared as words (runs of letters, digits and combining marks) joined by single spaces. So
  "dog's" holds the word "dog", "great white-shark" holds "great white shark", and "T-shirt"
  (the lemma) matches "T-shirt", "T shirt" and "T.shirt". Any run of non-word characters counts
  as one space; LAIONet's code compared raw spaces (``" " + lemma + " " in " " + text + " "``), so
  two spaces or a tab inside "great white shark" broke its match, and a non-ASCII character
  next to a word ("dog’s", "shark™") hid the word. Both match here.
* A lemma matches as whole words: the words before and after it are other words ("cat" is not in
  "concatenate", "cats" or "cat2"). Only the unique lemmas of the :class:`ClassMap` are used.
* Case: case-sensitive by default, as LAIONet ("Cardigan" is the corgi, "cardigan" the sweater);
  ``case_sensitive=False`` casefolds captions and lemmas, with lemma uniqueness decided on the
  casefolded forms (:meth:`ClassMap.with_case`: "cardigan" is then dropped from both synsets).
* A caption whose matched lemmas belong to more than one synset is dropped (``multiple_synsets``,
  the detail names the synsets and their lemmas); one with no lemma is ``no_lemma``; a null caption
  or one without a letter or digit is ``empty_caption``. As in LAIONet, a lemma inside a longer
  lemma of another synset counts: "Siberian husky" also holds "husky" (Eskimo dog) and is dropped.
  With the real class file, 28 classes (sea lion, Siberian husky, bell pepper, jack-o'-lantern, ...)
  have only such lemmas and never keep a caption under this rule.

Engine: one pass over the whole batch with :class:`pipelines.core.phrases.PhraseSet` (polars
``str.extract_many``, an Aho-Corasick automaton in Rust) over the match forms padded with a
space on each side, the phrases being the lemma forms padded the same way. In that form a
substring hit *is* a whole-word match, so no candidate needs confirming
(``PhraseSet.build(..., boundaries=False)``). Hyperscan is not used here: for captions (tens of
characters) its per-document Python call costs more than the scan (about 3x slower than the
polars automaton, measured on 200,000 generated captions).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import polars as pl

from pipelines.core.phrases import MatchSettings, PhraseSet
from pipelines.relaionet.classes import CLASS_ID, ClassMap, match_form

DROP_REASONS = ("empty_caption", "no_lemma", "multiple_synsets")
CAPTION_MATCH_SCHEMA = pl.Schema({
    "index": pl.UInt32,  # position of the caption in the input
    "class_id": CLASS_ID,  # null when dropped
    "lemmas": pl.List(pl.String),  # the unique lemmas found (as spelled in the class file), class id order
    "drop_reason": pl.String,  # null when kept, else one of DROP_REASONS
    "detail": pl.String,
})
# The text is already in match form: no normalisation, no casefold here, no boundary rules. The
# Python engine with the polars automaton: as fast here as the compiled one (1,000,000 captions:
# 348,000 vs 355,000 captions/s, bench/relaionet_captions.py) and nothing to build first (0.03 s vs 1.1 s).
PLAIN = MatchSettings(
    normalisation="none", casefold=False, substring_scripts=(), start_only_languages=(), engine="python", use_hyperscan=False
)


@dataclass(frozen=True, eq=False)
class CaptionMatcher:
    """The compiled lemmas of one :class:`ClassMap` under one case rule (build once, match many)."""

    class_map: ClassMap
    phrases: PhraseSet
    lemma_table: pl.DataFrame  # phrase (= position in class_map.lemmas) -> lemma, class_id, synset (for details)

    @classmethod
    def build(cls, class_map: ClassMap, *, case_sensitive: bool = True) -> "CaptionMatcher":
        class_map = class_map.with_case(case_sensitive)
        lemmas = class_map.lemmas
        phrases = PhraseSet.build([(f" {class_map.lemma_forms[x]} ", "en") for x in lemmas], PLAIN, boundaries=False)
        classes = [class_map.class_of(x) for x in lemmas]
        table = pl.DataFrame(
            {
                "phrase": range(len(lemmas)), "lemma": lemmas, "class_id": classes,
                "synset": [f"{class_map.wnids[c]} {class_map.names[c]} (class {c})" for c in classes],
            },
            schema={"phrase": pl.UInt32, "lemma": pl.String, "class_id": CLASS_ID, "synset": pl.String},
        )
        return cls(class_map, phrases, table)

    @property
    def case_sensitive(self) -> bool:
        return self.class_map.case_sensitive

    def match(self, captions: Sequence[str | None] | pl.Series) -> pl.DataFrame:
        """One row per caption (:data:`CAPTION_MATCH_SCHEMA`), in input order."""
        raw = captions if isinstance(captions, pl.Series) else pl.Series("caption", captions, dtype=pl.String)
        words = match_form(raw, casefold=not self.case_sensitive)
        padded = (" " + words + " ").fill_null("")
        hits = (
            self.phrases.match(padded.to_list(), normalised=True)
            .join(self.lemma_table, on="phrase", how="inner")
            .sort("doc", "phrase")
        )
        per_caption = hits.group_by("doc", maintain_order=True).agg(
            pl.col("lemma").alias("lemmas"), pl.col("class_id").n_unique().alias("n_classes"), pl.col("class_id").first(),
        )
        multi = per_caption.filter(pl.col("n_classes") > 1).get_column("doc")
        out = (
            pl.DataFrame({"index": pl.int_range(len(raw), dtype=pl.UInt32, eager=True), "empty": (words == "").fill_null(True)})
            .join(per_caption, left_on="index", right_on="doc", how="left")
            .join(self._synsets_named(hits.filter(pl.col("doc").is_in(multi.implode()))), left_on="index", right_on="doc", how="left")
            .with_columns(
                pl.when(pl.col("n_classes") == 1).then("class_id").alias("class_id"),
                pl.col("lemmas").fill_null(pl.lit([], dtype=pl.List(pl.String))),
                pl.when("empty").then(pl.lit("empty_caption"))
                .when(pl.col("n_classes").is_null()).then(pl.lit("no_lemma"))
                .when(pl.col("n_classes") > 1).then(pl.lit("multiple_synsets"))
                .alias("drop_reason"),
            )
        )
        empty = out.get_column("empty").arg_true()
        if len(empty):
            out = out.with_columns(out.get_column("detail").scatter(empty, [_empty_detail(raw[i]) for i in empty.to_list()]))
        return out.select(CAPTION_MATCH_SCHEMA.names()).cast(CAPTION_MATCH_SCHEMA)

    @staticmethod
    def _synsets_named(hits: pl.DataFrame) -> pl.DataFrame:
        """doc -> detail of a ``multiple_synsets`` drop: "lemmas of 2 synsets: <wnid> <name>
        (class <id>): "<lemma>", ...; ..." (synsets in class id order)."""
        return (
            hits.group_by("doc", "class_id", maintain_order=True)
            .agg(pl.col("synset").first(), ('"' + pl.col("lemma") + '"').str.join(", ").alias("found"))
            .group_by("doc", maintain_order=True)
            .agg(pl.len().alias("n"), (pl.col("synset") + ": " + pl.col("found")).str.join("; ").alias("named"))
            .select("doc", pl.format("lemmas of {} synsets: {}", "n", "named").alias("detail"))
        )


def _empty_detail(text: str | None) -> str:
    if text is None:
        return "the caption is missing (null)"
    return "the caption is empty" if not text.strip() else "no letter or digit in the caption"


@lru_cache(maxsize=8)
def _matcher(class_map: ClassMap, case_sensitive: bool) -> CaptionMatcher:
    return CaptionMatcher.build(class_map, case_sensitive=case_sensitive)


def match_captions(
    captions: Sequence[str | None] | pl.Series, class_map: ClassMap, *, case_sensitive: bool = True,
) -> pl.DataFrame:
    """LAIONet's caption -> class matching for a batch of captions.

    Returns one row per caption (:data:`CAPTION_MATCH_SCHEMA`): ``index`` (position in
    ``captions``), ``class_id`` (null when dropped), ``lemmas`` (the unique lemmas found, as
    spelled in the class file, in class id order; empty when none), ``drop_reason`` (null, or one
    of :data:`DROP_REASONS`) and ``detail`` (for ``multiple_synsets`` the synsets and their
    lemmas, for ``empty_caption`` what the caption was; else null). The lemmas are compiled once
    per (class map, case rule) and kept for the next call. A caption that is not a string is a
    polars ``TypeError``.
    """
    return _matcher(class_map, case_sensitive).match(captions)
