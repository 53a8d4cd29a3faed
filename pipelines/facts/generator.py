"""A seeded multilingual corpus with planted fact mentions whose document counts are known exactly.

:func:`generate_corpus` writes Dolma-style shards (``{"id", "text", "source", "metadata": {"lang",
"step"}}``, one JSON object a line) of pseudo-text in the script of each fact language, into which
it plants the subjects and objects of seeded random facts, and returns :class:`GeneratedCorpus`
with the true per-fact document counts (subject, object, both), in total and cumulative at
training-step checkpoints. Tests and ``bench/facts_count.py`` compare the matching engine
(:mod:`pipelines.core.phrases`) and the counting (:mod:`pipelines.facts.count`) against it.

Why the truth is exact. A document is a sequence of *filler* and *planted snippets*, and every
phrase occurrence (after NFKC + casefold) lies inside one snippet's planted form:

* A snippet is ``guard + form + guard``. Guard characters occur in no normalised phrase and are
  not word characters, so no occurrence crosses a guard, and the guard is a boundary exactly
  like the start or end of a string. Guards: quotes, ``[[ ]]``, CJK brackets, or Han/Hiragana
  filler characters (which also plants Latin phrases directly beside CJK characters, and
  Han/Kana phrases directly between Han/Kana characters).
* No phrase can *start* in filler. Filler of space-written scripts is pseudo-words separated by
  spaces and punctuation that start no phrase; a phrase needing a start boundary can only start
  at a word start, so it would have to begin with the whole word (its first run of word
  characters equal to the word) or, for a start-only (ko, tr) phrase made of word characters
  only, be a proper prefix of it: vocabulary words doing either are rejected. Phrases matching
  as substrings start with a Han/Kana/Thai character, which that filler has none of. Han and
  Hiragana filler (zh, ja) is made of characters that occur in no phrase at all.
* A planted form normalises exactly to its phrase (checked per variant: case, full-width and
  other compatibility characters, decomposed NFD), and the joints between pieces are between
  characters that NFKC does not compose, so normalising the document normalises each piece.

So the phrases a document mentions are the union, over its snippets, of the phrases that the
normalised planted form mentions on its own, computed once per distinct form by
:class:`ReferenceMatcher` (an independent small implementation of the matcher's documented
semantics: every substring looked up, boundaries checked directly). At generation start the
filler bank is also run through the engine, which must find nothing in it.

Documents of a batch are drawn with numpy from one seeded generator, so a seed gives the same
bytes, and a smaller ``target_bytes`` gives a prefix of the documents of a larger one. The truth
is counted as documents are written, per (checkpoint bucket, fact), so memory does not grow with
the corpus (about 250 MB; 1 GB of text in about a minute on one core).
"""

from __future__ import annotations

import bisect
import gzip
import io
import json
import random
import unicodedata
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import polars as pl
import zstandard

from pipelines.core.fileio import atomic_path, atomic_write_json, atomic_write_parquet, read_json
from pipelines.facts.count import COUNT_COLUMNS, phrase_table
from pipelines.core.phrases import CharClasses, MatchSettings, PhraseSet, normalise

FORMATS = ("jsonl.zst", "jsonl.gz", "parquet", "txt")
DOCS_PER_STEP = 32  # documents per training step: steps repeat, as in a batch
BATCH_DOCS = 2048
AUTO_CHECKPOINTS = 8
MANIFEST = "manifest.json"
TRUTH_FILE = "truth.parquet"
CHECKPOINT_TRUTH_FILE = "checkpoint_truth.parquet"
TRUTH_SCHEMA = pl.Schema({"fact_id": pl.Int64, **{c: pl.Int64 for c in COUNT_COLUMNS}})
CHECKPOINT_SCHEMA = pl.Schema({"fact_id": pl.Int64, "checkpoint": pl.Int64, **{c: pl.Int64 for c in COUNT_COLUMNS}})

# --------------------------------------------------------------------------- filler alphabets

# Space-written languages: consonants and vowels of pseudo-words (syllables C V [C]).
SYLLABLES: dict[str, tuple[str, str]] = {
    "en": ("bcdfghklmnprstvwy", "aeiou"),
    "fr": ("bcdfglmnprstv", "aeiouéèàû"),
    "es": ("bcdfglmnñprstv", "aeiouáéó"),
    "ca": ("bcdfglmnprstvx", "aeiouàèéò"),
    "tr": ("bcçdfgğhjklmnprsştvyz", "aeıioöuü"),
    "ru": ("бвгджзклмнпрстфхцчшщ", "аеиоуыэюяё"),
    "uk": ("бвгґджзклмнпрстфхцчшщ", "аеиіїоуєюя"),
    "el": ("βγδζθκλμνξπρστφχψ", "αεηιουωάέήίόύώ"),
    "ar": ("بتثجحخدذرزسشصضطظعغفقكلمنهي", "اوي"),
}
HANGUL = "ko"  # pseudo-words of Hangul syllables composed from jamo indices
DENSE = ("zh", "ja")  # no spaces: Han (and Hiragana) characters that occur in no phrase
COMMON_HAN = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学"
    "法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天"
    "政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者"
    "最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期"
    "根论运农指几九区强放决西被干做必战先回则任取据处理世车"
)
HIRAGANA = "".join(chr(c) for c in range(0x3042, 0x3094))
# Punctuation inside filler (must start no phrase), per script family.
FILLER_PUNCT = {"spaced": (",", "."), "ar": ("،", "."), "zh": ("，", "。"), "ja": ("、", "。")}
# Guards around planted forms: (open, close) pairs; "cjk" guards are filler characters.
SPACED_GUARDS = (("“", "”"), ("[[", "]]"))
DENSE_GUARDS = {"zh": (("《", "》"), ("「", "」")), "ja": (("「", "」"), ("『", "』"))}

