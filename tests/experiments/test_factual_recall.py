"""Factual recall against frequency: prompts, scoring, the analyses on fixed data, checkpoints with
two tiny models, and the command end to end with SmolLM2-135M-Instruct on the CPU."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from experiments.common import ExperimentError, ModelNotFoundError
from experiments.factual_recall import (
    ModelSpec, RecallOptions, accuracy_by_bin, assign_frequency_bins, best_threshold, build_prompt, build_prompts,
    choose_demonstrations, counts_for_steps, crosslingual_consistency, extract_answer, fill_template, frequency_bin_edges,
    is_correct, is_prefix_match, jaccard, load_klar, order_models, parse_model_spec, run_factual_recall, select_queries,
)
from schemas.facts import LANGUAGES
from tests.corpusforge.test_cli_sad import REPO, cf
from tests.pipelines.facts.test_pipeline import KLAR, write_corpus

needs_klar = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")
CHECKPOINTS = (100, 300)


@pytest.fixture(scope="module")
def facts_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fact-frequency release of all of KLAR over a small generated corpus, with counts at steps 100 and 300."""
    if not KLAR.is_dir():
        pytest.skip(f"KLAR not found at {KLAR}")
    tmp = tmp_path_factory.mktemp("facts-release")
    write_corpus(tmp / "corpus")
    s = ["-w", str(tmp / "ws"), "--set", 'facts.corpus.step_field="metadata.step"', "--set", f"facts.checkpoints={list(CHECKPOINTS)}"]
    cf("build", "facts", "--facts", str(KLAR), "--corpus", str(tmp / "corpus"), *s, cwd=REPO)
    cf("release", "facts", "--version", "1.0.0", *s, cwd=REPO)
    return tmp / "ws" / "releases" / "facts" / "1.0.0"


# --------------------------------------------------------------------------- prompts


@needs_klar
def test_prompt_text_of_a_fixed_fact():
    klar = load_klar(KLAR, ["en", "fr"], ["capital_of"])
    ankara = klar.facts.filter(pl.col("index") == 3751)
    prompts = {r["lang"]: r for r in build_prompts(klar, ankara, seed=0).iter_rows(named=True)}
    assert prompts["en"]["prompt"] == (
        "What is the country or state for which Edinburgh is the capital? The answer is: Scotland\n"
        "What is the country or state for which Phnom Penh is the capital? The answer is: Cambodia\n"
        "What is the country or state for which Muscat is the capital? The answer is: Oman\n"
        "What is the country or state for which Ankara is the capital? The answer is:"
    )
    # parallel languages: the demonstrations are the same facts, in the language's own forms
    assert prompts["fr"]["demonstrations"] == prompts["en"]["demonstrations"] == [3767, 3866, 3955]
    assert prompts["fr"]["prompt"].splitlines()[0] == "Quel est le pays ou l'état pour lequel Édimbourg est la capitale? La réponse est: Écosse"
    assert prompts["fr"]["prompt"].endswith("pour lequel Ankara est la capitale? La réponse est:")


def test_templates_fill_and_cut_at_the_mask():
    template = "<subject>の首都はどの国または州ですか？答えは： <mask>"
    assert fill_template(template, "アンカラ", "トルコ") == "アンカラの首都はどの国または州ですか？答えは： トルコ"
    assert fill_template(template, "アンカラ") == "アンカラの首都はどの国または州ですか？答えは："
    assert build_prompt("Q <subject>? A: <mask>", [("a", "1"), ("b", "2")], "c") == "Q a? A: 1\nQ b? A: 2\nQ c? A:"


def test_demonstrations_are_seeded_and_never_the_query():
    pool = list(range(10))
    for query in pool:
        demos = choose_demonstrations(pool, query, "capital_of", seed=0)
        assert len(demos) == 3 == len(set(demos)) and query not in demos and set(demos) <= set(pool)
        assert demos == choose_demonstrations(list(reversed(pool)), query, "capital_of", seed=0)  # pool order does not matter
    assert any(choose_demonstrations(pool, q, "capital_of", 0) != choose_demonstrations(pool, q, "capital_of", 1) for q in pool)
    assert choose_demonstrations([4, 5], 4, "r", 0) == [5]  # a small pool: fewer demonstrations


@needs_klar
def test_demonstrations_come_from_the_same_language_and_relation():
    klar = load_klar(KLAR, ["en", "ja"], ["continent", "religion"])
    queries = select_queries(klar.facts, 3, seed=0)
    assert queries.height == 2 * 2 * 3 and queries.group_by("lang").len()["len"].to_list() == [6, 6]
    assert queries.filter(pl.col("lang") == "en")["index"].to_list() == queries.filter(pl.col("lang") == "ja")["index"].to_list()
    prompts = build_prompts(klar, queries, seed=0)
    objects = {(r["lang"], r["index"]): (r["relation"], r["subject"], r["object"]) for r in klar.facts.iter_rows(named=True)}
    for row in prompts.iter_rows(named=True):
        lines = row["prompt"].split("\n")
        assert len(lines) == 4 and row["index"] not in row["demonstrations"]
        for line, index in zip(lines, row["demonstrations"]):
            relation, subject, obj = objects[(row["lang"], index)]
            assert relation == row["relation"] and subject in line and line.endswith(obj)
    assert prompts.equals(build_prompts(klar, select_queries(klar.facts, 3, seed=0), seed=0))


