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

import polars as pl

from pipelines.core.step import StepResult
from pipelines.sad.settings import SadSettings
from schemas.sad import STRATEGIES

SOURCE = "rules:sad-cues-v1"

CUES: dict[str, str] = {
    "Question": r"\?|(?:^|[.!?]\s+)(?:why|how|what|who|which|where|when|would you|do you|don't you|isn't it|aren't you|can you|could you|should we)\b",
    "Causality": r"\b(?:because|since|therefore|thus|hence|consequently|as a result|due to|leads? to|led to|caus(?:e|es|ed|ing)|results? in|so that|which means|that's why|this is why)\b",
    "Example": r"\b(?:for example|for instance|e\.g\.|such as|in my experience|case in point|to illustrate|take the case|consider the)",
    "Analogy": r"\b(?:is like|are like|just like|much like|it's like|similar to|similarly|analogous|analogy|just as|in the same way|akin to|comparable to|the equivalent of|imagine if)\b",
    "Statement": r"\b(?:i think|i believe|in my (?:opinion|view)|clearly|obviously|the fact is|it is|there (?:is|are)|should|must)\b",
}


def _ascii_boundaries(pattern: str) -> str:
    return pattern.replace(r"\b", r"(?-u:\b)")


# The Question cue counted in three parts that add up to its count (tests/pipelines/sad/
# test_strategies.py checks this on fuzzed texts): question marks; an interrogative opening the
# text; one after "." or "!" and whitespace. Matches of the parts cannot overlap (the
# interrogatives hold no punctuation), and where the whole pattern sees "?" it counts the mark,
# never an interrogative after it. Apart, each part has a literal the regex engine can search
# for; the whole pattern's "^|" made it try every sentence end: 19-22 ms per part against
# 103 ms for 39 MB of utterances.
_SENTENCE_START = r"(?:^|[.!?]\s+)"
_INTERROGATIVES = CUES["Question"].split(_SENTENCE_START, 1)[-1]
if CUES["Question"] != r"\?|" + _SENTENCE_START + _INTERROGATIVES:
    raise RuntimeError("the Question cue changed its shape: revisit _question_count")


def _question_count(lower: pl.Expr) -> pl.Expr:
    return (
        lower.str.count_matches("?", literal=True)
        + lower.str.count_matches(_ascii_boundaries("^" + _INTERROGATIVES))
        + lower.str.count_matches(_ascii_boundaries(r"[.!]\s+" + _INTERROGATIVES))
    )


def _score_columns(text: pl.Expr) -> list[pl.Expr]:
    # Lowercase once and match with ASCII word boundaries: the cues are ASCII, and this is about
    # twice as fast as case-insensitive Unicode matching.
    lower = text.str.to_lowercase()
    counts = {n: lower.str.count_matches(_ascii_boundaries(CUES[n])) for n in STRATEGIES}
    counts["Question"] = _question_count(lower)
    return [(1 - 0.5 ** counts[n].cast(pl.Float64)).alias(f"_score_{n}") for n in STRATEGIES]


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
    # scores first, as columns, so that each cue regex runs once per utterance
    out = _suggest(utterances.with_columns(_score_columns(pl.col("text"))), settings.suggester.threshold)
    counts = out.select(pl.col("suggested_strategies").explode().value_counts()).unnest("suggested_strategies")
    counters = {f"suggested_{STRATEGIES[int(v)]}": int(c) for v, c in counts.iter_rows() if v is not None}
    return StepResult({"utterances": out}, None, counters)
