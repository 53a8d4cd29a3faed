"""Rule-based strategy suggestions: documented cue patterns, a score per strategy.

The output is a *suggestion* recorded with its source (``suggestion_source``), never a human
label: people label strategies in the annotation layer. Each strategy's score is
``1 - 0.5 ** hits`` where ``hits`` counts its cues in the utterance (one cue 0.5, two 0.75, ...).
A strategy is suggested when its score reaches ``sad.suggester.threshold``; Statement is also
suggested when no other strategy is, since every argument at least states a claim.

Cues (case-insensitive, whole words; word boundaries are ASCII):

* Question: a question mark; a sentence opened by an interrogative ("why", "how", "what",
  "would you", "do you", "isn't it", ...).
* Causality: because, since, therefore, thus, hence, consequently, as a result, due to,
  leads/led to, causes/caused, results in, so that, which means, that's why, this is why.
* Example: for example, for instance, e.g., such as, in my experience, case in point,
  to illustrate, take the case, consider the.
* Analogy: is/are/just/much like, it's like, similar to, similarly, analogous, analogy,
  just as, in the same way, akin to, comparable to, the equivalent of, imagine if.
* Statement: I think, I believe, in my opinion/view, clearly, obviously, the fact is, it is,
  there is/are, should, must.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from pipelines.core.cleaning import int32_series, space_len, string_buffers
from pipelines.core.jit import njit, numba
from pipelines.core.step import StepResult
from pipelines.sad.settings import SadSettings
from schemas.sad import STRATEGIES

SOURCE = "rules:sad-cues-v1"

# The cues as ordered phrase lists: the order is the regex alternation's (the first phrase that
# matches at a position wins; "leads to" before "lead to"). CUES below are built from them.
INTERROGATIVES = (
    "why", "how", "what", "who", "which", "where", "when", "would you", "do you", "don't you",
    "isn't it", "aren't you", "can you", "could you", "should we",
)
PHRASES: dict[str, tuple[str, ...]] = {
    "Causality": (
        "because", "since", "therefore", "thus", "hence", "consequently", "as a result", "due to",
        "leads to", "lead to", "led to", "cause", "causes", "caused", "causing", "results in",
        "result in", "so that", "which means", "that's why", "this is why",
    ),
    "Example": (
        "for example", "for instance", "e.g.", "such as", "in my experience", "case in point",
        "to illustrate", "take the case", "consider the",
    ),
    "Analogy": (
        "is like", "are like", "just like", "much like", "it's like", "similar to", "similarly",
        "analogous", "analogy", "just as", "in the same way", "akin to", "comparable to",
        "the equivalent of", "imagine if",
    ),
    "Statement": (
        "i think", "i believe", "in my opinion", "in my view", "clearly", "obviously", "the fact is",
        "it is", "there is", "there are", "should", "must",
    ),
}
# Example's phrases need a word boundary before them only ("e.g." ends in a dot)
ENDS_AT_WORD_BOUNDARY = {"Causality": True, "Example": False, "Analogy": True, "Statement": True}


def _alternatives(phrases: tuple[str, ...]) -> str:
    return "|".join(re.escape(p).replace("\\ ", " ") for p in phrases)


_SENTENCE_START = r"(?:^|[.!?]\s+)"
_INTERROGATIVES = "(?:" + _alternatives(INTERROGATIVES) + r")\b"
CUES: dict[str, str] = {
    "Question": r"\?|" + _SENTENCE_START + _INTERROGATIVES,
    **{
        name: r"\b(?:" + _alternatives(phrases) + ")" + (r"\b" if ENDS_AT_WORD_BOUNDARY[name] else "")
        for name, phrases in PHRASES.items()
    },
}


def _ascii_boundaries(pattern: str) -> str:
    return pattern.replace(r"\b", r"(?-u:\b)")


# The Question cue counted in three parts that add up to its count (tests/pipelines/sad/
# test_strategies.py checks this on fuzzed texts): question marks; an interrogative opening the
# text; one after "." or "!" and whitespace. Matches of the parts cannot overlap (the
# interrogatives hold no punctuation), and where the whole pattern sees "?" it counts the mark,
# never an interrogative after it. Apart, each part has a literal the regex engine can search
# for; the whole pattern's "^|" made it try every sentence end: 19-22 ms per part against
# 103 ms for 39 MB of utterances. The compiled count (_count_cues) follows the same parts.


def _question_count(lower: pl.Expr) -> pl.Expr:
    return (
        lower.str.count_matches("?", literal=True)
        + lower.str.count_matches(_ascii_boundaries("^" + _INTERROGATIVES))
        + lower.str.count_matches(_ascii_boundaries(r"[.!]\s+" + _INTERROGATIVES))
    )


def _cue_counts_polars(lower: pl.Expr) -> dict[str, pl.Expr]:
    counts = {n: lower.str.count_matches(_ascii_boundaries(CUES[n])) for n in STRATEGIES if n != "Question"}
    counts["Question"] = _question_count(lower)
    return counts


# --------------------------------------------------------------------------- compiled count


def _trie(phrases: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(next node by node and byte, 0 = no way on; the phrase ending at each node, or -1)."""
    step: list[np.ndarray] = [np.zeros(256, dtype=np.int32)]
    ends = [-1]
    for k, phrase in enumerate(phrases):
        node = 0
        for b in phrase.encode():
            if step[node][b] == 0:
                step.append(np.zeros(256, dtype=np.int32))
                ends.append(-1)
                step[node][b] = len(step) - 1
            node = int(step[node][b])
        ends[node] = k
    return np.stack(step), np.array(ends, dtype=np.int64)