LANG_WEIGHT_EN = 3.0  # English documents are this many times as common as each other language
CROSS_LANGUAGE = 0.1  # a planted fact is of another language than the document's
PLAIN_FORM = 0.6  # a planted form is the phrase as written (else another variant of it)
REPEAT = 0.15  # a planted side is mentioned twice in the document
FACTS_PER_DOC = ((0, 0.45), (1, 0.30), (2, 0.13), (3, 0.07), (4, 0.05))
MODES = ((0, 0.4), (1, 0.3), (2, 0.3))  # both sides, subject only, object only
VOCAB_SIZE = 3000
BANK_SENTENCES = 2000


# --------------------------------------------------------------------------- reference semantics


class ReferenceMatcher:
    """Which phrases a short string mentions, by the documented rules of
    :mod:`pipelines.core.phrases`, implemented independently of its engine (only the character
    classes, which define the rules, are shared): every substring of the (already normalised)
    string is looked up, and boundaries are checked on its neighbours. Quadratic in the string
    length: for planted forms, not documents."""

    def __init__(self, phrases: Sequence[tuple[str, str]], settings: MatchSettings) -> None:
        self.settings = settings
        classes = CharClasses(settings.substring_scripts)  # the definitions, shared with the engine
        self.in_substring_script, self.is_word = classes.in_substring_script, classes.is_word
        self.norms: list[str] = []
        self.rules: list[str] = []
        self.by_pattern: dict[str, list[int]] = {}
        for pid, (text, lang) in enumerate(phrases):
            norm = normalise(text, settings).strip()
            rule = self.rule_of(norm, lang)
            self.norms.append(norm)
            self.rules.append(rule)
            self.by_pattern.setdefault(norm, []).append(pid)
        self.lengths = sorted({len(p) for p in self.by_pattern})

    def rule_of(self, norm: str, lang: str) -> str:
        if self.in_substring_script(norm[0]) and self.in_substring_script(norm[-1]):
            return "substring"
        return "start" if lang in self.settings.start_only_languages else "both"

    def mentions(self, text: str) -> set[int]:
        """Phrase ids occurring in the normalised ``text``, whose ends count as boundaries."""
        found: set[int] = set()
        n = len(text)
        for i in range(n):
            start_ok = i == 0 or not self.is_word(text[i - 1])
            for length in self.lengths:
                j = i + length
                if j > n:
                    break
                pids = self.by_pattern.get(text[i:j])
                if pids:
                    end_ok = j == n or not self.is_word(text[j])
                    for pid in pids:
                        rule = self.rules[pid]
                        if rule == "substring" or (start_ok and (rule == "start" or end_ok)):
                            found.add(pid)
        return found


# --------------------------------------------------------------------------- planted forms


def _compat_map() -> dict[str, str]:
    """Normalised string (one or two characters) -> a compatibility character NFKC maps to it:
    CJK compatibility ideographs and Kangxi radicals, half-width Katakana and its sound marks,
    Arabic presentation forms, Latin ligatures. The lowest code point wins."""
    ranges = ((0x2F00, 0x2FD5), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F), (0xFF61, 0xFF9F),
              (0xFB50, 0xFDFF), (0xFE70, 0xFEFF), (0xFB00, 0xFB06))
    out: dict[str, str] = {}
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            char = chr(cp)
            target = unicodedata.normalize("NFKC", char)
            if target != char and 1 <= len(target) <= 2:
                out.setdefault(target, char)
    return out


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c) for c in text)


def _compat(text: str, table: dict[str, str]) -> str:
    out, i = [], 0
    while i < len(text):
        pair = text[i:i + 2]
        if len(pair) == 2 and pair in table:
            out.append(table[pair])
            i += 2
            continue
        char = text[i]
        if char in table:
            out.append(table[char])
        else:  # a voiced kana: base + sound mark, both half-width
            parts = unicodedata.normalize("NFD", char)
            out.append("".join(table[p] for p in parts) if len(parts) == 2 and all(p in table for p in parts) else char)
        i += 1
    return "".join(out)


def planted_forms(text: str, norm: str, settings: MatchSettings, table: dict[str, str]) -> list[tuple[str, str]]:
    """(variant kind, form) pairs of a phrase, the plain form first; only forms that normalise
    exactly to ``norm`` are kept (``str.upper`` of a dotless ı, say, does not)."""
    candidates = [
        ("plain", text.strip()),
        ("upper", text.strip().upper()),
        ("title", text.strip().title()),
        ("fullwidth", _fullwidth(text.strip())),
        ("compat", _compat(text.strip(), table)),
        ("nfd", unicodedata.normalize("NFD", text.strip())),
    ]
    seen: set[str] = set()
    out = []
    for kind, form in candidates:
        if form not in seen and normalise(form, settings) == norm:
            seen.add(form)
            out.append((kind, form))
    return out


