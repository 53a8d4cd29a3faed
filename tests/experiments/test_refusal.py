"""Refusal directions (experiments/refusal.py): hook mechanics on a tiny random Llama, the selection
rules and scores on fixed inputs, and the command end to end with SmolLM2 on a de+en PolyRefuse
release built from the bundled sources and the published German sample."""

from __future__ import annotations

import json
import math
import time

import pytest

torch = pytest.importorskip("torch")

from experiments.common import chat_prompts, load_causal_lm  # noqa: E402
from experiments.refusal import (  # noqa: E402
    activation_addition,
    capture_residual,
    decoder_layers,
    directional_ablation,
    is_refusal,
    kl_divergence,
    post_instruction_tokens,
    refusal_rate,
    refusal_scores,
    refusal_token_ids,
    select_direction,
)

PROMPTS = ["Hello, how are you?", "The capital of France is Paris. Tell me more about it please."]


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    model, tokenizer = load_causal_lm(tiny_llama_dir, device="cpu")
    enc = tokenizer(chat_prompts(tokenizer, PROMPTS), return_tensors="pt", padding=True, add_special_tokens=False)
    return model, tokenizer, enc


def _forward(model, enc, **kwargs):
    with torch.no_grad():
        return model(**enc, **kwargs)


def _layer_outputs(model):
    """Forward hooks recording each decoder layer's output (registered after any edit hooks)."""
    outputs = {}
    handles = [layer.register_forward_hook(lambda m, a, o, i=i: outputs.__setitem__(i, o[0] if isinstance(o, tuple) else o))
               for i, layer in enumerate(decoder_layers(model))]
    return outputs, handles


def test_capture_is_exactly_the_residual_stream_at_each_layer_input(tiny):
    model, _, enc = tiny
    with capture_residual(model) as acts:
        out = _forward(model, enc, output_hidden_states=True)
    assert len(acts) == len(decoder_layers(model)) == len(out.hidden_states) - 1
    for layer, act in enumerate(acts):
        torch.testing.assert_close(act, out.hidden_states[layer], rtol=0, atol=0)
    with capture_residual(model, last_positions=3) as last:
        _forward(model, enc)
    torch.testing.assert_close(last[1], out.hidden_states[1][:, -3:, :], rtol=0, atol=0)


def test_ablation_leaves_no_component_along_the_direction_anywhere(tiny):
    model, _, enc = tiny
    direction = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(1)) * 5
    unit = direction / direction.norm()
    before = _forward(model, enc, output_hidden_states=True)
    assert before.hidden_states[1].matmul(unit).abs().max() > 1e-2  # there was a component to remove
    with directional_ablation(model, direction):
        outputs, handles = _layer_outputs(model)
        with capture_residual(model) as inputs:
            after = _forward(model, enc, output_hidden_states=True)
        for handle in handles:
            handle.remove()
    for tensor in [after.hidden_states[0], *inputs, *outputs.values()]:
        assert tensor.matmul(unit).abs().max() < 1e-4
    assert len(outputs) == len(decoder_layers(model))


def test_activation_addition_adds_exactly_r_at_the_chosen_layer_only(tiny):
    model, _, enc = tiny
    r = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(2))
    with capture_residual(model) as base:
        _forward(model, enc)
    base = list(base)
    with activation_addition(model, r, layer=1), capture_residual(model) as added:
        _forward(model, enc)
    torch.testing.assert_close(added[0], base[0], rtol=0, atol=0)  # earlier layers untouched
    torch.testing.assert_close(added[1] - base[1], r.expand_as(base[1]), rtol=0, atol=1e-5)


def test_hooks_are_removed_afterwards(tiny):
    model, _, enc = tiny
    reference = _forward(model, enc).logits
    modules = [model.get_input_embeddings(), *decoder_layers(model)]
    modules += [m for layer in decoder_layers(model) for m in (layer.self_attn, layer.mlp)]
    count = lambda: [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in modules]  # noqa: E731
    hooks_before = count()  # transformers keeps hooks of its own on some modules
    r = torch.randn(model.config.hidden_size)
    with directional_ablation(model, r), activation_addition(model, r, 0), capture_residual(model):
        assert not torch.allclose(_forward(model, enc).logits, reference)
    with pytest.raises(RuntimeError):
        with directional_ablation(model, r):
            raise RuntimeError("boom")  # removal on errors too
    assert count() == hooks_before
    torch.testing.assert_close(_forward(model, enc).logits, reference, rtol=0, atol=0)


