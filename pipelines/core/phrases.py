"""Which phrases a document mentions: normalisation, boundary rules, one pass per batch.

The multi-phrase matcher shared by the pipelines: fact frequencies (subjects and objects of 12
languages) and reLAIONet (ImageNet lemmas in captions).

Semantics (every rule is a setting of :class:`MatchSettings`; these are the defaults):

* Text and phrases are NFKC-normalised and casefolded (:func:`normalise`).
* A document counts once for a phrase if the phrase occurs in it at least once.
* A phrase whose first and last characters are both Han, Hiragana, Katakana or Thai
  (``substring_scripts``) matches as any substring: those scripts are written without spaces.
* Any other phrase must start and end at a boundary: the character before the start and the
  character after the end are not *word characters*, i.e. not a letter, digit or combining mark
  of a script written with spaces (a letter of a ``substring_scripts`` script is not a word
  character, so "Obama" matches in "オバマ大統領とObamaは"; "Turkeys" does not match "Turkey").
  For facts of ``start_only_languages`` (Korean and Turkish, where suffixes attach to the word)
  only the start must be a boundary.

Engines (``MatchSettings.engine``; both give the same pairs, the tests compare them). The
distinct normalised phrases of every language form one automaton, one pass per batch, no
per-phrase scan; a phrase string that serves facts of two languages with different boundary
rules is one pattern with two rules, confirmed separately.

* ``compiled`` (default): :mod:`pipelines.core.automaton`, numba loops over the whole batch that
  normalise (exactly as ``unicodedata``), walk a deterministic Aho-Corasick automaton over the
  UTF-8 bytes and check each occurrence's boundaries on the neighbouring code points.
* ``python``: :func:`normalise_many`, then the patterns occurring in each document as
  substrings from a Hyperscan literal database when the package is installed, else polars
  ``str.extract_many`` (Aho-Corasick, Rust, overlapping matches); the candidates that need a
  boundary are confirmed on the document itself with ``str.find`` over their occurrences (a
  document usually holds few distinct candidates). It serves where numba is missing or the
  normalisation is not NFKC, NFC or none.

Phrases with their own boundaries. ``PhraseSet.build(..., boundaries=False)`` takes each phrase
exactly as given (not stripped) and matches it as any substring: for a caller that has put the
boundaries into the text and the phrases itself (reLAIONet captions: words joined by single
spaces, phrases padded with a space on each side), so no candidate needs confirming.

Counting. :meth:`PhraseSet.match` gives (document, phrase) pairs; :mod:`pipelines.facts.count`
turns them into per-fact document counts (subject, object, both).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Iterable, Literal, Sequence

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from pipelines.core import automaton

RULES = ("substring", "both", "start")  # substring: anywhere; both / start: which ends need a boundary
MATCH_SCHEMA = pl.Schema({"doc": pl.UInt32, "phrase": pl.UInt32})


class MatchSettings(BaseModel):
    """How phrases match documents (``facts.matching`` in ``corpusforge.toml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    normalisation: str = Field("NFKC", description="Unicode normalisation of text and phrases (NFKC, NFC, or none).")
    casefold: bool = Field(True, description="Casefold text and phrases (str.casefold).")
    substring_scripts: tuple[str, ...] = Field(
        ("Han", "Hiragana", "Katakana", "Thai"),
        description="A phrase whose first and last characters are of these scripts matches as any substring; their "
        "letters are not word characters for the boundary rule.",
    )
    start_only_languages: tuple[str, ...] = Field(
        ("ko", "tr"), description="Facts of these languages need a boundary at the start only (suffixes attach)."
    )
    engine: Literal["compiled", "python"] = Field(
        "compiled",
        description="compiled: normalise, match and check boundaries in numba over whole batches (pipelines/core/automaton.py; "
        "the Python engine serves when numba is missing or the normalisation is not NFKC, NFC or none); python: unicodedata "
        "per document, Hyperscan or polars candidates, boundaries confirmed with str.find. Same results.",
    )
    use_hyperscan: bool = Field(
        True, description="Python engine: find candidates with Hyperscan when installed (4x faster than the polars automaton); same results."
    )


# Code point ranges of the scripts written without spaces (Unicode blocks; Han includes the
# extensions and compatibility ideographs, Katakana the halfwidth forms and phonetic extensions).
SCRIPT_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "Han": ((0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B), (0x3400, 0x4DBF),
            (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FA1F), (0x30000, 0x323AF)),
    "Hiragana": ((0x3041, 0x309F), (0x1B001, 0x1B11F)),
    "Katakana": ((0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F), (0x1B000, 0x1B000)),
    "Thai": ((0x0E00, 0x0E7F),),
    "Lao": ((0x0E80, 0x0EFF),),
    "Khmer": ((0x1780, 0x17FF),),
    "Myanmar": ((0x1000, 0x109F),),
}