# --------------------------------------------------------------------------- filler


@dataclass(frozen=True)
class FillerBank:
    """Per language: sentences split in two halves (a snippet goes between them), the joiner
    between pieces (a space or nothing) and the guards."""

    heads: tuple[str, ...]
    tails: tuple[str, ...]
    joiner: str
    guards: tuple[tuple[str, str], ...]
    cjk_guard_chars: str  # filler characters used as guards (Latin beside CJK, kana between kana)
    sentences: tuple[str, ...] = field(init=False)  # head + joiner + tail

    def __post_init__(self) -> None:
        object.__setattr__(self, "sentences", tuple(h + self.joiner + t for h, t in zip(self.heads, self.tails)))


def _word_start_conflicts(norms: Iterable[str], rules: Sequence[str], is_word) -> tuple[set[str], set[str]]:
    """(first word-character runs of phrases, start-only phrases made of word characters only)."""
    runs: set[str] = set()
    start_words: set[str] = set()
    for norm, rule in zip(norms, rules):
        k = 0
        while k < len(norm) and is_word(norm[k]):
            k += 1
        runs.add(norm[:k])
        if rule == "start" and k == len(norm):
            start_words.add(norm)
    return runs, start_words


def _safe_word(word: str, runs: set[str], start_words: set[str]) -> bool:
    if word in runs:
        return False
    return not any(word[:k] in start_words for k in range(1, len(word)))


def _pseudo_word(lang: str, rnd: random.Random) -> str:
    if lang == HANGUL:  # syllable = (initial * 21 + medial) * 28 + final, 40% with a final
        return "".join(
            chr(0xAC00 + (rnd.randrange(19) * 21 + rnd.randrange(21)) * 28 + (rnd.randrange(1, 28) if rnd.random() < 0.4 else 0))
            for _ in range(rnd.randint(1, 3))
        )
    consonants, vowels = SYLLABLES[lang]
    out = []
    for _ in range(rnd.choice((1, 2, 2, 3, 3, 4))):
        out.append(rnd.choice(consonants) + rnd.choice(vowels))
        if rnd.random() < 0.3:
            out.append(rnd.choice(consonants))
    return "".join(out)


def _spaced_bank(lang: str, rnd: random.Random, settings: MatchSettings, runs: set[str], start_words: set[str],
                 punct: tuple[str, str], guards, cjk_chars: str) -> FillerBank:
    vocab: list[str] = []
    seen: set[str] = set()
    for _ in range(VOCAB_SIZE * 20):
        if len(vocab) == VOCAB_SIZE:
            break
        word = _pseudo_word(lang, rnd)
        if word in seen or normalise(word, settings) != word or not _safe_word(word, runs, start_words):
            continue
        seen.add(word)
        vocab.append(word)
    if len(vocab) < VOCAB_SIZE // 2:
        raise RuntimeError(f"filler for {lang}: only {len(vocab)} safe pseudo-words; the phrases cover its syllables")
    comma, stop = punct
    heads, tails = [], []
    for _ in range(BANK_SENTENCES):
        words = rnd.choices(vocab, k=rnd.randint(4, 16))
        capital = words[0][:1].upper() + words[0][1:]
        if normalise(capital, settings) == words[0]:
            words[0] = capital
        if len(words) > 6 and rnd.random() < 0.5:
            words[rnd.randint(2, len(words) - 3)] += comma
        cut = rnd.randint(1, len(words) - 1)
        heads.append(" ".join(words[:cut]))
        tails.append(" ".join(words[cut:]) + stop)
    return FillerBank(tuple(heads), tuple(tails), " ", guards, cjk_chars)


def _dense_bank(lang: str, rnd: random.Random, chars: str, punct: tuple[str, str], guards) -> FillerBank:
    comma, stop = punct
    han = "".join(c for c in chars if not ("\u3041" <= c <= "\u3096"))
    kana = "".join(c for c in chars if "\u3041" <= c <= "\u3096")
    heads, tails = [], []
    for _ in range(BANK_SENTENCES):
        if lang == "ja":  # alternating runs of kanji and hiragana
            sentence = "".join("".join(rnd.choices(han if k % 2 == 0 else kana, k=rnd.randint(1, 3))) for k in range(rnd.randint(4, 13)))
        else:
            sentence = "".join(rnd.choices(han, k=rnd.randint(8, 29)))
        if len(sentence) > 10 and rnd.random() < 0.5:
            at = rnd.randint(3, len(sentence) - 4)
            sentence = sentence[:at] + comma + sentence[at:]
        cut = rnd.randint(1, len(sentence) - 1)
        heads.append(sentence[:cut])
        tails.append(sentence[cut:] + stop)
    return FillerBank(tuple(heads), tuple(tails), "", guards, han if lang == "zh" else chars)