# --------------------------------------------------------------------------- scoring


@pytest.mark.parametrize(("generated", "target", "expected"), [
    (" Paris", "Paris", True),
    ("  PARIS\nWhat is the country", "paris", True),  # the answer ends at the line break; case folded
    (" Paris, France", "Paris", True),  # the target is a prefix of the answer
    (" Par", "Paris", True),  # the answer is a prefix of the target (the paper's rule)
    (" Alberta\nWhat", "Alberta  Province", True),  # white space runs collapse; the answer stops at the line break
    (" Lyon", "Paris", False),
    ("", "Paris", False),  # empty answers never match
    ("\n\nParis", "Paris", True),  # leading line breaks are white space
    (" \nParis", "Paris", True),
    (" ｐａｒｉｓ", "Paris", True),  # NFKC: full-width letters
    (" トルコ共和国", "トルコ", True),
    (" Paris", " ", False),  # an empty target never matches
])
def test_prefix_match_rules(generated, target, expected):
    assert is_correct(generated, target) is expected


def test_aliases_and_answer_extraction():
    assert is_correct(" NYC is big", "New York", ["NYC"]) and not is_correct(" LA", "New York", ["NYC"])
    assert extract_answer("  Rome\nNext question") == "Rome"
    assert is_prefix_match("İstanbul", "i̇stanbul") and not is_prefix_match("", "")


# --------------------------------------------------------------------------- analyses on fixed data


def test_jaccard_and_consistency_with_english():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == 0.5 and jaccard(set(), set()) is None and jaccard({1}, set()) == 0.0
    rows = pl.DataFrame({"lang": ["en"] * 4 + ["fr"] * 4 + ["ja"] * 4, "index": [1, 2, 3, 4] * 3,
                         "correct": [True, True, False, False, True, False, True, False, False, False, False, False]})
    assert crosslingual_consistency(rows) == {"en": 1.0, "fr": 1 / 3, "ja": 0.0}
    assert crosslingual_consistency(rows.filter(pl.col("lang") != "en")) == {}


def test_thirty_log_bins_with_zero_apart():
    edges = frequency_bin_edges(999)
    assert len(edges) == 31 and edges[0] == 1.0 and edges[-1] == pytest.approx(1000.0)
    assert np.allclose(np.diff(np.log10(edges)), 0.1)  # log-spaced: a tenth of a decade each
    bins = assign_frequency_bins([0, 1, 2, 9, 10, 999], edges)
    # bin k holds [10**((k-1)/10), 10**(k/10)): 1 -> 1, 2 -> 4 (1.995 <= 2 < 2.512), 10 -> 11, 999 -> 30
    assert bins.tolist() == [0, 1, 4, 10, 11, 30]
    table = accuracy_by_bin([0, 0, 1, 2, 999, 999], [False, True, True, False, True, True], edges)
    assert table.height == 31 and table["facts"].sum() == 6
    rows = {r["bin"]: r for r in table.iter_rows(named=True)}
    assert rows[0]["facts"] == 2 and rows[0]["accuracy"] == 0.5 and rows[0]["upper"] == 0.0
    assert rows[30]["accuracy"] == 1.0 and rows[4]["accuracy"] == 0.0 and rows[2]["accuracy"] is None
    assert assign_frequency_bins([0, 0], frequency_bin_edges(0)).tolist() == [0, 0]  # no counts at all


def test_best_threshold_on_fixed_data():
    freq = [0, 1, 3, 5, 8, 13, 21]
    assert best_threshold(freq, [False, False, False, True, True, True, True]) == (5, 1.0)
    # one error either way: t = 5 and t = 8 both get 6 of 7, the smaller wins
    assert best_threshold(freq, [False, False, False, True, False, True, True]) == (5, pytest.approx(6 / 7))
    assert best_threshold(freq, [False] * 7) == (22, 1.0)  # predicting all wrong: t = max + 1
    assert best_threshold(freq, [True] * 7) == (0, 1.0)
    assert best_threshold([], []) == (None, None)


# --------------------------------------------------------------------------- models and checkpoints


