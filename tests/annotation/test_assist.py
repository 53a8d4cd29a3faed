"""The model-assisted pre-annotator: training, loading, determinism, metrics, held-out split."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from annotation.assist import (
    META_FILE,
    StrategyClassifier,
    compare_markdown,
    prf_table,
    split_heldout,
    train_textcat,
)

LABELS = ("Question", "Causality", "Example", "Analogy", "Statement")
EPOCHS = 4

_SUBJECTS = ["the tax", "this policy", "the council", "my neighbour", "public transport", "the new law",
             "most schools", "a carbon price", "the minimum wage", "rent control", "the union", "free trade"]
_VERBS = ["hurts", "helps", "changes", "ignores", "protects", "weakens", "supports", "replaces"]
_OBJECTS = ["small businesses", "young workers", "the economy", "local families", "the environment",
            "city budgets", "poor renters", "public health", "the middle class", "new students"]
_NOISE = ["honestly", "really", "in general", "today", "overall", "again", "still", "frankly"]


def _clause(rng: random.Random) -> str:
    text = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    if rng.random() < 0.5:
        text += f" {rng.choice(_NOISE)}"
    return text


def _utterance(rng: random.Random) -> tuple[str, set[str]]:
    """A text and its labels: each cue label present with probability 0.3, Statement otherwise."""
    labels: set[str] = set()
    parts = [_clause(rng).capitalize() + "."]
    if rng.random() < 0.3:
        labels.add("Causality")
        parts.append(f"That is because {_clause(rng)}.")
    if rng.random() < 0.3:
        labels.add("Example")
        parts.append(f"For example, {_clause(rng)}.")
    if rng.random() < 0.3:
        labels.add("Analogy")
        parts.append(f"It works like a {rng.choice(['tax', 'wall', 'gamble', 'ladder', 'leash'])} on {rng.choice(_OBJECTS)}.")
    if rng.random() < 0.3:
        labels.add("Question")
        parts.append(rng.choice([f"Why would {_clause(rng)}?", f"Does {_clause(rng)}?", f"What if {_clause(rng)}?"]))
    if not labels:
        labels.add("Statement")
    rng.shuffle(parts)
    if rng.random() < 0.03:  # label noise: annotators disagree now and then
        labels ^= {rng.choice(LABELS)}
    return " ".join(parts), labels


def _corpus(n: int = 400, seed: int = 7) -> tuple[list[str], list[str], list[set[str]]]:
    rng = random.Random(seed)
    pairs = [_utterance(rng) for _ in range(n)]
    return [f"u{i}" for i in range(n)], [t for t, _ in pairs], [ls for _, ls in pairs]


@pytest.fixture(scope="module")
def corpus():
    ids, texts, label_sets = _corpus()
    train_ids, heldout_ids = split_heldout(ids, 0.25, seed=0)
    index = {i: k for k, i in enumerate(ids)}
    pick = lambda chosen: ([texts[index[i]] for i in chosen], [label_sets[index[i]] for i in chosen])  # noqa: E731
    return {"train": pick(train_ids), "heldout": pick(heldout_ids)}


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    texts, label_sets = corpus["train"]
    out = tmp_path_factory.mktemp("models") / "strategies"
    seen: list[tuple[int, float]] = []
    result = train_textcat(texts, label_sets, LABELS, out, epochs=EPOCHS, seed=3,
                           progress=lambda epoch, loss: seen.append((epoch, loss)))
    return result, seen


def test_training_writes_a_named_model_dir(trained, corpus):
    result, seen = trained
    assert result.model_dir.is_dir()
    meta = json.loads((result.model_dir / META_FILE).read_text())
    assert meta["model_name"] == result.model_name
    assert result.model_name.startswith("spacy-textcat-") and len(result.model_name) == len("spacy-textcat-") + 8
    assert meta["labels"] == list(LABELS) and result.labels == LABELS
    assert meta["seed"] == 3 and meta["epochs"] == EPOCHS == result.epochs
    assert meta["n_train"] == result.n_train == len(corpus["train"][0])
    assert meta["losses"] == list(result.losses)
    # progress saw every epoch in order, with the recorded losses, and the loss went down
    assert seen == list(zip(range(1, EPOCHS + 1), result.losses))
    assert result.losses[-1] < result.losses[0]
    # no temporary directory is left beside the model
    assert [p.name for p in result.model_dir.parent.iterdir()] == [result.model_dir.name]


def test_reloading_gives_identical_scores(trained, corpus):
    result, _ = trained
    texts = corpus["heldout"][0]
    first = StrategyClassifier.load(result.model_dir)
    second = StrategyClassifier.load(result.model_dir)
    assert first.name == second.name == result.model_name
    assert first.labels == LABELS
    scores = first.scores(texts)
    assert scores == second.scores(texts)
    assert len(scores) == len(texts) and all(list(s) == list(LABELS) for s in scores)
    assert all(0.0 <= v <= 1.0 for s in scores for v in s.values())
    # predict is the thresholded view of scores
    assert first.predict(texts, threshold=0.5) == [frozenset(k for k, v in s.items() if v >= 0.5) for s in scores]


def test_model_beats_trivial_baseline_on_heldout(trained, corpus):
    result, _ = trained
    texts, gold = corpus["heldout"]
    assert len(texts) > 60  # enough held-out items for the figures to mean something
    model = StrategyClassifier.load(result.model_dir)
    micro = {r["label"]: r for r in prf_table(gold, model.predict(texts), LABELS)}
    # trivial baseline: suggest every label for every text (recall 1, precision = label rate)
    baseline = {r["label"]: r for r in prf_table(gold, [set(LABELS)] * len(gold), LABELS)}
    assert baseline["micro avg"]["f1"] < 0.55
    assert micro["micro avg"]["f1"] > 0.85
    assert micro["macro avg"]["f1"] > 0.8
    # each cue label is learnt, not only the frequent ones
    assert all(micro[label]["f1"] > 0.7 for label in LABELS)


def test_same_seed_same_model(trained, corpus, tmp_path):
    # On CPU with the same library versions spaCy/thinc training is bit-deterministic once
    # fix_random_seed has run, so the scores are compared exactly.
    result, _ = trained
    texts, label_sets = corpus["train"]
    again = train_textcat(texts, label_sets, LABELS, tmp_path / "again", epochs=EPOCHS, seed=3)
    assert again.model_name == result.model_name
    assert again.losses == result.losses
    heldout = corpus["heldout"][0]
    assert StrategyClassifier.load(again.model_dir).scores(heldout) == StrategyClassifier.load(result.model_dir).scores(heldout)


def test_model_name_depends_on_training_inputs(corpus, tmp_path):
    texts, label_sets = corpus["train"]
    texts, label_sets = texts[:40], label_sets[:40]
    a = train_textcat(texts, label_sets, LABELS, tmp_path / "a", epochs=1, seed=0)
    b = train_textcat(texts, label_sets, LABELS, tmp_path / "b", epochs=1, seed=1)
    c = train_textcat(texts[:-1], label_sets[:-1], LABELS, tmp_path / "c", epochs=1, seed=0)
    assert len({a.model_name, b.model_name, c.model_name}) == 3


def test_existing_out_dir_is_refused(corpus, tmp_path):
    texts, label_sets = corpus["train"]
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match=r"taken already exists; remove it or pick another directory"):
        train_textcat(texts[:10], label_sets[:10], LABELS, out, epochs=1)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # no temporary directory left


def test_bad_training_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown label"):
        train_textcat(["a"], [{"Sarcasm"}], LABELS, tmp_path / "m", epochs=1)
    with pytest.raises(ValueError, match="pair up"):
        train_textcat(["a", "b"], [set()], LABELS, tmp_path / "m", epochs=1)
    assert not (tmp_path / "m").exists()


def test_loading_a_non_model_dir_names_it(tmp_path):
    plain = tmp_path / "just-files"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=rf"{plain} is not a trained model.*{META_FILE}"):
        StrategyClassifier.load(plain)
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        StrategyClassifier.load(missing)
    (plain / META_FILE).write_text(json.dumps({"model_name": "x", "labels": ["A"]}))
    with pytest.raises(ValueError, match=rf"{plain} is not a trained model: spaCy cannot load it"):
        StrategyClassifier.load(plain)


def test_prf_table_hand_example():
    gold = [{"A"}, {"A", "B"}, set(), {"B"}, {"A"}]
    pred = [{"A"}, {"A"}, {"A"}, {"B"}, set()]
    # A: tp 2 (items 0, 1), fp 1 (item 2), fn 1 (item 4); B: tp 1, fp 0, fn 1; C: nothing at all
    rows = {r["label"]: r for r in prf_table(gold, pred, ("A", "B", "C"))}
    assert list(rows) == ["A", "B", "C", "micro avg", "macro avg"]
    assert rows["A"] == {"label": "A", "precision": 2 / 3, "recall": 2 / 3, "f1": pytest.approx(2 / 3), "support": 3}
    assert rows["B"] == {"label": "B", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert rows["C"] == {"label": "C", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}  # 0/0 is 0.0
    # micro: tp 3, fp 1, fn 2
    assert rows["micro avg"] == {"label": "micro avg", "precision": 0.75, "recall": 0.6,
                                 "f1": pytest.approx(2 * 0.75 * 0.6 / 1.35), "support": 5}
    assert rows["macro avg"]["precision"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert rows["macro avg"]["recall"] == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    assert rows["macro avg"]["f1"] == pytest.approx((2 / 3 + 2 / 3 + 0.0) / 3)
    assert rows["macro avg"]["support"] == 5
    with pytest.raises(ValueError, match="unknown label"):
        prf_table([{"Z"}], [set()], ("A",))
    with pytest.raises(ValueError, match="pair up"):
        prf_table([{"A"}], [], ("A",))


def test_compare_markdown_lists_models_and_figures():
    gold = [{"A"}, {"A", "B"}, set(), {"B"}, {"A"}]
    tables = {
        "rules": prf_table(gold, [{"A"}, {"A"}, {"A"}, {"B"}, set()], ("A", "B")),
        "spacy-textcat-0123abcd": prf_table(gold, gold, ("A", "B")),
    }
    lines = compare_markdown(tables).splitlines()
    assert lines[0] == ("| strategy | rules P | rules R | rules F1 | spacy-textcat-0123abcd P | "
                        "spacy-textcat-0123abcd R | spacy-textcat-0123abcd F1 | support |")
    assert lines[1] == "|---|---:|---:|---:|---:|---:|---:|---:|"
    assert lines[2] == "| A | 0.667 | 0.667 | 0.667 | 1.000 | 1.000 | 1.000 | 3 |"
    assert lines[3] == "| B | 1.000 | 0.500 | 0.667 | 1.000 | 1.000 | 1.000 | 2 |"
    assert lines[4] == "| micro avg | 0.750 | 0.600 | 0.667 | 1.000 | 1.000 | 1.000 | 5 |"
    assert lines[5].startswith("| macro avg | 0.833 | 0.583 | 0.667 |")
    assert len(lines) == 6
    with pytest.raises(ValueError, match="same gold"):
        compare_markdown({"rules": tables["rules"], "other": prf_table([set()] * 5, [set()] * 5, ("A", "B"))})


def test_split_heldout_is_stable_and_near_fraction():
    ids = [f"t1_{i:05x}" for i in range(2000)]
    train, heldout = split_heldout(ids, 0.2, seed=11)
    assert sorted(train + heldout) == sorted(ids) and not set(train) & set(heldout)
    assert 0.17 < len(heldout) / len(ids) < 0.23
    assert heldout == [i for i in ids if i in set(heldout)]  # input order kept
    # independent of order: a reversed list splits the same ids the same way
    train_r, heldout_r = split_heldout(ids[::-1], 0.2, seed=11)
    assert set(heldout_r) == set(heldout) and set(train_r) == set(train)
    # more labels arriving never moves an already held-out item, and vice versa
    more = ids + [f"t1_new{i}" for i in range(500)]
    _, heldout_more = split_heldout(more, 0.2, seed=11)
    assert set(heldout_more) & set(ids) == set(heldout)
    # a larger fraction holds out a superset; another seed gives another split
    assert set(split_heldout(ids, 0.3, seed=11)[1]) >= set(heldout)
    assert set(split_heldout(ids, 0.2, seed=12)[1]) != set(heldout)
    assert split_heldout(ids, 0.0, seed=11) == (ids, [])
    assert split_heldout(ids, 1.0, seed=11) == ([], ids)
    with pytest.raises(ValueError, match="fraction"):
        split_heldout(ids, 1.5, seed=0)
    with pytest.raises(ValueError, match="duplicates"):
        split_heldout(["a", "a"], 0.5, seed=0)