def _safe_chars(candidates: Iterable[str], phrase_chars: set[str], is_word, settings: MatchSettings) -> str:
    """Characters in no normalised phrase, not word characters, unchanged by normalisation."""
    return "".join(
        c for c in dict.fromkeys(candidates)
        if c not in phrase_chars and not is_word(c) and normalise(c, settings) == c
    )


def build_filler(langs: Sequence[str], analysis: PhraseAnalysis, seed: int) -> dict[str, FillerBank]:
    """A :class:`FillerBank` per language, each checked against the phrases (module docstring)."""
    rnd = random.Random(seed)
    reference = analysis.reference
    settings = reference.settings
    phrase_chars, first_chars = analysis.phrase_chars, analysis.first_chars
    runs, start_words = analysis.word_runs, analysis.start_words
    han = _safe_chars(COMMON_HAN, phrase_chars, reference.is_word, settings)
    kana = _safe_chars(HIRAGANA, phrase_chars, reference.is_word, settings)
    if len(han) < 40 or len(kana) < 10:
        raise RuntimeError(f"too few Han ({len(han)}) or Hiragana ({len(kana)}) characters occur in no phrase")

    def guards(pairs) -> tuple[tuple[str, str], ...]:
        safe = _safe_chars("".join(o + c for o, c in pairs), phrase_chars, reference.is_word, settings)
        ok = tuple((o, c) for o, c in pairs if all(ch in safe for ch in o + c))
        if not ok:
            raise RuntimeError(f"every guard of {pairs} occurs in some phrase")
        return ok

    def punct(key: str) -> tuple[str, str]:
        marks = FILLER_PUNCT[key]  # checked as normalised: a full-width comma is a comma there
        bad = [m for m in marks if any(c in first_chars or reference.is_word(c) for c in normalise(m, settings))]
        if bad:
            raise RuntimeError(f"filler punctuation {bad} can start a phrase")
        return marks

    banks = {}
    for lang in langs:
        if lang in DENSE:
            chars = han if lang == "zh" else han + kana
            banks[lang] = _dense_bank(lang, rnd, chars, punct(lang), guards(DENSE_GUARDS[lang]))
        elif lang in SYLLABLES or lang == HANGUL:
            banks[lang] = _spaced_bank(lang, rnd, settings, runs, start_words, punct("ar" if lang == "ar" else "spaced"),
                                       guards(SPACED_GUARDS), han)
        else:
            raise ValueError(f"no filler alphabet for language {lang!r}; known: {', '.join([*SYLLABLES, HANGUL, *DENSE])}")
    return banks


def check_filler_with_engine(banks: dict[str, FillerBank], engine: PhraseSet) -> None:
    """The engine must find no phrase in any filler sentence (a ``RuntimeError`` otherwise: the
    construction in the module docstring would be wrong)."""
    sentences = [s for b in banks.values() for s in b.sentences]
    guards = [b.cjk_guard_chars for b in banks.values()]
    found = engine.match(sentences + guards)
    if found.height:
        doc, pid = found.row(0)
        text = (sentences + guards)[doc]
        raise RuntimeError(f"filler text mentions phrase {pid}: {text[:80]!r}")


# --------------------------------------------------------------------------- the corpus


@dataclass
class GeneratedCorpus:
    """What :func:`generate_corpus` wrote and the exact truth.

    ``files``: per format, the shard paths in corpus order. ``truth``: per fact (every fact of
    the input, zeros included) ``subject_docs``, ``object_docs``, ``cooccurrence_docs``.
    ``checkpoint_truth``: the same counts over the documents whose step is at most each
    checkpoint (``fact_id``, ``checkpoint``, counts; empty without steps). ``text_bytes``: UTF-8
    bytes of the documents' texts. ``plants``: how many snippets of each variant kind and guard."""

    out_dir: Path
    seed: int
    files: dict[str, list[Path]]
    n_docs: int
    text_bytes: int
    checkpoints: tuple[int, ...]
    truth: pl.DataFrame
    checkpoint_truth: pl.DataFrame
    plants: dict[str, int] = field(default_factory=dict)


def load_generated(out_dir: Path | str) -> GeneratedCorpus:
    """A corpus written earlier by :func:`generate_corpus` (its manifest and truth files)."""
    out_dir = Path(out_dir)
    manifest = read_json(out_dir / MANIFEST)
    return GeneratedCorpus(
        out_dir=out_dir,
        seed=manifest["seed"],
        files={fmt: [out_dir / name for name in names] for fmt, names in manifest["files"].items()},
        n_docs=manifest["n_docs"],
        text_bytes=manifest["text_bytes"],
        checkpoints=tuple(manifest["checkpoints"]),
        truth=pl.read_parquet(out_dir / TRUTH_FILE),
        checkpoint_truth=pl.read_parquet(out_dir / CHECKPOINT_TRUTH_FILE),
        plants=manifest["plants"],
    )