def test_model_specs_and_their_order(tmp_path):
    assert parse_model_spec("ckpt/a@200") == ModelSpec(Path("ckpt/a"), 200)
    assert parse_model_spec("ckpt/a") == ModelSpec(Path("ckpt/a"), None)
    with pytest.raises(ExperimentError, match="training step"):
        parse_model_spec("ckpt/a@last")
    assert [m.step for m in order_models([ModelSpec(Path("b"), 200), ModelSpec(Path("a"), 100)])] == [100, 200]
    with pytest.raises(ExperimentError, match="needs its training step"):
        order_models([ModelSpec(Path("a"), 100), ModelSpec(Path("b"))])
    with pytest.raises(ExperimentError, match="same step"):
        order_models([ModelSpec(Path("a"), 100), ModelSpec(Path("b"), 100)])


def test_counts_per_step_from_the_release(facts_release):
    frames, sources = counts_for_steps(facts_release, [None, 100, 200, 300])
    assert sources[None].checkpoint is None and sources[100].exact and (sources[200].checkpoint, sources[200].exact) == (100, False)
    assert sources[300].label == "checkpoint 300" and frames[None].height == frames[300].height == 14_364
    at = pl.read_parquet(sorted((facts_release / "checkpoints").glob("*.parquet")))
    hundred = at.filter(pl.col("checkpoint") == 100).select("lang", "index", pl.col("cooccurrence_docs").alias("frequency"))
    assert frames[200].sort("lang", "index").equals(hundred.sort("lang", "index"))
    assert (frames[None].join(frames[100], on=["lang", "index"])
            .select((pl.col("frequency") >= pl.col("frequency_right")).all()).item())
    with pytest.raises(ExperimentError, match="before the release's first checkpoint"):
        counts_for_steps(facts_release, [50])


def test_two_tiny_checkpoints(facts_release, tiny_llama_dir, tmp_path):
    for step in (100, 200):
        shutil.copytree(tiny_llama_dir, tmp_path / f"step{step}")
    models = [ModelSpec(tmp_path / "step200", 200), ModelSpec(tmp_path / "step100", 100)]
    options = RecallOptions(languages=("en", "fr"), relations=("capital_of",), max_facts_per_relation=2, batch_size=8)
    result = run_factual_recall(facts_release, KLAR, models, tmp_path / "run", options)
    table = result.tables["checkpoints"]
    assert table["step"].to_list() == [100, 200]
    assert table["counts"].to_list() == ["checkpoint 100", "checkpoint 100 (latest before the step)"]
    predictions = result.tables["predictions"]
    assert predictions.height == 2 * 2 * 2 and predictions.group_by("step").len().sort("step")["len"].to_list() == [4, 4]
    # identical weights at both steps: identical answers
    by_step = {s: predictions.filter(pl.col("step") == s).sort("lang", "index")["generated"].to_list() for s in (100, 200)}
    assert by_step[100] == by_step[200]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert [m["step"] for m in config["models"]] == [100, 200] and config["models"][0]["fingerprint"]
    assert config["release"]["version"] == "1.0.0" and len(config["release"]["manifest_sha256"]) == 64
    assert (tmp_path / "run" / "plots" / "accuracy_vs_step.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        run_factual_recall(facts_release, KLAR, [ModelSpec(tmp_path / "nope", 100)], tmp_path / "run2", options)


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_cli_end_to_end_with_smollm2(facts_release, smollm2_dir, tmp_path):
    out = tmp_path / "run"
    proc = cf("experiment", "factual-recall", "--release", str(facts_release), "--klar", str(KLAR),
              "--model", f"{smollm2_dir}@300", "--out", str(out), "--relations", "capital_of,continent",
              "--max-facts-per-relation", "2", "--batch-size", "16", "--device", "cpu", cwd=REPO)
    assert "facts per checkpoint" in proc.stdout
    for name in ("config.json", "metrics.json", "report.md", "tables/predictions.csv", "tables/accuracy_by_relation.csv",
                 "tables/languages.csv", "tables/frequency_bins.csv", "tables/checkpoints.csv",
                 "plots/accuracy_by_frequency.png", "plots/accuracy_by_frequency_languages.png", "plots/accuracy_vs_step.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    final = metrics["final"]
    assert metrics["facts_asked"] == 12 * 2 * 2 and final["counts"] == "checkpoint 300" and final["step"] == 300
    assert sorted(final["languages"]) == sorted(LANGUAGES)
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["facts"] == 4 for r in final["languages"].values())
    # a real model knows some of these capitals and continents in English
    assert final["languages"]["en"]["accuracy"] > 0 and final["languages"]["en"]["consistency_en"] == 1.0
    assert all(r["consistency_en"] is None or 0.0 <= r["consistency_en"] <= 1.0 for r in final["languages"].values())
    assert len(metrics["frequency_bin_edges"]) == 31
    with (out / "tables" / "predictions.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 48 and all(r["prompt"].count("\n") == 3 and r["counts"] == "checkpoint 300" for r in rows)
    print("\nrecall per language:", {k: (v["accuracy"], v["consistency_en"]) for k, v in final["languages"].items()})