def normalise(text: str, settings: MatchSettings) -> str:
    if settings.normalisation != "none":
        text = unicodedata.normalize(settings.normalisation, text)
    return text.casefold() if settings.casefold else text


def normalise_many(texts: Iterable[str], settings: MatchSettings) -> list[str]:
    """:func:`normalise` of each text; ASCII text (most of a web corpus) skips the Unicode tables
    (NFKC leaves ASCII as it is, and its casefold is its lower case)."""
    form, fold = settings.normalisation, settings.casefold
    out = []
    for text in texts:
        if text.isascii():
            out.append(text.lower() if fold else text)
            continue
        if form != "none" and not unicodedata.is_normalized(form, text):  # the quick check is 4x faster
            text = unicodedata.normalize(form, text)
        out.append(text.casefold() if fold else text)
    return out


class CharClasses:
    """Whether a character is a word character (for boundaries) or of a substring script."""

    def __init__(self, substring_scripts: Sequence[str]) -> None:
        unknown = [s for s in substring_scripts if s not in SCRIPT_RANGES]
        if unknown:
            raise ValueError(f"unknown script(s) {unknown}; known: {', '.join(SCRIPT_RANGES)}")
        self.ranges = tuple(r for s in substring_scripts for r in SCRIPT_RANGES[s])
        self._word: dict[str, bool] = {}
        self._substring: dict[str, bool] = {}

    def in_substring_script(self, char: str) -> bool:
        known = self._substring.get(char)
        if known is None:  # asked for the first and last character of every phrase: remember
            cp = ord(char)
            known = self._substring[char] = any(lo <= cp <= hi for lo, hi in self.ranges)
        return known

    def is_word(self, char: str) -> bool:
        """A letter, digit or mark of a script written with spaces."""
        known = self._word.get(char)
        if known is None:
            category = unicodedata.category(char)
            known = category[0] in "LNM" and not self.in_substring_script(char)
            self._word[char] = known
        return known