class _ShardWriters:
    """The open files of the current shard, one per format; each is renamed into place when
    the shard is closed."""

    def __init__(self, out_dir: Path, formats: Sequence[str]) -> None:
        self.out_dir, self.formats = out_dir, tuple(formats)
        self.files: dict[str, list[Path]] = {f: [] for f in self.formats}
        self.stack: ExitStack | None = None
        self.bytes = 0

    def open(self) -> None:
        index = len(next(iter(self.files.values())))
        self.stack = ExitStack()
        self.sinks: dict[str, Any] = {}
        for fmt in self.formats:
            final = self.out_dir / f"shard-{index:05d}.{fmt}"
            tmp = self.stack.enter_context(atomic_path(final))
            self.files[fmt].append(final)
            if fmt == "jsonl.zst":
                sink = zstandard.ZstdCompressor(level=3).stream_writer(open(tmp, "wb"))
            elif fmt == "jsonl.gz":
                sink = gzip.open(tmp, "wb", compresslevel=1)
            elif fmt == "txt":
                sink = open(tmp, "wb")
            else:
                sink = _ParquetSink(tmp)
            self.sinks[fmt] = sink

    def write(self, lines: list[str], ids: list[str], texts: list[str], langs: list[str], steps: list[int] | None) -> None:
        if self.stack is None:
            self.open()
        for fmt, sink in self.sinks.items():
            if fmt.startswith("jsonl"):
                sink.write("".join(lines).encode("utf-8"))
            elif fmt == "txt":
                sink.write(("\n".join(texts) + "\n").encode("utf-8"))
            else:
                sink.write(ids, texts, langs, steps)

    def close(self) -> None:
        self.bytes = 0
        if self.stack is None:
            return
        for sink in self.sinks.values():
            sink.close()
        self.stack.close()
        self.stack = None


