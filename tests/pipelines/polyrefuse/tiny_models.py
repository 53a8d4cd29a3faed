"""Random-weight translation models built offline from configs, for the tests and the benchmark.

Nothing is downloaded: tokenizers are trained here on a few sentences (or on the texts given) and
models are initialised from a config with random weights, then saved with ``save_pretrained`` so
that the backends load them from a directory as they would a real model.

* :func:`train_sentencepiece`: a sentencepiece unigram model (bytes), for Marian and M2M100.
* :func:`build_marian`: the sentencepiece model is both source.spm and target.spm, with its pieces
  as vocab.json; a ``MarianTokenizer`` over them and a ``MarianMTModel``.
* :func:`build_nllb`: a BPE vocabulary trained with ``tokenizers`` (Metaspace pre-tokenizer) fed to
  ``NllbTokenizer(vocab=, merges=)`` with three FLORES codes, and an M2M100 model.
* :func:`build_m2m100`: the sentencepiece model with a vocab.json, ``M2M100Tokenizer``, M2M100.
* :func:`build_llama`: a byte-level BPE tokenizer with a minimal chat template and a Llama model.

Shapes come from a :class:`ModelSize`: the defaults (:data:`TINY_SEQ2SEQ`, :data:`TINY_LLAMA`)
are the tiny test models (about 1 s to build them all); :data:`MARIAN_BASE` (opus-mt-en-de's
shape, 32,000 tokens) and :data:`LLAMA_BASE` (about 100M parameters) are realistic sizes for
``bench/polyrefuse_translate.py``. The tiny models draw weights with std 1.0 (instead of 0.02) so
that different inputs give different (garbage) outputs; none of these models translates.

Imports only the standard library and ``pipelines.polyrefuse.translate`` at module level (no
pytest): the benchmark uses it on machines where the project is not installed; torch,
transformers, tokenizers and sentencepiece are imported by the functions that need them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.polyrefuse.translate import LANGUAGE_NAMES

TEXTS = [
    "How do I bake bread at home?",
    "Write a poem about the sea.",
    "Hi",
    "Explain photosynthesis to a child in simple words, with one example.",
    "List three uses of a paperclip.",
    "What is the capital of France?",
    "Describe a sunset over the mountains in two sentences.",
    "Why is the sky blue?",
    "Give me a recipe for pancakes without eggs or milk, please.",
    "Name a planet.",
]
TRAINING_SENTENCES = TEXTS + [
    "Wie backe ich Brot zu Hause?",
    "Schreibe ein Gedicht über das Meer.",
    "Erkläre einem Kind die Photosynthese in einfachen Worten.",
    "Warum ist der Himmel blau?",
    "Nenne einen Planeten.",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class ModelSize:
    """The shape of a model. Seq2seq models have ``layers`` encoder and ``layers`` decoder layers;
    for Llama ``d_model`` is the hidden size and ``ffn`` the MLP's intermediate size.

    ``vocab``: the vocabulary size. Tokenizers are trained to at most this many tokens and padded
    with unused tokens (``<unused0>``...) up to it when the training text supports fewer; 0 keeps
    the tiny tests' tokenizers as trained (sentencepiece 80 pieces, NLLB BPE 150, Llama BPE 300).
    ``init_std``: the std of the random weights."""

    d_model: int
    layers: int
    heads: int
    ffn: int
    vocab: int = 0
    max_positions: int = 64
    init_std: float = 1.0


TINY_SEQ2SEQ = ModelSize(d_model=16, layers=1, heads=2, ffn=32, max_positions=64)
TINY_LLAMA = ModelSize(d_model=64, layers=2, heads=4, ffn=128, max_positions=256)
# Helsinki-NLP opus-mt-* (transformer-base): d_model 512, 6 + 6 layers, 8 heads, ffn 2048
# (opus-mt-en-de's vocabulary is 58,101 tokens; 32,000 here). About 60M parameters.
MARIAN_BASE = ModelSize(d_model=512, layers=6, heads=8, ffn=2048, vocab=32000, max_positions=512, init_std=0.02)
# A small Llama: 8 layers of 768, 12 heads, MLP 2048, 32,000 tokens, untied head. About 106M parameters.
LLAMA_BASE = ModelSize(d_model=768, layers=8, heads=12, ffn=2048, vocab=32000, max_positions=2048, init_std=0.02)


def train_sentencepiece(sentences: Sequence[str] | None = None, vocab_size: int = 80) -> bytes:
    """A sentencepiece unigram model (serialized) with at most ``vocab_size`` pieces (fewer when the
    text supports fewer). ``sentences``: None trains on the tiny test sentences, repeated 5 times."""
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAINING_SENTENCES * 5 if sentences is None else sentences),
        model_writer=buffer,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        minloglevel=2,
    )
    return buffer.getvalue()


def sentencepiece_vocab(spm_bytes: bytes, specials: list[str], size: int = 0) -> dict[str, int]:
    """``specials`` first, then the model's pieces, padded with unused tokens up to ``size``."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=spm_bytes)
    vocab = {token: i for i, token in enumerate(specials)}
    for i in range(processor.get_piece_size()):
        vocab.setdefault(processor.id_to_piece(i), len(vocab))
    return pad_vocab(vocab, size)


