"""The SAD strategy benchmark: metric and prompt mechanics on hand-made data, a whole run with a tiny
random model, and the command end to end with SmolLM2-135M-Instruct on the bundled sample."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from experiments.common import ExperimentError
from experiments.sad_benchmark import (
    BenchmarkOptions,
    corpus_bleu,
    corpus_rouge_l,
    count_cooccurrences,
    count_strategy_usage,
    debate_prompt,
    fit_prompt,
    lcs_length,
    resolve_label_source,
    rouge_l,
    rouge_tokens,
    run_sad_benchmark,
    strategy_adherence,
    usage_by_position,
)
from schemas.sad import STRATEGIES
from tests.conftest import SAD_SAMPLE
from tests.corpusforge.test_cli_sad import REPO, cf

PNG = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- ROUGE-L and BLEU


def test_lcs_length_by_hand():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # e.g. BCBA
    assert lcs_length([], ["a"]) == 0
    assert lcs_length(["a", "b"], ["a", "b"]) == 2


def test_rouge_l_exact_values():
    # tokens: lowercased letter/digit runs; punctuation dropped
    assert rouge_tokens("The quick, brown fox!") == ["the", "quick", "brown", "fox"]
    # LCS "the cat on the mat" = 5 of 6 tokens on both sides
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx({"precision": 5 / 6, "recall": 5 / 6, "f1": 5 / 6})
    # LCS "the fox" = 2; P = 2/4, R = 2/3, F1 = 2PR/(P+R) = 4/7
    assert rouge_l("The quick, brown fox!", "the fox jumped") == pytest.approx({"precision": 0.5, "recall": 2 / 3, "f1": 4 / 7})
    assert rouge_l("", "the fox") == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert rouge_l("nothing shared", "the fox") == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert corpus_rouge_l(["the cat sat on the mat", "The quick, brown fox!"], ["the cat is on the mat", "the fox jumped"]) == pytest.approx(
        100 * (5 / 6 + 4 / 7) / 2)
    assert corpus_rouge_l([], []) == 0.0
    with pytest.raises(ValueError, match="pair up"):
        corpus_rouge_l(["a"], [])


def test_bleu_bounds():
    text = "banning cars from downtown hurts the people with the fewest options"
    assert corpus_bleu([text], [text]) == pytest.approx(100.0)
    assert corpus_bleu(["completely different words here"], [text]) == pytest.approx(0.0)
    assert corpus_bleu([], []) == 0.0


# --------------------------------------------------------------------------- adherence


def test_strategy_adherence_definition():
    predicted = [{"Question", "Statement"}, {"Statement"}, set(), {"Question"}]
    targets = [{"Question"}, {"Question", "Statement"}, {"Statement"}, {"Question"}]
    # include: targets within predicted -> replies 1 and 4; exact: predicted == targets -> reply 4;
    # target_recall: 1, 1/2, 0, 1 -> 2.5 / 4
    assert strategy_adherence(predicted, targets) == {"include": 0.5, "exact": 0.25, "target_recall": 0.625, "n": 4}
    assert strategy_adherence([], []) == {"include": 0.0, "exact": 0.0, "target_recall": 0.0, "n": 0}
    with pytest.raises(ValueError, match="at least one target"):
        strategy_adherence([{"Question"}], [set()])


# --------------------------------------------------------------------------- prompts


def test_debate_prompt_layout_exact_text():
    history = [(1, "Cars should go.\nAll of them."), (0, "Not  before transit is built.")]
    prompt = debate_prompt("Cities should ban cars", history, 1, ["Example", "Question"])
    assert prompt == (
        "# Topic\n"
        "Cities should ban cars\n"
        "\n"
        "# Debate History\n"
        "OP: Cars should go. All of them.\n"
        "Challenger: Not before transit is built.\n"
        "\n"
        "# Instruction\n"
        "Continue the debate: write the next reply, and only the reply.\n"
        "Stance: support (argue for the topic)\n"
        "Strategies: Question, Example"
    )
    assert debate_prompt("T", [(1, "x")], 0, ["Statement"]).endswith("Stance: oppose (argue against the topic)\nStrategies: Statement")


def test_fit_prompt_drops_oldest_turns_then_trims(tiny_llama_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    history = [(1, "first turn " * 40), (0, "second turn " * 40), (1, "third turn is short")]
    full, dropped = fit_prompt(tokenizer, "Topic", history, 0, ["Statement"], budget=10_000)
    assert dropped == 0 and full.startswith("<|im_start|>user\n# Topic") and full.endswith("<|im_start|>assistant\n")
    n_full = len(tokenizer(full, add_special_tokens=False)["input_ids"])
    short, dropped = fit_prompt(tokenizer, "Topic", history, 0, ["Statement"], budget=n_full - 5)
    assert dropped == 1 and "first turn" not in short and "Challenger: second turn" in short
    one_word, _ = fit_prompt(tokenizer, "Topic", [(1, "word")], 0, ["Statement"], budget=10_000)
    budget = len(tokenizer(one_word, add_special_tokens=False)["input_ids"]) + 20
    trimmed, dropped = fit_prompt(tokenizer, "Topic", [(1, "word " * 200)], 0, ["Statement"], budget=budget)
    assert dropped == 0 and len(tokenizer(trimmed, add_special_tokens=False)["input_ids"]) <= budget and "OP: word word" in trimmed


# --------------------------------------------------------------------------- usage


@pytest.fixture
def usage_frame() -> pl.DataFrame:
    return pl.DataFrame({
        "strategies": [["Question", "Statement"], ["Statement"], [], ["Causality", "Statement", "Question"], ["Statement", "Statement"]],
        "depth": [0, 1, 1, 12, 9],
    })


def test_count_strategy_usage(usage_frame):
    usage = count_strategy_usage(usage_frame)
    assert usage["strategy"].to_list() == list(STRATEGIES)
    assert usage["utterances"].to_list() == [2, 1, 0, 0, 4]  # a repeated label counts once
    assert usage["share"].to_list() == pytest.approx([0.4, 0.2, 0.0, 0.0, 0.8])


def test_count_cooccurrences(usage_frame):
    cooc = count_cooccurrences(usage_frame)
    matrix = {row["strategy"]: row for row in cooc.iter_rows(named=True)}
    assert [matrix["Question"][s] for s in STRATEGIES] == [2, 1, 0, 0, 2]
    assert [matrix["Causality"][s] for s in STRATEGIES] == [1, 1, 0, 0, 1]
    assert [matrix["Statement"][s] for s in STRATEGIES] == [2, 1, 0, 0, 4]
    assert [matrix["Example"][s] for s in STRATEGIES] == [0] * 5
    assert all(matrix[a][b] == matrix[b][a] for a in STRATEGIES for b in STRATEGIES)


def test_usage_by_position(usage_frame):
    positions = usage_by_position(usage_frame, max_turn=10)
    assert positions.height == 3 * len(STRATEGIES)
    rows = {(r["turn"], r["strategy"]): r for r in positions.iter_rows(named=True)}
    assert sorted({t for t, _ in rows}) == [1, 2, 10]  # depth 9 and 12 -> turns 10 and 13 -> 10
    assert rows[(1, "Question")] == {"turn": 1, "strategy": "Question", "utterances": 1, "with_strategy": 1, "share": 1.0}
    assert rows[(2, "Statement")]["utterances"] == 2 and rows[(2, "Statement")]["share"] == 0.5
    assert rows[(10, "Statement")]["with_strategy"] == 2 and rows[(10, "Causality")]["share"] == 0.5


def test_label_source_auto():
    frame = pl.DataFrame({"split": ["train", "test", "test"], "strategies": [["Question"], None, None]},
                         schema={"split": pl.String, "strategies": pl.List(pl.String)})
    assert resolve_label_source("auto", frame, "test") == "suggested"  # the test split is unlabelled
    labelled = frame.with_columns(pl.Series("strategies", [["Question"], [], None], dtype=pl.List(pl.String)))
    assert resolve_label_source("auto", labelled, "test") == "human"  # [] is a label: none applies
    assert resolve_label_source("human", frame, "test") == "human"


# --------------------------------------------------------------------------- whole runs


@pytest.fixture(scope="module")
def sad_release(tmp_path_factory) -> Path:
    """A SAD release of the bundled sample (train 107 / validation 3 / test 5 utterances), in-process."""
    from corpusforge.config import load_settings
    from corpusforge.ops import sad

    settings = load_settings(None, [], workspace=tmp_path_factory.mktemp("sad-benchmark") / "ws")
    sad.build([SAD_SAMPLE / "reddit"], settings)
    return sad.release(settings, version="0.1.0").path


def test_run_with_a_tiny_model(sad_release, tiny_llama_dir, tmp_path):
    options = BenchmarkOptions(release=str(sad_release), model=str(tiny_llama_dir), out=str(tmp_path / "run"),
                               max_examples=1, epochs=2, max_new_tokens=4, device="cpu")
    metrics = run_sad_benchmark(options)
    run = tmp_path / "run"
    assert metrics["label_source"] == "suggested" and metrics["eval_split"] == "test"  # the sample has no human labels
    assert metrics["generation"]["n"] == 1 and metrics["classifier"]["n_train"] == 107 and metrics["classifier"]["n_eval"] == 5
    # the tiny model has a 512-token context: the sample's long histories must be cut to fit
    assert metrics["generation"]["prompts_with_dropped_turns"] == 1
    assert metrics["usage"]["utterances"] == 115 and json.loads((run / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    config = json.loads((run / "config.json").read_text())
    assert config["release"]["version"] == "0.1.0" and len(config["model"]["fingerprint"]) > 0
    assert config["label_columns"] == {"utterances": "suggested_strategies", "dialogues": "target_suggested_strategies"}
    usage = pl.read_csv(run / "tables/strategy_usage.csv")
    assert usage["utterances"].sum() >= 115 * 0.5 and set(usage["strategy"]) == set(STRATEGIES)
    # a rerun overwrites, the classifier included
    assert run_sad_benchmark(options)["classifier"]["model"] == metrics["classifier"]["model"]
    # human labels: the sample has none, and the error says so
    with pytest.raises(ExperimentError, match="the train split has no utterances with human strategies"):
        run_sad_benchmark(BenchmarkOptions(**{**options.__dict__, "labels": "human", "out": str(tmp_path / "human")}))
    with pytest.raises(ExperimentError, match="--labels"):
        run_sad_benchmark(BenchmarkOptions(**{**options.__dict__, "labels": "people"}))


def test_run_with_human_labels(sad_release, tiny_llama_dir, tmp_path, monkeypatch):
    """Human labels (here: the suggestion copied into the human columns, the first 7 train utterances
    left unlabelled) are used when present, and unlabelled utterances are left out."""
    import experiments.sad_benchmark as benchmark

    real_load = benchmark.load_release_split

    def labelled(release, config, split=None):
        data = real_load(release, config, split)
        source, target = ("suggested_strategies", "strategies") if config == "utterances" else ("target_suggested_strategies", "target_strategies")

        def copy(ds, name):
            values = list(ds[source])
            if config == "utterances" and name == "train":
                values[:7] = [None] * 7
            return ds.remove_columns(target).add_column(target, values, feature=ds.features[source])

        return type(data)({name: copy(ds, name) for name, ds in data.items()})

    monkeypatch.setattr(benchmark, "load_release_split", labelled)
    options = BenchmarkOptions(release=str(sad_release), model=str(tiny_llama_dir), out=str(tmp_path / "run"),
                               max_examples=1, epochs=1, max_new_tokens=2, device="cpu")
    metrics = run_sad_benchmark(options)
    assert metrics["label_source"] == "human" and metrics["classifier"]["n_train"] == 100 and metrics["usage"]["utterances"] == 108
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert config["label_columns"] == {"utterances": "strategies", "dialogues": "target_strategies"}
    assert "human labels" in (tmp_path / "run/report.md").read_text()


def test_command_end_to_end_with_smollm2(sad_release, smollm2_dir, tmp_path):
    """The real command with SmolLM2-135M-Instruct on the CPU: the sample's 2 test dialogues, prompts cut to
    200 tokens (a 236-token prompt costs seconds of CPU per forward pass) and 16 new tokens."""
    run = tmp_path / "run"
    proc = cf("experiment", "sad-benchmark", "--release", str(sad_release), "--model", str(smollm2_dir), "--out", str(run),
              "--max-examples", "2", "--epochs", "3", "--max-new-tokens", "16", "--max-prompt-tokens", "200", "--batch-size", "2",
              "--device", "cpu", cwd=REPO)
    assert "BLEU" in proc.stdout and "report:" in proc.stdout
    for name in ("config.json", "metrics.json", "report.md", "tables/classifier_prf.csv", "tables/generations.csv",
                 "tables/strategy_usage.csv", "tables/strategy_cooccurrence.csv", "tables/strategy_by_position.csv"):
        assert (run / name).is_file(), name
    for name in ("strategy_usage", "strategy_cooccurrence", "strategy_by_position"):
        assert (run / "plots" / f"{name}.png").read_bytes().startswith(PNG)
        assert f"plots/{name}.png" in (run / "report.md").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    print("\nSAD benchmark (SmolLM2-135M-Instruct, CPU):", json.dumps(metrics, indent=1))
    clf, gen = metrics["classifier"], metrics["generation"]
    for row in [*clf["per_strategy"].values(), clf["micro"], clf["macro"]]:
        assert all(0.0 <= row[k] <= 1.0 for k in ("precision", "recall", "f1"))
    assert gen["n"] == 2 and gen["prompts_with_dropped_turns"] == 2 and gen["bleu"] >= 0.0 and 0.0 <= gen["rouge_l"] <= 100.0
    assert gen["rouge_l"] > 0.0  # an instruction model on topic shares some words with the gold reply
    for key in ("adherence", "adherence_gold_reply"):
        assert all(0.0 <= gen[key][k] <= 1.0 for k in ("include", "exact", "target_recall"))
        assert gen[key]["exact"] <= gen[key]["include"] <= gen[key]["target_recall"]  # by definition
    replies = pl.read_csv(run / "tables/generations.csv")["reply"].to_list()
    assert all(isinstance(r, str) and r.strip() for r in replies)
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["path"] == str(Path(smollm2_dir).resolve()) and config["release"]["version"] == "0.1.0"