def test_post_instruction_tokens_are_the_template_suffix(tiny):
    _, tokenizer, _ = tiny
    ids = post_instruction_tokens(tokenizer)
    assert tokenizer.decode(ids) == "<|im_end|>\n<|im_start|>assistant\n"


def _candidate(layer, position, refusal, kl, steering=1.0):
    return {"layer": layer, "position": position, "refusal_score": refusal, "kl": kl, "steering_score": steering}


def test_selection_rules_on_fixed_scores():
    candidates = [
        _candidate(9, -1, -9.0, 0.0),  # best score, but layer 9 of 10 is in the last 20%
        _candidate(8, -2, -8.0, 0.0),  # layer 8 too (8 >= int(10 * 0.8))
        _candidate(3, -1, -7.0, 0.5),  # KL above the threshold
        _candidate(4, -1, -6.5, 0.05, steering=-1.0),  # addition induces no refusal
        _candidate(5, -2, -3.0, 0.1),  # KL exactly at the threshold: kept
        _candidate(2, -1, -5.0, 0.09),  # the lowest survivor
        _candidate(1, -1, float("nan"), 0.0),
    ]
    rows, chosen = select_direction(candidates, n_layers=10, kl_threshold=0.1)
    assert (chosen["layer"], chosen["position"], chosen["refusal_score"]) == (2, -1, -5.0)
    reasons = {(r["layer"], r["position"]): r["drop_reason"] for r in rows}
    assert "last 20%" in reasons[(9, -1)] and "last 20%" in reasons[(8, -2)]
    assert "KL" in reasons[(3, -1)] and "induce refusal" in reasons[(4, -1)] and "not finite" in reasons[(1, -1)]
    assert reasons[(5, -2)] is None and reasons[(2, -1)] is None
    assert sum(r["chosen"] for r in rows) == 1
    # the steering rule off: the candidate at layer 4 wins; a looser KL threshold lets layer 3 win
    assert select_direction(candidates, 10, kl_threshold=0.1, steering_threshold=None)[1]["layer"] == 4
    assert select_direction(candidates, 10, kl_threshold=1.0)[1]["layer"] == 3
    assert select_direction(candidates[:3], 10, kl_threshold=0.1)[1] is None


def test_refusal_score_and_kl_on_fixed_distributions():
    probs = torch.tensor([[0.5, 0.25, 0.25, 0.0], [0.1, 0.1, 0.4, 0.4]])
    logprobs = probs.clamp_min(1e-12).log()
    scores = refusal_scores(logprobs, [0, 1])
    assert scores[0].item() == pytest.approx(math.log(0.75 / 0.25), abs=1e-4)
    assert scores[1].item() == pytest.approx(math.log(0.2 / 0.8), abs=1e-4)
    assert kl_divergence(logprobs, logprobs) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((2, 4), 0.25).log()
    expected = sum(p * math.log(p / 0.25) for p in (0.5, 0.25, 0.25)) / 2 + sum(p * math.log(p / 0.25) for p in (0.1, 0.1, 0.4, 0.4)) / 2
    assert kl_divergence(logprobs, uniform) == pytest.approx(expected, abs=1e-4)


def test_refusal_token_ids_take_the_first_token_of_each_word(tiny):
    _, tokenizer, _ = tiny
    ids = refusal_token_ids(tokenizer, ["I", "I cannot", "Ich"])
    assert ids[0] == tokenizer("I", add_special_tokens=False)["input_ids"][0] and len(ids) == len(set(ids))