class _ParquetSink:
    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.pq, self.path, self.writer = pq, path, None

    def write(self, ids, texts, langs, steps) -> None:
        import pyarrow as pa

        columns = {"id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.large_string()), "lang": pa.array(langs, pa.string())}
        if steps is not None:
            columns["step"] = pa.array(steps, pa.int64())
        table = pa.table(columns)
        if self.writer is None:
            self.writer = self.pq.ParquetWriter(self.path, table.schema, compression="zstd", use_dictionary=["lang"])
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass(frozen=True)
class PhraseAnalysis:
    """What does not depend on the seed: per phrase id (:func:`pipelines.facts.count.phrase_table`
    order) its planted forms and the ``fact position << 1 | side`` codes its normalised form mentions;
    per fact position the phrase ids of each side; the constraints on filler; the engine."""

    reference: ReferenceMatcher
    phrases: list[tuple[str, str]]
    side_pids: list[tuple[list[int], list[int]]]
    forms: list[list[tuple[str, str]]]
    codes: list[tuple[int, ...]]
    phrase_chars: set[str]
    first_chars: set[str]
    word_runs: set[str]
    start_words: set[str]
    engine: PhraseSet


_ANALYSES: dict[tuple, PhraseAnalysis] = {}  # the last few, per process: tests generate many corpora


def analyse_phrases(facts: pl.DataFrame, settings: MatchSettings) -> PhraseAnalysis:
    """:class:`PhraseAnalysis` of ``facts`` (sorted by fact_id), cached per content and settings."""
    key = (facts.height, int(facts.hash_rows(seed=0).sum()), settings.model_dump_json())
    if key in _ANALYSES:
        return _ANALYSES[key]
    table = phrase_table(facts)
    phrases = list(table.select("text", "lang").iter_rows())
    reference = ReferenceMatcher(phrases, settings)
    fact_of_pid = table["fact_id"].to_list()
    side_of_pid = table["side"].to_list()
    compat = _compat_map()

    position = {int(f): k for k, f in enumerate(facts["fact_id"].to_list())}
    side_pids: list[tuple[list[int], list[int]]] = [([], []) for _ in range(len(position))]
    for pid, (fid, side) in enumerate(zip(fact_of_pid, side_of_pid)):
        side_pids[position[fid]][side].append(pid)

    forms: list[list[tuple[str, str]]] = []
    codes: list[tuple[int, ...]] = []
    mentions_of: dict[str, tuple[int, ...]] = {}
    for pid, (text, _) in enumerate(phrases):
        norm = reference.norms[pid]
        forms.append(planted_forms(text, norm, settings, compat))
        if norm not in mentions_of:
            mentions_of[norm] = tuple(sorted({position[fact_of_pid[q]] << 1 | side_of_pid[q] for q in reference.mentions(norm)}))
        codes.append(mentions_of[norm])
    runs, start_words = _word_start_conflicts(reference.norms, reference.rules, reference.is_word)
    analysis = PhraseAnalysis(
        reference, phrases, side_pids, forms, codes,
        phrase_chars={c for norm in reference.norms for c in norm}, first_chars={norm[0] for norm in reference.norms},
        word_runs=runs, start_words=start_words, engine=PhraseSet.build(phrases, settings),
    )
    while len(_ANALYSES) >= 2:
        _ANALYSES.pop(next(iter(_ANALYSES)))
    _ANALYSES[key] = analysis
    return analysis


@dataclass(frozen=True)
class _Plan:
    """The phrase analysis, and per language its facts (positions) in a seeded Zipf order."""

    analysis: PhraseAnalysis
    fact_ids: np.ndarray
    facts_of_lang: dict[str, np.ndarray]
    cdf_of_lang: dict[str, np.ndarray]


def _plan(facts: pl.DataFrame, settings: MatchSettings, rng: np.random.Generator) -> _Plan:
    langs = np.array(facts["lang"].to_list())
    facts_of_lang: dict[str, np.ndarray] = {}
    cdf_of_lang: dict[str, np.ndarray] = {}
    for lang in sorted(set(langs.tolist())):
        members = np.flatnonzero(langs == lang)
        facts_of_lang[lang] = rng.permutation(members)
        weights = 1.0 / np.arange(1, len(members) + 1) ** 1.05
        cdf_of_lang[lang] = np.cumsum(weights) / weights.sum()
    return _Plan(analyse_phrases(facts, settings), facts["fact_id"].cast(pl.Int64).to_numpy(), facts_of_lang, cdf_of_lang)


def _choose(rng: np.random.Generator, table: Sequence[tuple[int, float]], size: int) -> np.ndarray:
    values, probs = zip(*table)
    return np.asarray(values)[rng.choice(len(values), size=size, p=probs)]


def generate_corpus(
    facts: pl.DataFrame,
    out_dir: Path | str,
    *,
    target_bytes: int,
    seed: int,
    shard_bytes: int = 256 * 1024 * 1024,
    formats: Sequence[str] = ("jsonl.zst",),
    steps: bool = True,
    checkpoints: Sequence[int] | None = None,
    settings: MatchSettings | None = None,
) -> GeneratedCorpus:
    """Write about ``target_bytes`` of document text (UTF-8) as shards of at most about
    ``shard_bytes`` into ``out_dir``, in each of ``formats`` (:data:`FORMATS`; parquet has the
    columns id, text, lang, step; txt is one document a line), with the manifest and the truth
    (``truth.parquet``, ``checkpoint_truth.parquet``).

    ``facts``: a facts frame (:data:`schemas.facts.FACTS`: fact_id, lang, subject, object,
    subject_aliases, object_aliases, ...). ``steps``: give every document ``metadata.step``
    (document number // :data:`DOCS_PER_STEP`). ``checkpoints``: steps for the cumulative truth
    (default: the steps at which the text reaches 1/8, 2/8, ... 8/8 of ``target_bytes``; the
    last is the corpus's last step). Memory does not grow with the corpus. A language
    without a filler alphabet, or phrases leaving no safe filler, is a ``ValueError`` /
    ``RuntimeError``."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown format(s) {unknown or formats}; choose from {', '.join(FORMATS)}")
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    settings = settings or MatchSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = facts.sort("fact_id")
    rng = np.random.Generator(np.random.PCG64(seed))

    plan = _plan(facts, settings, rng)
    doc_langs = sorted(plan.facts_of_lang)
    banks = build_filler(doc_langs, plan.analysis, seed)
    check_filler_with_engine(banks, plan.analysis.engine)
    lang_p = np.array([LANG_WEIGHT_EN if lang == "en" else 1.0 for lang in doc_langs])
    lang_p /= lang_p.sum()

    writers = _ShardWriters(out_dir, formats)
    truth = _TruthCounter(len(plan.fact_ids), checkpoints if steps else (), target_bytes)
    plants: dict[str, int] = {}
    n_docs = text_bytes = 0
    try:
        while text_bytes < target_bytes:
            n_docs, text_bytes = _write_batch(
                rng, plan, banks, doc_langs, lang_p, writers, shard_bytes, steps, n_docs, text_bytes, target_bytes,
                truth, plants, seed,
            )
    finally:
        writers.close()

    checkpoints = truth.checkpoints
    totals, checkpoint_truth = truth.frames(plan.fact_ids)
    atomic_write_parquet(totals, out_dir / TRUTH_FILE)
    atomic_write_parquet(checkpoint_truth, out_dir / CHECKPOINT_TRUTH_FILE)
    atomic_write_json(out_dir / MANIFEST, {
        "seed": seed, "target_bytes": target_bytes, "n_docs": n_docs, "text_bytes": text_bytes,
        "docs_per_step": DOCS_PER_STEP if steps else None, "checkpoints": list(checkpoints),
        "files": {fmt: [p.name for p in paths] for fmt, paths in writers.files.items()},
        "plants": plants, "facts": facts.height, "phrases": len(plan.analysis.phrases),
    })
    return GeneratedCorpus(out_dir, seed, writers.files, n_docs, text_bytes, checkpoints, totals, checkpoint_truth, plants)


def _write_batch(rng, plan: _Plan, banks, doc_langs, lang_p, writers: _ShardWriters, shard_bytes: int, steps: bool,
                 n_docs: int, text_bytes: int, target_bytes: int, truth: _TruthCounter,
                 plants: dict[str, int], seed: int) -> tuple[int, int]:
    """Draw and write one batch of documents; returns the new document and byte totals."""
    b = BATCH_DOCS
    lang_of = rng.choice(len(doc_langs), size=b, p=lang_p)
    n_sentences = np.clip(rng.lognormal(np.log(16), 0.8, size=b), 1, 400).astype(np.int64)
    sentence_ids = rng.integers(BANK_SENTENCES, size=int(n_sentences.sum()))
    n_facts = _choose(rng, FACTS_PER_DOC, b)

    # One row per planted fact, then per planted side.
    fact_doc = np.repeat(np.arange(b), n_facts)
    fact_lang = lang_of[fact_doc].copy()
    other = rng.random(len(fact_doc)) < CROSS_LANGUAGE
    fact_lang[other] = rng.integers(len(doc_langs), size=int(other.sum()))
    u = rng.random(len(fact_doc))
    fact_pos = np.empty(len(fact_doc), dtype=np.int64)
    for k, lang in enumerate(doc_langs):
        sel = fact_lang == k
        ranks = np.searchsorted(plan.cdf_of_lang[lang], u[sel], side="right").clip(max=len(plan.cdf_of_lang[lang]) - 1)
        fact_pos[sel] = plan.facts_of_lang[lang][ranks]
    mode = _choose(rng, MODES, len(fact_doc))
    side_doc = np.concatenate([fact_doc[mode != 2], fact_doc[mode != 1]])
    side_fact = np.concatenate([fact_pos[mode != 2], fact_pos[mode != 1]])
    side_side = np.concatenate([np.zeros(int((mode != 2).sum()), np.int64), np.ones(int((mode != 1).sum()), np.int64)])
    repeat = rng.random(len(side_doc)) < REPEAT
    side_doc = np.concatenate([side_doc, side_doc[repeat]])
    side_fact = np.concatenate([side_fact, side_fact[repeat]])
    side_side = np.concatenate([side_side, side_side[repeat]])
    order = np.argsort(side_doc, kind="stable")
    side_doc, side_fact, side_side = side_doc[order], side_fact[order], side_side[order]
    u_form, u_variant, u_guard, u_place = (rng.random(len(side_doc)) for _ in range(4))
    ends = np.searchsorted(side_doc, np.arange(b), side="right")
    starts = np.concatenate([[0], ends[:-1]])
    first_sentence = np.concatenate([[0], np.cumsum(n_sentences)[:-1]])

    analysis = plan.analysis
    lines: list[str] = []
    ids: list[str] = []
    texts: list[str] = []
    langs: list[str] = []
    step_list: list[int] = []
    lang_of, n_sentences, starts, ends = lang_of.tolist(), n_sentences.tolist(), starts.tolist(), ends.tolist()
    side_fact, side_side = side_fact.tolist(), side_side.tolist()
    u_form, u_variant, u_guard, u_place = u_form.tolist(), u_variant.tolist(), u_guard.tolist(), u_place.tolist()
    for d in range(b):
        lang = doc_langs[lang_of[d]]
        bank = banks[lang]
        n = n_sentences[d]
        picks = sentence_ids[first_sentence[d]:first_sentence[d] + n].tolist()
        sentences = [bank.sentences[i] for i in picks]
        doc_id = n_docs
        codes: set[int] = set()
        placed: dict[int, list[str]] = {}
        for r in range(starts[d], ends[d]):
            pids = analysis.side_pids[side_fact[r]][side_side[r]]
            pid = pids[int(u_form[r] * len(pids))]
            forms = analysis.forms[pid]
            if u_variant[r] < PLAIN_FORM or len(forms) == 1:
                kind, form = forms[0]
            else:
                kind, form = forms[1 + int((u_variant[r] - PLAIN_FORM) / (1 - PLAIN_FORM) * (len(forms) - 1))]
            snippet, guard = _guarded(form, bank, u_guard[r])
            placed.setdefault(int(u_place[r] * n), []).append(snippet)
            codes.update(analysis.codes[pid])
            plants[kind] = plants.get(kind, 0) + 1
            plants[guard] = plants.get(guard, 0) + 1
        joiner = bank.joiner
        for at, snippets in placed.items():
            i = picks[at]
            sentences[at] = bank.heads[i] + joiner + joiner.join(snippets) + joiner + bank.tails[i]
        text = joiner.join(sentences)
        metadata: dict[str, Any] = {"lang": lang}
        if steps:
            metadata["step"] = doc_id // DOCS_PER_STEP
            step_list.append(doc_id // DOCS_PER_STEP)
        ident = f"synth-{seed}-{doc_id:09d}"
        lines.append(json.dumps({"id": ident, "text": text, "source": "synthetic-facts", "metadata": metadata}, ensure_ascii=False) + "\n")
        ids.append(ident)
        texts.append(text)
        langs.append(lang)
        size = len(text.encode("utf-8"))
        text_bytes += size
        truth.add(doc_id // DOCS_PER_STEP, text_bytes, codes)
        writers.bytes += size
        n_docs += 1
        if writers.bytes >= shard_bytes or text_bytes >= target_bytes:
            writers.write(lines, ids, texts, langs, step_list if steps else None)
            writers.close()
            lines, ids, texts, langs, step_list = [], [], [], [], []
            if text_bytes >= target_bytes:
                break
    if lines:
        writers.write(lines, ids, texts, langs, step_list if steps else None)
    truth.flush()
    return n_docs, text_bytes


def _guarded(form: str, bank: FillerBank, u: float) -> tuple[str, str]:
    """The form between guards, and the guard's name: 20% between filler CJK characters (in a
    zh/ja document: embedded in the running text), else one of the bank's bracket pairs."""
    if u < 0.2:
        chars = bank.cjk_guard_chars
        k = int(u * 5 * len(chars))  # u < 0.2: a position in chars
        return chars[k] + form + chars[(k * 7 + 3) % len(chars)], "guard_cjk"
    left, right = bank.guards[int((u - 0.2) / 0.8 * len(bank.guards))]
    return left + form + right, f"guard_{left}{right}"


