"""The SAD recipe, the spec's answer checks, routing, and the Label Studio translation (no server)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from annotation.backends.labelstudio.config import from_result, instruction_html, label_config, task_payload, to_result
from annotation.recipes.sad import sad_recipe
from annotation.routing import RoutingOptions, route
from pipelines.sad.synthetic import sad_like_candidate
from schemas.sad import STRATEGIES


@pytest.fixture(scope="module")
def spec():
    c = sad_like_candidate(scale=0.001, seed=3)
    return sad_recipe(c["dialogues"], c["utterances"])


def test_sad_recipe_shows_topic_history_target_and_asks_three_questions(spec):
    assert len(spec.items) > 300
    item = spec.items[0]
    assert set(item.payload) == {"topic", "history", "target", "target_speaker"}
    assert {t["speaker"] for t in item.payload["history"]} <= {"OP", "challenger"}
    assert item.payload["history"][0]["speaker"] == "OP"  # the submission opens every dialogue
    assert [q.name for q in spec.questions] == ["strategies", "stance", "unclear"]
    assert spec.question("strategies").choices == STRATEGIES
    assert spec.question("stance").choices == ("support", "oppose")
    # our guideline: a definition and two examples for each of the five strategies
    for s in STRATEGIES:
        section = spec.guideline.split(f"**{s}**")[1].split("**")[0].split("\n## ")[0]
        assert section.count("\n- ") == 2, s
    assert len(spec.preannotations) == len(spec.items)
    assert all(0 <= p.score <= 1 for p in spec.preannotations)


def test_answers_with_unknown_labels_are_problems(spec):
    assert spec.check_answers({"strategies": ["Question"], "stance": "oppose", "unclear": False}) == []
    problems = spec.check_answers({"strategies": ["Question", "Sarcasm"], "stance": "maybe", "mood": "x"})
    assert any("'Sarcasm'" in p for p in problems)
    assert any("'maybe'" in p for p in problems)
    assert any("unknown question 'mood'" in p for p in problems)


def test_label_config_is_valid_xml_with_every_choice(spec):
    root = ET.fromstring(label_config(spec))
    choices = {c.get("name"): [x.get("value") for x in c.findall("Choice")] for c in root.iter("Choices")}
    assert choices["strategies"] == list(STRATEGIES)
    assert choices["stance"] == ["support", "oppose"]
    assert [p.get("value") for p in root.iter("Paragraphs")] == ["$history"]
    assert [t.get("value") for t in root.iter("Text")] == ["$target"]
    html = instruction_html(spec.guideline)
    assert "<h2>Strategies</h2>" in html and html.count("<li>") >= 10 and "<b>Question</b>" in html


def test_answers_round_trip_through_label_studio_results(spec):
    for answers in (
        {"strategies": ["Question", "Analogy"], "stance": "support", "unclear": True},
        {"strategies": [], "stance": "oppose", "unclear": False},
    ):
        back, problems = from_result(spec, to_result(spec, answers))
        assert problems == [] and back == answers
    # a label the recipe does not know (the config was changed on the server) is a problem
    result = to_result(spec, {"strategies": ["Question"], "stance": "oppose"})
    result[0]["value"]["choices"].append("Sarcasm")
    result.append({"from_name": "mood", "to_name": "cf_target", "type": "choices", "value": {"choices": ["x"]}})
    _, problems = from_result(spec, result)
    assert any("Sarcasm" in p for p in problems) and any("'mood'" in p for p in problems)


def test_task_payload_carries_item_id_assignment_and_prediction(spec):
    plan = route(spec, RoutingOptions(sample_size=5, overlap=2, annotators=("ann1", "ann2", "ann3")))
    pre = {p.item_id: p for p in spec.preannotations}
    row = task_payload(spec, plan.assignments[0], pre[plan.assignments[0].item.id])
    assert row["data"]["cf_item_id"] == plan.assignments[0].item.id
    assert len(row["data"]["cf_assigned"].split(",")) == 2
    (prediction,) = row["predictions"]
    assert prediction["model_version"] == pre[plan.assignments[0].item.id].model
    assert from_result(spec, prediction["result"])[0]["strategies"] == pre[plan.assignments[0].item.id].answers["strategies"]


def test_routing_is_deterministic_sized_and_stratified(spec):
    opts = RoutingOptions(sample_size=60, stratify_by=("strategy",), seed=7)
    a, b = route(spec, opts), route(spec, opts)
    assert a.item_ids == b.item_ids and len(a.item_ids) == 60 and len(set(a.item_ids)) == 60
    population = Counter(i.strata["strategy"] for i in spec.items)
    sampled = Counter(x.item.strata["strategy"] for x in a.assignments)
    assert set(sampled) == set(population)  # every stratum represented
    for stratum, n in population.items():  # proportional within one item (largest remainder)
        assert abs(sampled[stratum] - 60 * n / len(spec.items)) <= 1.5, stratum
    assert route(spec, RoutingOptions(sample_size=60, seed=8)).item_ids != route(spec, RoutingOptions(sample_size=60, seed=7)).item_ids


def test_lowest_confidence_first_takes_the_least_certain_items(spec):
    plan = route(spec, RoutingOptions(sample_size=20, lowest_confidence_first=True))
    chosen = sorted(x.item.confidence for x in plan.assignments)
    rest = sorted(i.confidence for i in spec.items if i.id not in set(plan.item_ids))
    assert chosen[-1] <= rest[0]


def test_overlap_gold_and_assignment_balance(spec):
    gold = {i.id: {"strategies": ["Question"], "stance": "oppose"} for i in spec.items[:10]}
    c = sad_like_candidate(scale=0.001, seed=3)
    with_gold = sad_recipe(c["dialogues"], c["utterances"], gold=gold)
    people = ("a", "b", "c", "d")
    plan = route(with_gold, RoutingOptions(sample_size=40, overlap=2, gold_fraction=0.2, annotators=people))
    gold_rows = [x for x in plan.assignments if x.is_gold]
    assert len(gold_rows) == 10  # 20% of 50
    assert all(x.annotators == people for x in gold_rows)  # everyone meets every gold item
    regular = [x for x in plan.assignments if not x.is_gold]
    assert all(len(set(x.annotators)) == 2 for x in regular)
    load = Counter(a for x in regular for a in x.annotators)
    assert max(load.values()) - min(load.values()) <= 1
    assert not plan.assignments[0].is_gold  # gold is spread through the queue, not first
    assert route(with_gold, RoutingOptions(), exclude=set(plan.item_ids)).item_ids[0] not in plan.item_ids
    with pytest.raises(ValueError, match="overlap 3 needs at least 3 annotators"):
        RoutingOptions(overlap=3, annotators=("a", "b"))