_WORD = np.zeros(256, dtype=np.bool_)  # ASCII word characters, what (?-u:\b) looks at
_WORD[[ord(c) for c in "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"]] = True
_ORDER = [n for n in STRATEGIES if n != "Question"]
_PHRASES = [p for n in _ORDER for p in PHRASES[n]]
_PHRASE_LIST = np.array([k for k, n in enumerate(_ORDER) for _ in PHRASES[n]], dtype=np.int64)
_PHRASE_STEP, _PHRASE_END = _trie(_PHRASES)
_ASK_STEP, _ASK_END = _trie(list(INTERROGATIVES))
_RIGHT_BOUNDARY = np.array([ENDS_AT_WORD_BOUNDARY[n] for n in _ORDER], dtype=np.bool_)
# _count_cues looks for phrases at word starts only, as the leading \b allows
if not all(p[:1].isascii() and p[:1].isalpha() for p in (*_PHRASES, *INTERROGATIVES)):
    raise RuntimeError("every cue phrase must open with an ASCII letter: revisit _count_cues")


@njit(cache=True, nogil=True, inline="always")
def _rust_space(b, p, end):
    """Length of the character at ``b[p]`` if Rust's ``\\s`` matches it (Unicode White_Space), else 0."""
    c = b[p]
    if c < 0x80:
        return 1 if (c == 32 or 9 <= c <= 13) else 0
    return space_len(b, p, end)


@njit(cache=True, nogil=True, inline="always")
def _asks_at(data, p, end, step, ends, word):
    """Whether an interrogative, then a word boundary, starts at ``data[p]``."""
    node = 0
    while p < end:
        node = step[node, data[p]]
        if node == 0:
            return False
        p += 1
        if ends[node] >= 0 and (p == end or not word[data[p]]):
            return True
    return False


@njit(cache=True, nogil=True)
def _count_cues(data, offsets, step, ends, plist, right, ask_step, ask_ends, word, counts):
    """Per text ``i``: ``counts[0, i]`` the Question cue (its three parts), ``counts[1 + k, i]``
    phrase list ``k``, counted as the regex counts: leftmost first, the first phrase in the
    list's order that matches, no overlaps. Phrases are found by walking a trie from each word
    start, so a position costs a step or two whatever the number of phrases."""
    n_lists = right.shape[0]
    resume = np.zeros(n_lists, dtype=np.int64)
    first = np.zeros(n_lists, dtype=np.int64)  # per list: the first phrase (in order) matching here
    first_end = np.zeros(n_lists, dtype=np.int64)
    none = ends.shape[0] + 1
    for i in range(offsets.shape[0] - 1):
        start, end = offsets[i], offsets[i + 1]
        for k in range(n_lists):
            resume[k] = start
        q = 1 if start < end and _asks_at(data, start, end, ask_step, ask_ends, word) else 0
        p = start
        while p < end:
            c = data[p]
            if not word[c]:
                if c == 63:  # ?
                    q += 1
                elif c == 46 or c == 33:  # . or ! then whitespace then an interrogative
                    r = p + 1
                    while r < end:
                        w = _rust_space(data, r, end)
                        if w == 0:
                            break
                        r += w
                    if r > p + 1 and r < end and _asks_at(data, r, end, ask_step, ask_ends, word):
                        q += 1
                p += 1
                continue
            # a word starts at p
            node = step[0, c]
            e = p + 1
            found = False
            while node != 0:
                k = ends[node]
                if k >= 0:  # a phrase ends here (rare): keep each list's first one in order
                    if not found:
                        found = True
                        for m in range(n_lists):
                            first[m] = none
                    lst = plist[k]
                    if k < first[lst] and p >= resume[lst] and not (right[lst] and e < end and word[data[e]]):
                        first[lst] = k
                        first_end[lst] = e
                if e == end:
                    break
                node = step[node, data[e]]
                e += 1
            if found:
                for m in range(n_lists):
                    if first[m] != none:
                        counts[1 + m, i] += 1
                        resume[m] = first_end[m]
            p += 1
            while p < end and word[data[p]]:  # the rest of the word: no cue starts inside it
                p += 1
        counts[0, i] = q


