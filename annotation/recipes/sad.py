"""The SAD labelling recipe: strategies (multi-select), stance (support / oppose), unclear flag.

One item per SAD example: the annotator sees the topic, the dialogue history with each turn's
speaker (OP / challenger) and the target utterance highlighted, and labels the target. The
pre-annotation is the rule-based suggestion of the build (or a trained classifier's, see
:func:`with_model_preannotations`), with its model name and a confidence score.

Routing strata: the topic (``submission_id``) and the strongest suggested strategy. The item's
confidence is how far the least certain strategy score is from the decision threshold (0 = on
the threshold, 1 = certain), so lowest-confidence-first routing picks the items the suggester
is least sure about.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Mapping, Sequence

import polars as pl

from annotation.spec import AnnotationSpec, Answers, Display, Item, PreAnnotation, Question
from schemas.sad import SPEAKER, STANCE, STRATEGIES

RECIPE_VERSION = "1"
SPEAKER_LABEL = {"op": "OP", "challenger": "challenger"}

STRATEGY_HINTS = {
    "Question": "asks something to make the other side examine their view",
    "Causality": "argues that one thing causes or leads to another",
    "Example": "supports a claim with a specific case, anecdote or data",
    "Analogy": "argues by comparison with a different situation",
    "Statement": "asserts a claim or opinion without support",
}

QUESTIONS = (
    Question("strategies", "multi_choice", "Strategies used by the target", STRATEGIES, hints=STRATEGY_HINTS),
    Question("stance", "single_choice", "Stance of the target towards the topic", ("support", "oppose"), required=True),
    Question("unclear", "flag", "Unclear: I cannot decide"),
)

DISPLAY = (
    Display("header", "topic", "Topic"),
    Display("dialogue", "history", "Dialogue so far"),
    Display("text", "target", "Target utterance (label this one)", highlight=True),
)


def guideline() -> str:
    return files("annotation.recipes").joinpath("sad_guideline.md").read_text(encoding="utf-8")


def _confidence(scores: Mapping[str, float], threshold: float) -> float:
    # Distance of the least certain strategy score from the threshold, scaled to [0, 1].
    span = max(threshold, 1 - threshold)
    return round(min(abs(scores[s.lower()] - threshold) for s in STRATEGIES) / span, 4)


def sad_recipe(
    dialogues: pl.DataFrame,
    utterances: pl.DataFrame,
    *,
    threshold: float = 0.5,
    gold: Mapping[str, Answers] | None = None,
) -> AnnotationSpec:
    """The spec for labelling the targets of ``dialogues`` (the build's tables, ints for labels)."""
    gold = dict(gold or {})
    utt = utterances.select("utterance_id", "speaker", "suggested_strategies", "suggestion_scores", "suggestion_source")
    rows = dialogues.select("example_id", "submission_id", "topic", "history", "target_id", "target_text", "target_stance").join(
        utt, left_on="target_id", right_on="utterance_id", how="left", validate="m:1"
    )
    items: list[Item] = []
    pre: list[PreAnnotation] = []
    for r in rows.iter_rows(named=True):
        if r["speaker"] is None:
            raise ValueError(f"SAD recipe: target {r['target_id']!r} of example {r['example_id']!r} is not in the utterances table")
        history = [
            {"speaker": "OP" if turn["stance"] == STANCE.names.index("support") else "challenger", "text": turn["text"]}
            for turn in r["history"]
        ]
        suggested = [STRATEGIES[i] for i in r["suggested_strategies"]]
        scores = r["suggestion_scores"]
        strongest = max(STRATEGIES, key=lambda s: scores[s.lower()])
        confidence = _confidence(scores, threshold)
        item_id = r["example_id"]
        items.append(
            Item(
                id=item_id,
                payload={
                    "topic": r["topic"],
                    "history": history,
                    "target": r["target_text"],
                    "target_speaker": SPEAKER_LABEL[SPEAKER.names[r["speaker"]]],
                },
                strata={"topic": r["submission_id"], "strategy": strongest},
                confidence=confidence,
                gold=gold.pop(item_id, None),
            )
        )
        pre.append(
            PreAnnotation(
                item_id,
                {"strategies": suggested, "stance": STANCE.names[r["target_stance"]]},
                model=r["suggestion_source"],
                score=confidence,
            )
        )
    if gold:
        missing = sorted(gold)[:5]
        raise ValueError(f"SAD recipe: gold answers for {len(gold)} item(s) not in the candidate, e.g. {missing}")
    return AnnotationSpec(
        name="sad-strategies",
        title="SAD: argument strategies and stance",
        version=RECIPE_VERSION,
        guideline=guideline(),
        display=DISPLAY,
        questions=QUESTIONS,
        items=tuple(items),
        preannotations=tuple(pre),
    )


def with_model_preannotations(
    spec: AnnotationSpec, model: str, strategies: Mapping[str, Sequence[str]], scores: Mapping[str, float]
) -> AnnotationSpec:
    """Replace the strategy pre-annotations with a model's (stance pre-annotations are kept)."""
    old = {p.item_id: p for p in spec.preannotations}
    pre = tuple(
        PreAnnotation(i.id, {**(old[i.id].answers if i.id in old else {}), "strategies": list(strategies[i.id])}, model, scores[i.id])
        for i in spec.items
        if i.id in strategies
    )
    items = tuple(Item(i.id, i.payload, i.strata, scores.get(i.id, i.confidence), i.gold) for i in spec.items)
    return AnnotationSpec(spec.name, spec.title, spec.version, spec.guideline, spec.display, spec.questions, items, pre)