@dataclass(frozen=True)
class PhraseSet:
    """The compiled phrases. ``patterns``: the distinct normalised strings (automaton order);
    ``rules``: per pattern, the distinct rules it is confirmed with, as (rule, phrase id) pairs;
    ``phrases``: phrase id -> (pattern index, rule)."""

    settings: MatchSettings
    patterns: tuple[str, ...]
    rules: tuple[tuple[tuple[str, int], ...], ...]
    n_phrases: int

    @classmethod
    def build(
        cls, phrases: Sequence[tuple[str, str]], settings: MatchSettings | None = None, *, boundaries: bool = True
    ) -> "PhraseSet":
        """``phrases``: (text, language) pairs, one per phrase id (their position). Texts are
        normalised here; an empty one is a ``ValueError`` naming its position (the fact readers
        quarantine empty phrases before this). ``boundaries=False``: no boundary rules, every
        normalised phrase is kept as it is (surrounding spaces included) and matches as any
        substring."""
        settings = settings or MatchSettings()
        classes = CharClasses(settings.substring_scripts)
        index: dict[str, int] = {}
        rules: list[list[tuple[str, int]]] = []
        for pid, (text, lang) in enumerate(phrases):
            norm = normalise(text, settings)
            if boundaries:
                norm = norm.strip()
            if not norm.strip():
                raise ValueError(f"phrase {pid} ({text!r}, {lang}) is empty after normalisation")
            if not boundaries or (classes.in_substring_script(norm[0]) and classes.in_substring_script(norm[-1])):
                rule = "substring"
            elif lang in settings.start_only_languages:
                rule = "start"
            else:
                rule = "both"
            k = index.setdefault(norm, len(index))
            if k == len(rules):
                rules.append([])
            rules[k].append((rule, pid))
        return cls(settings, tuple(index), tuple(tuple(r) for r in rules), len(phrases))

    def match(self, texts: Sequence[str], *, normalised: bool = False) -> pl.DataFrame:
        """Distinct (``doc``: position in ``texts``, ``phrase``: phrase id) pairs of the phrases
        each text mentions."""
        if not texts or not self.patterns:
            return pl.DataFrame(schema=MATCH_SCHEMA)
        compiled = self.compiled
        if compiled is not None:
            doc, k, bits = compiled.find(texts, normalised=normalised)
            found = pl.DataFrame({"doc": doc, "k": k, "bits": bits}, schema={"doc": pl.UInt32, "k": pl.UInt32, "bits": pl.UInt8})
            return (
                found.join(self._table, on="k", how="inner")
                .filter((pl.col("bits") & pl.col("bit")) != 0)
                .select("doc", "phrases").explode("phrases").rename({"phrases": "phrase"}).cast(MATCH_SCHEMA)
            )
        docs = texts if normalised else normalise_many(texts, self.settings)
        candidates = self._candidates(docs).join(self._table, on="k", how="inner")
        classes = self._classes
        patterns = self.patterns
        if (candidates.get_column("rule") != "substring").any():
            keep = [
                rule == "substring" or _bounded(docs[doc], patterns[k], rule == "both", classes)
                for doc, k, rule in candidates.select("doc", "k", "rule").iter_rows()
            ]
            candidates = candidates.filter(pl.Series(keep, dtype=pl.Boolean))
        return candidates.select("doc", "phrases").explode("phrases").rename({"phrases": "phrase"}).cast(MATCH_SCHEMA)

    def _candidates(self, docs: Sequence[str]) -> pl.DataFrame:
        """Distinct (doc, k): the patterns occurring in each document as substrings."""
        database = self._hyperscan
        if database is None:
            found = pl.Series("m", docs, dtype=pl.String).str.extract_many(list(self.patterns), overlapping=True)
            index = pl.DataFrame({"m": self.patterns, "k": range(len(self.patterns))}, schema={"m": pl.String, "k": pl.UInt32})
            return (
                pl.DataFrame({"m": found.list.unique()}).with_row_index("doc").explode("m").drop_nulls()
                .join(index, on="m", how="inner").select("doc", "k")
            )
        doc_ids: list[int] = []
        ks: list[int] = []

        def on_match(k: int, start: int, end: int, flags: int, doc: int) -> None:
            doc_ids.append(doc)
            ks.append(k)

        for doc, text in enumerate(docs):
            database.scan(text.encode("utf-8"), match_event_handler=on_match, context=doc)
        return pl.DataFrame({"doc": doc_ids, "k": ks}, schema={"doc": pl.UInt32, "k": pl.UInt32})

    @cached_property
    def _hyperscan(self):
        """A Hyperscan literal database of the patterns (each reported once per document), or None
        when the ``hyperscan`` package is not installed (then polars ``str.extract_many`` finds them)."""
        if not self.settings.use_hyperscan:
            return None
        try:
            import hyperscan
        except ImportError:
            return None
        database = hyperscan.Database()
        database.compile(
            expressions=[p.encode("utf-8") for p in self.patterns], ids=list(range(len(self.patterns))),
            elements=len(self.patterns), flags=hyperscan.HS_FLAG_SINGLEMATCH, literal=True,
        )
        return database

    @cached_property
    def _table(self) -> pl.DataFrame:
        """pattern index -> rule -> the phrase ids it confirms (one boundary check serves them all)."""
        rows = [(k, rule, pid) for k, rules in enumerate(self.rules) for rule, pid in rules]
        return (
            pl.DataFrame(rows, schema={"k": pl.UInt32, "rule": pl.String, "phrase": pl.UInt32}, orient="row")
            .group_by("k", "rule", maintain_order=True)
            .agg(pl.col("phrase").alias("phrases"))
            .with_columns(pl.col("rule").replace_strict(automaton.RULE_BITS, return_dtype=pl.UInt8).alias("bit"))
        )

    @cached_property
    def compiled(self) -> "automaton.CompiledMatcher | None":
        """The compiled matcher of these phrases (:mod:`pipelines.core.automaton`), or None
        where the Python engine serves (``engine="python"``, numba missing, another
        normalisation)."""
        s = self.settings
        if s.engine != "compiled" or not automaton.available(s.normalisation):
            return None
        ranges = self._classes.ranges
        tables = automaton.norm_tables(s.normalisation, s.casefold, ranges)
        bits = [sum(automaton.RULE_BITS[r] for r in {rule for rule, _ in rules}) for rules in self.rules]
        return automaton.CompiledMatcher(self.patterns, bits, tables, partial(normalise, settings=s))

    @cached_property
    def _classes(self) -> "CharClasses":
        return CharClasses(self.settings.substring_scripts)


def _bounded(doc: str, phrase: str, both_ends: bool, classes: CharClasses) -> bool:
    """Whether ``phrase`` occurs in ``doc`` with a boundary before it (and after it)."""
    is_word = classes.is_word
    n = len(phrase)
    start = doc.find(phrase)
    while start >= 0:
        if start == 0 or not is_word(doc[start - 1]):
            end = start + n
            if not both_ends or end == len(doc) or not is_word(doc[end]):
                return True
        start = doc.find(phrase, start + 1)
    return False