def test_substring_refusal_rate_on_fixed_responses():
    en = ("I'm sorry", "I cannot", "As an AI")
    de = ("Es tut mir leid", "Ich kann nicht")
    assert is_refusal("i’m SORRY, but no.", en) and is_refusal("Well... I cannot do that", en)
    assert not is_refusal("Sure, here is a recipe.", en)
    assert refusal_rate(["Es tut mir leid, das geht nicht.", "Klar, hier ist es.", "ICH KANN NICHT helfen.", "Gern!"], de) == 0.5
    assert refusal_rate([], en) == 0.0


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def polyrefuse_release(tmp_path_factory):
    from tests.corpusforge.test_cli_polyrefuse import GERMAN, SAMPLE, SOURCES, build_args
    from tests.corpusforge.test_cli_sad import REPO, cf

    if not (SAMPLE.is_dir() and (SOURCES / "splits").is_dir()):
        pytest.skip(f"PolyRefuse data not found beside {SOURCES}")
    ws = tmp_path_factory.mktemp("refusal") / "ws"
    cf(*build_args(ws), cwd=REPO)
    cf("release", "polyrefuse", "--version", "0.1.0", *GERMAN, "-w", str(ws), cwd=REPO)
    return ws / "releases" / "polyrefuse" / "0.1.0"


def test_command_end_to_end_with_smollm2(polyrefuse_release, smollm2_dir, tmp_path):
    from tests.corpusforge.test_cli_sad import REPO, cf

    out = tmp_path / "run"
    started = time.perf_counter()
    proc = cf("experiment", "refusal-directions", "--release", str(polyrefuse_release), "--model", str(smollm2_dir),
              "--out", str(out), "--languages", "en,de", "--n-train", "16", "--n-val", "8", "--n-eval", "16",
              "--max-new-tokens", "24", "--layer-stride", "6", "--positions", "1", "--device", "cpu", cwd=REPO)
    seconds = time.perf_counter() - started
    assert "en: direction at layer" in proc.stdout and "de: direction at layer" in proc.stdout
    for name in ("config.json", "metrics.json", "report.md", "tables/transfer.csv", "tables/cosine.csv", "tables/generations.csv",
                 "tables/candidates_en.csv", "tables/candidates_de.csv", "plots/transfer.png", "plots/cosine.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["prompt_sources"]["de"]["harmless_train"] == "train"  # PolyRefuse's German harmless train
    for lang in ("en", "de"):
        m = metrics["per_language"][lang]
        for key in ("refusal_rate_before", "refusal_rate_after", "harmless_refusal_rate", "harmless_refusal_rate_with_addition"):
            assert 0.0 <= m[key] <= 1.0, (lang, key)
        assert m["layer"] < int(30 * 0.8)
        for source in ("en", "de"):
            assert 0.0 <= metrics["transfer_compliance"][source][lang] <= 1.0
    assert metrics["cosine"]["en"]["en"] == pytest.approx(1.0, abs=1e-5) and -1.0 <= metrics["cosine"]["en"]["de"] <= 1.0
    print(f"\nrefusal-directions on SmolLM2 (CPU) in {seconds:.0f} s:",
          json.dumps({k: metrics[k] for k in ("per_language", "transfer_compliance", "cosine")}))


def test_harmless_prompts_a_release_lacks_are_borrowed_from_unused_test_prompts(monkeypatch):
    import datasets

    import experiments.refusal as refusal

    def split(harmful: int, harmless: int, tag: str) -> datasets.Dataset:
        texts = [f"harmful {tag} {i}" for i in range(harmful)] + [f"harmless {tag} {i}" for i in range(harmless)]
        return datasets.Dataset.from_dict({"instruction": texts, "label": [1] * harmful + [0] * harmless})

    release = datasets.DatasetDict({"train": split(6, 0, "train"), "validation": split(4, 0, "val"), "test": split(5, 20, "test")})
    monkeypatch.setattr(refusal, "load_release_split", lambda _release, _language: release)
    sets = refusal.load_prompt_sets("release", "xx", refusal.RefusalConfig(n_train=4, n_val=3, n_eval=5))
    assert sets.sources["harmless_train"].startswith("test") and sets.sources["harmless_val"].startswith("test")
    assert sets.sources["harmful_train"] == "train" and len(sets.harmful_train) == 4
    borrowed = sets.harmless_train + sets.harmless_val
    assert len(sets.harmless_train) == 4 and len(sets.harmless_val) == 3 and all(t.startswith("harmless test") for t in borrowed)
    assert not set(borrowed) & set(sets.harmless_test) and len(set(borrowed)) == 7  # never the evaluation prompts