class _TruthCounter:
    """Per (checkpoint bucket, fact position): documents mentioning the subject, the object,
    both, in memory independent of the corpus size. Bucket ``b`` holds the documents whose step
    is in ``(checkpoints[b - 1], checkpoints[b]]``, bucket ``len(checkpoints)`` those after the
    last (as in :mod:`pipelines.facts.count`). ``checkpoints=None``: checkpoint ``k`` of
    :data:`AUTO_CHECKPOINTS` is the step of the document that brings the text to ``k / 8`` of
    ``target_bytes`` (so the last one is the last document's step); a document's bucket is known
    when it is written: the next checkpoint to be fixed is at least its step."""

    def __init__(self, n_facts: int, checkpoints: Sequence[int] | None, target_bytes: int) -> None:
        self.given = None if checkpoints is None else tuple(int(c) for c in checkpoints)
        if self.given is not None and list(self.given) != sorted(set(self.given)):
            raise ValueError(f"checkpoints must be strictly increasing steps, got {list(self.given)}")
        self.fixed: list[int] = list(self.given or ())
        self.target, self.crossed = target_bytes, 0
        n_buckets = (AUTO_CHECKPOINTS if self.given is None else len(self.given)) + 1
        self.counts = np.zeros((n_buckets, n_facts, 3), dtype=np.int64)
        self._pending: tuple[list[int], list[int], list[int]] = ([], [], [])

    @property
    def checkpoints(self) -> tuple[int, ...]:
        return tuple(self.fixed)

    def add(self, step: int, text_bytes: int, codes: set[int]) -> None:
        """A document at ``step``, bringing the text to ``text_bytes``, mentioning ``codes``."""
        if self.given is None:
            while self.crossed < AUTO_CHECKPOINTS and text_bytes * AUTO_CHECKPOINTS >= (self.crossed + 1) * self.target:
                self.crossed += 1
                if not self.fixed or self.fixed[-1] != step:
                    self.fixed.append(step)
        if not codes:
            return
        bucket = bisect.bisect_left(self.fixed, step)
        flags: dict[int, int] = {}
        for code in codes:
            flags[code >> 1] = flags.get(code >> 1, 0) | (1 << (code & 1))
        buckets, facts, bits = self._pending
        buckets.extend([bucket] * len(flags))
        facts.extend(flags)
        bits.extend(flags.values())

    def flush(self) -> None:
        buckets, facts, bits = (np.asarray(x, dtype=np.int64) for x in self._pending)
        for column, hit in enumerate((bits & 1, bits >> 1, bits == 3)):
            np.add.at(self.counts, (buckets, facts, column), hit.astype(np.int64))
        self._pending = ([], [], [])

    def frames(self, fact_ids: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Totals per fact and cumulative counts per checkpoint (the pipeline's schemas)."""
        self.flush()

        def frame(counts: np.ndarray) -> pl.DataFrame:
            return pl.DataFrame({"fact_id": fact_ids.astype(np.int64),
                                 **{c: counts[:, k] for k, c in enumerate(COUNT_COLUMNS)}}, schema=TRUTH_SCHEMA)

        totals = frame(self.counts.sum(axis=0))
        cumulative = np.cumsum(self.counts, axis=0)
        at = [frame(cumulative[b]).with_columns(pl.lit(c, pl.Int64).alias("checkpoint")).select(CHECKPOINT_SCHEMA.names())
              for b, c in enumerate(self.fixed)]
        checkpoint_truth = pl.concat(at).sort("fact_id", "checkpoint") if at else pl.DataFrame(schema=CHECKPOINT_SCHEMA)
        return totals.sort("fact_id"), checkpoint_truth


def iter_documents(path: Path | str) -> Iterator[tuple[str, int | None]]:
    """(text, step) of each document of a generated shard of any of :data:`FORMATS`, streamed (for
    tests and the benchmark; the pipeline reads corpora with its own readers). ``step`` is None
    where the shard has none (txt)."""
    path = Path(path)
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            texts = batch.column("text").to_pylist()
            steps = batch.column("step").to_pylist() if "step" in batch.schema.names else [None] * len(texts)
            yield from zip(texts, steps)
        return
    if name.endswith(".txt"):
        with open(path, encoding="utf-8", newline="\n") as f:
            for line in f:
                yield line[:-1], None
        return
    if name.endswith(".jsonl.zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    elif name.endswith(".jsonl.gz"):
        raw = gzip.open(path, "rb")
    else:
        raise ValueError(f"{path}: not a generated shard ({', '.join(FORMATS)})")
    with io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as lines:
        for line in lines:
            doc = json.loads(line)
            yield doc["text"], doc["metadata"].get("step")
