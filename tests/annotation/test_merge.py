"""Merge policy, adjudication queue and provenance (pure; the server round trip is in test_labelstudio_flow)."""

from __future__ import annotations

import pytest

from annotation.merge import MergePolicy, adjudication_spec, merge
from annotation.spec import AnnotationSpec, Display, Item, Question

SPEC = AnnotationSpec(
    name="toy",
    title="Toy",
    version="1",
    guideline="label it",
    display=(Display("text", "text", highlight=True),),
    questions=(
        Question("strategies", "multi_choice", "Strategies", ("A", "B", "C")),
        Question("stance", "single_choice", "Stance", ("support", "oppose")),
        Question("unclear", "flag", "Unclear"),
    ),
    items=tuple(Item(f"i{n}", {"text": f"t{n}"}) for n in range(5)) + (Item("g", {"text": "gold"}, gold={"strategies": ["C"], "stance": "oppose"}),),
)


def j(item, who, strategies, stance="oppose", unclear=False):
    return (item, who, {"strategies": strategies, "stance": stance, "unclear": unclear})


def test_majority_per_label_with_votes_and_agreement():
    result = merge(SPEC, [j("i0", "a", ["A", "B"]), j("i0", "b", ["A"]), j("i0", "c", ["A", "C"])])
    (m,) = result.merged
    assert m.answers == {"strategies": ["A"], "stance": "oppose", "unclear": False}
    assert m.votes["strategies"] == {"A": 3, "B": 1, "C": 1}
    assert m.annotators == ("a", "b", "c") and m.source == "majority"
    # per label: A 3/3, B 2/3, C 2/3; stance 3/3; unclear 3/3 -> mean of 5 shares
    assert m.agreement == pytest.approx(round((1 + 2 / 3 + 2 / 3 + 1 + 1) / 5, 4))


def test_ties_low_agreement_and_unclear_go_to_the_queue():
    result = merge(
        SPEC,
        [
            j("i1", "a", ["A"]), j("i1", "b", ["B"]),  # ties on A and B
            j("i2", "a", ["A"], unclear=True), j("i2", "b", ["A"], unclear=True), j("i2", "c", ["A"]),
            j("i3", "a", ["A", "B", "C"], "support"), j("i3", "b", [], "oppose"), j("i3", "c", ["A"], "support"),
        ],
        MergePolicy(min_agreement=0.75),  # i3: (4 x 2/3 + 1) / 5 = 0.73
    )
    queued = {q.item_id: q for q in result.queue}
    assert set(queued) == {"i1", "i2", "i3"} and not result.merged
    assert any("tie on strategies: A, B" in r for r in queued["i1"].reasons)
    assert any("flagged unclear by 2 of 3" in r for r in queued["i2"].reasons)
    assert any("agreement 0.73 < 0.75" in r for r in queued["i3"].reasons)
    assert queued["i1"].answers_by_annotator["b"]["strategies"] == ["B"]


def test_adjudication_decides_gold_is_gold_and_thin_items_wait():
    judgments = [j("i1", "a", ["A"]), j("i1", "b", ["B"]), j("g", "a", ["A"]), j("i4", "a", ["B"])]
    result = merge(SPEC, judgments, MergePolicy(min_annotators=2), decisions={"i1": ("boss", {"strategies": ["B"], "stance": "support"})})
    by_id = {m.item_id: m for m in result.merged}
    assert by_id["i1"].source == "adjudicated" and by_id["i1"].adjudicator == "boss" and by_id["i1"].answers["strategies"] == ["B"]
    assert by_id["i1"].votes["strategies"] == {"A": 1, "B": 1, "C": 0}  # provenance keeps the votes
    assert by_id["g"].source == "gold" and by_id["g"].answers["strategies"] == ["C"]
    assert "i4" not in by_id and result.left_out == 1  # one annotator < min_annotators
    assert result.counts() == {"merged": 2, "queued": 0, "left_out": 1, "source_adjudicated": 1, "source_gold": 1}


def test_adjudication_spec_shows_every_answer_and_proposes_the_majority():
    result = merge(SPEC, [j("i1", "ann-a", ["A"]), j("i1", "ann-b", ["B"], "support")])
    adj = adjudication_spec(SPEC, result.queue)
    (item,) = adj.items
    assert "ann-a: stance: oppose; strategies: A; unclear: False" in item.payload["cf_votes"]
    assert "ann-b:" in item.payload["cf_votes"] and "Why queued" in item.payload["cf_votes"]
    assert adj.display[-1].field == "cf_votes" and adj.questions == SPEC.questions
    assert adj.name == "toy-adjudication"
    assert adj.preannotations[0].model == "majority-vote"


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="available: majority"):
        MergePolicy(kind="dawid-skene")
