"""The rule-based strategy suggester: documented cues, scores, and the Statement fallback."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.sad.settings import SadSettings, SadSuggester
from pipelines.sad.strategies import SOURCE, suggest_strategies
from schemas.sad import STRATEGIES

TEXTS = {
    "q": "Why would anyone accept a rule that nobody can enforce in practice?",
    "c": "Prices rose because supply fell, and therefore demand shifted elsewhere.",
    "e": "For example, Mexico taxed sugar and consumption dropped within two years.",
    "a": "Banning it is like banning cars because some people speed on highways.",
    "s": "The proposal is reasonable and deserves a fair hearing from the council.",
    "mixed": "WHY not? Because it failed before, for instance in Ohio.",
}


def _suggest(threshold: float = 0.5) -> dict[str, list[str]]:
    utt = pl.DataFrame({"utterance_id": list(TEXTS), "text": list(TEXTS.values())})
    out = suggest_strategies({"utterances": utt}, SadSettings(suggester=SadSuggester(threshold=threshold))).outputs["utterances"]
    assert out["suggestion_source"].unique().to_list() == [SOURCE]
    return {r["utterance_id"]: [STRATEGIES[i] for i in r["suggested_strategies"]] for r in out.iter_rows(named=True)}


def test_each_strategy_has_its_cue():
    got = _suggest()
    assert got["q"] == ["Question"]
    assert got["c"] == ["Causality"]
    assert got["e"] == ["Example"]
    assert "Analogy" in got["a"]
    assert got["s"] == ["Statement"]  # nothing else fires: every argument states a claim
    assert got["mixed"] == ["Question", "Causality", "Example"]  # several at once, case-insensitive


def test_scores_grow_with_cues_and_threshold_applies():
    utt = pl.DataFrame({"utterance_id": ["x"], "text": ["Because A, and because B, and since C."]})
    out = suggest_strategies({"utterances": utt}, SadSettings()).outputs["utterances"]
    assert out["suggestion_scores"][0]["causality"] == 0.875  # 1 - 0.5 ** 3
    strict = _suggest(threshold=0.8)
    assert strict["c"] == ["Statement"]  # two cues score 0.75 < 0.8: only the Statement fallback remains


def test_suggestions_follow_the_scores_row_by_row():
    """Every row's suggestion is the strategies at or above the threshold, or Statement alone
    when none but Statement is; rows keep their order (the lookup is a join)."""
    texts = [t * k for t in TEXTS.values() for k in (1, 2, 3)] + ["", "Because since thus? Like e.g. it is."]
    utt = pl.DataFrame({"utterance_id": [f"u{i}" for i in range(len(texts))], "text": texts})
    for threshold in (0.0, 0.5, 0.75, 0.9, 1.0):
        out = suggest_strategies({"utterances": utt}, SadSettings(suggester=SadSuggester(threshold=threshold))).outputs["utterances"]
        assert out["utterance_id"].to_list() == utt["utterance_id"].to_list()
        for row in out.iter_rows(named=True):
            above = [i for i, n in enumerate(STRATEGIES) if row["suggestion_scores"][n.lower()] >= threshold]
            statement = STRATEGIES.index("Statement")
            expected = above if [i for i in above if i != statement] else [statement]
            assert row["suggested_strategies"] == expected, (threshold, row["text"])


def test_the_question_cue_counted_in_parts_equals_the_whole_pattern():
    import random

    from pipelines.sad.strategies import CUES, _ascii_boundaries, _question_count

    rng = random.Random(3)
    pieces = ["why", "how", "would you", "don't you", "whyever", "what", "?", ".", "!", " ", "  ", "\n", "\u3000", "a", "x?", "so"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(4000)]
    texts += ["why?", "? why", "!? why", "x. why. how", "why", ". why", "what! when? where"]
    lower = pl.DataFrame({"t": texts}).select(pl.col("t").str.to_lowercase())
    whole = lower.select(pl.col("t").str.count_matches(_ascii_boundaries(CUES["Question"]))).to_series()
    parts = lower.select(_question_count(pl.col("t"))).to_series()
    assert whole.to_list() == parts.to_list()
    assert whole.sum() > 1000  # the fuzzed texts do exercise the cue


# The cue patterns as the suggester documented them before they were built from phrase lists.
DOCUMENTED = {
    "Question": r"\?|(?:^|[.!?]\s+)(?:why|how|what|who|which|where|when|would you|do you|don't you|isn't it|aren't you|can you|could you|should we)\b",
    "Causality": r"\b(?:because|since|therefore|thus|hence|consequently|as a result|due to|leads? to|led to|caus(?:e|es|ed|ing)|results? in|so that|which means|that's why|this is why)\b",
    "Example": r"\b(?:for example|for instance|e\.g\.|such as|in my experience|case in point|to illustrate|take the case|consider the)",
    "Analogy": r"\b(?:is like|are like|just like|much like|it's like|similar to|similarly|analogous|analogy|just as|in the same way|akin to|comparable to|the equivalent of|imagine if)\b",
    "Statement": r"\b(?:i think|i believe|in my (?:opinion|view)|clearly|obviously|the fact is|it is|there (?:is|are)|should|must)\b",
}


def _cue_texts(seed: int, rows: int = 4000) -> list[str | None]:
    import random

    from pipelines.sad.strategies import INTERROGATIVES, PHRASES

    words = [*INTERROGATIVES, *(p for ps in PHRASES.values() for p in ps)]
    cut = [w[: len(w) // 2] for w in words] + [w + "s" for w in words] + ["x" + w for w in words[:20]]
    glue = [" ", "  ", ".", "!", "?", ". ", "! ", "?!", ",", "_", "é", "\u3000", "\n", "\x1c", "\xa0", "'", "Why", "BECAUSE", "E.G.", "İ", "K"]
    rng = random.Random(seed)
    pieces = words + cut + glue * 6
    texts: list[str | None] = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 18))) for _ in range(rows)]
    return texts + [None, "", "why", "e.g.x", "causes", "leads to", "lead to", "as a results in", "it isn't"]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("compiled", [True, False])
def test_cue_counts_equal_the_documented_patterns(seed, compiled, monkeypatch):
    from pipelines.sad import strategies

    if not compiled:
        monkeypatch.setattr(strategies, "numba", None)  # the polars regexes (no numba installed)
    texts = _cue_texts(seed)
    frame = pl.DataFrame({"text": texts})
    lower = pl.col("text").str.to_lowercase()
    want = frame.select(
        **{n: lower.str.count_matches(strategies._ascii_boundaries(p)) for n, p in DOCUMENTED.items()}
    )
    got = strategies._score_columns(frame)
    for n in STRATEGIES:
        expected = want.select((1 - 0.5 ** pl.col(n).cast(pl.Float64))).to_series()
        assert got.get_column(f"_score_{n}").to_list() == expected.to_list(), n
        assert want.get_column(n).sum() > 100, n  # the fuzzed texts do exercise every cue