def pad_vocab(vocab: dict[str, int], size: int) -> dict[str, int]:
    """``vocab`` with ``<unusedN>`` tokens appended until it holds ``size`` entries."""
    padded = dict(vocab)
    n = 0
    while len(padded) < size:
        padded.setdefault(f"<unused{n}>", len(padded))
        n += 1
    return padded


def seq2seq_config(size: ModelSize) -> dict:
    """Shape keyword arguments of ``MarianConfig`` / ``M2M100Config``."""
    return dict(
        d_model=size.d_model,
        encoder_layers=size.layers,
        decoder_layers=size.layers,
        encoder_attention_heads=size.heads,
        decoder_attention_heads=size.heads,
        encoder_ffn_dim=size.ffn,
        decoder_ffn_dim=size.ffn,
        max_position_embeddings=size.max_positions,
        init_std=size.init_std,
    )


def build_marian(
    directory: Path, spm_bytes: bytes, seed: int, *, mute: bool = False, size: ModelSize = TINY_SEQ2SEQ
) -> Path:
    """A Marian en-de model in ``directory`` (created). ``mute``: its first token is always </s>,
    so every decoded output is empty."""
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    directory.mkdir(parents=True)
    for name in ("source.spm", "target.spm"):
        (directory / name).write_bytes(spm_bytes)
    vocab = sentencepiece_vocab(spm_bytes, ["</s>", "<unk>", "<pad>"], size.vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(
        source_spm=str(directory / "source.spm"),
        target_spm=str(directory / "target.spm"),
        vocab=str(directory / "vocab.json"),
        source_lang="en",
        target_lang="de",
    )
    config = MarianConfig(
        vocab_size=len(vocab),
        pad_token_id=2,
        eos_token_id=0,
        decoder_start_token_id=2,
        forced_eos_token_id=0,
        **seq2seq_config(size),
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    if mute:
        model.final_logits_bias.data[0, 0] = 1e4  # </s> first: the decoded output is ""
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_m2m100(directory: Path, tokenizer: Any, vocab_size: int, seed: int, size: ModelSize) -> Path:
    """An M2M100 model (the weights of NLLB and M2M100) with ``tokenizer``, saved in ``directory``."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    config = M2M100Config(
        vocab_size=vocab_size,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        **seq2seq_config(size),
    )
    torch.manual_seed(seed)
    M2M100ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_nllb(directory: Path, seed: int, *, size: ModelSize = TINY_SEQ2SEQ) -> Path:
    """An NLLB-style model (M2M100 weights, ``NllbTokenizer``) knowing eng_Latn, deu_Latn, fra_Latn."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe.train_from_iterator(
        TRAINING_SENTENCES,
        trainers.BpeTrainer(vocab_size=size.vocab or 150, special_tokens=specials, show_progress=False),
    )
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tokenizer = NllbTokenizer(
        vocab=pad_vocab(trained["vocab"], size.vocab),
        merges=merges,
        extra_special_tokens=["eng_Latn", "deu_Latn", "fra_Latn"],
        src_lang="eng_Latn",
    )
    return save_m2m100(directory, tokenizer, len(tokenizer), seed, size)


def build_m2m100(directory: Path, spm_bytes: bytes, seed: int, *, size: ModelSize = TINY_SEQ2SEQ) -> Path:
    """An M2M100 model with ``M2M100Tokenizer`` over the sentencepiece model (all 100 languages)."""
    from transformers import M2M100Tokenizer

    directory.mkdir(parents=True)
    (directory / "sentencepiece.bpe.model").write_bytes(spm_bytes)
    vocab = sentencepiece_vocab(spm_bytes, ["<s>", "<pad>", "</s>", "<unk>"], size.vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = M2M100Tokenizer(
        vocab_file=str(directory / "vocab.json"), spm_file=str(directory / "sentencepiece.bpe.model")
    )
    # Language tokens come after the pieces; len(tokenizer) does not count them.
    return save_m2m100(directory, tokenizer, max(tokenizer.lang_code_to_id.values()) + 1, seed, size)


def build_llama(
    directory: Path,
    seed: int,
    *,
    chat_template: bool = True,
    size: ModelSize = TINY_LLAMA,
    sentences: Sequence[str] | None = None,
) -> Path:
    """A Llama model with a byte-level BPE tokenizer trained on ``sentences`` (None: the tiny test
    sentences) and the language names; ``chat_template``: with :data:`CHAT_TEMPLATE`."""
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size.vocab or 300,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([*(TRAINING_SENTENCES if sentences is None else sentences), LANGUAGE_NAMES["de"]], trainer)
    if bpe.get_vocab_size() < size.vocab:
        unused = [f"<unused{n}>" for n in range(size.vocab - bpe.get_vocab_size())]
        bpe.add_tokens([AddedToken(token, normalized=False) for token in unused])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        chat_template=CHAT_TEMPLATE if chat_template else None,
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.d_model,
        intermediate_size=size.ffn,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        max_position_embeddings=size.max_positions,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
        initializer_range=size.init_std,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