def _cue_counts(texts: pl.Series) -> dict[str, pl.Series]:
    """Cue counts per strategy of lowercased texts, in one compiled pass per text."""
    arr, offsets, data = string_buffers(texts)
    n = len(arr)
    counts = np.zeros((1 + len(_ORDER), n), dtype=np.int32)
    _count_cues(data, offsets, _PHRASE_STEP, _PHRASE_END, _PHRASE_LIST, _RIGHT_BOUNDARY, _ASK_STEP, _ASK_END, _WORD, counts)
    # a null text has null counts
    return {name: int32_series(arr, name, counts[j]) for j, name in enumerate(["Question", *_ORDER])}


def _score_columns(frame: pl.DataFrame) -> pl.DataFrame:
    # Lowercase once and match with ASCII word boundaries: the cues are ASCII, and this is about
    # twice as fast as case-insensitive Unicode matching.
    lower = frame.select(pl.col("text").str.to_lowercase()).to_series()
    if numba is None:
        counted = lower.to_frame("t").select(**_cue_counts_polars(pl.col("t")))
        counts = {n: counted.get_column(n) for n in STRATEGIES}
    else:
        counts = _cue_counts(lower)
    return frame.with_columns((1 - 0.5 ** counts[n].cast(pl.Float64)).alias(f"_score_{n}") for n in STRATEGIES)


def suggestion_for(picked: set[int]) -> list[int]:
    """The suggested strategies (indices) when those in ``picked`` reach the threshold."""
    statement = STRATEGIES.index("Statement")
    return sorted(picked) if picked - {statement} else [statement]


# every combination of strategies at or above the threshold (a bit each) -> the suggestion
_BY_MASK = pl.DataFrame(
    {
        "_mask": list(range(1 << len(STRATEGIES))),
        "suggested_strategies": [suggestion_for({i for i in range(len(STRATEGIES)) if m >> i & 1}) for m in range(1 << len(STRATEGIES))],
    },
    schema={"_mask": pl.Int32, "suggested_strategies": pl.List(pl.Int64)},
)


def _suggest(scored: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """Suggestions from the ``_score_*`` columns: a bit mask per row, looked up in a table of the
    32 combinations (list expressions per row cost ten times more)."""
    scores = {n: pl.col(f"_score_{n}") for n in STRATEGIES}
    mask = pl.sum_horizontal([(scores[n] >= threshold).cast(pl.Int32) * (1 << i) for i, n in enumerate(STRATEGIES)])
    return (
        scored.with_columns(
            mask.alias("_mask"),
            pl.struct([scores[n].round(4).alias(n.lower()) for n in STRATEGIES]).alias("suggestion_scores"),
            pl.lit(SOURCE).alias("suggestion_source"),
        )
        .join(_BY_MASK, on="_mask", how="left", maintain_order="left")
        .drop("_mask", *[f"_score_{n}" for n in STRATEGIES])
    )


def suggest_strategies(frames: dict[str, pl.DataFrame], settings: SadSettings) -> StepResult:
    utterances = frames["utterances"]
    out = _suggest(_score_columns(utterances), settings.suggester.threshold)
    counts = out.select(pl.col("suggested_strategies").explode().value_counts()).unnest("suggested_strategies")
    counters = {f"suggested_{STRATEGIES[int(v)]}": int(c) for v, c in counts.iter_rows() if v is not None}
    return StepResult({"utterances": out}, None, counters)
