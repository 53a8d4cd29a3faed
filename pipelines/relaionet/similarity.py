"""LAIONet's text-similarity filter: does the caption talk about the class it matched?

For each caption matched to a class (``pipelines.relaionet.captions``), the caption and the class's
query text ``"<synset name> which is <WordNet gloss>"`` (:meth:`ClassMap.query_text`) are embedded
by a text encoder and compared by cosine similarity (dot product of L2-normalised vectors). LAIONet
used a CLIP text encoder and kept similarity > 0.82; here a row is kept when similarity >= the
threshold (a tie at exactly the threshold is kept).

Encoders (:class:`TextEncoder`) load from a local model directory only, never from a hub: a missing
directory is a :class:`ModelNotFoundError` that says nothing is downloaded. Thresholds belong to a
backend, because each model spreads its similarities differently:

* :class:`ClipTextEncoder` (``kind="clip"``): ``CLIPTextModelWithProjection``, the projected
  ``text_embeds``; default threshold 0.82, LAIONet's value for CLIP ViT-B/32-style text towers.
* :class:`SentenceEncoder` (``kind="sentence"``): a transformers encoder (e.g. all-MiniLM-L6-v2)
  mean-pooled over the attention mask; default threshold 0.5, a placeholder that has NOT been
  calibrated against proofread labels. Pass a threshold of your own for serious runs.

:func:`similarity_filter` encodes each needed class's query text once per encoder (cached for the
encoder's lifetime) and the captions in batches, and returns one row per caption
(:data:`SIMILARITY_SCHEMA`); dropped rows carry ``drop_reason`` ``low_similarity`` and the score and
threshold in ``detail``. ``encoder.version`` (a hash of the model files and the settings that change
the vectors) identifies what produced the scores.

torch and transformers are imported when an encoder is built, not with this module.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from pipelines.core.models import (
    ModelNotFoundError,
    fingerprint_model_dir,
    fingerprint_settings,
    require_model_dir,
    resolve_device,
)
from pipelines.relaionet.classes import CLASS_ID, ClassMap

__all__ = [
    "CLIP_THRESHOLD", "SENTENCE_THRESHOLD", "DEFAULT_THRESHOLDS", "DROP_REASONS", "SIMILARITY_SCHEMA",
    "TextEncoder", "ClipTextEncoder", "SentenceEncoder", "ModelNotFoundError",
    "make_encoder", "encode_queries", "similarity_filter",
]

CLIP_THRESHOLD = 0.82  # LAIONet (Shirali & Hardt 2023), for a CLIP text encoder
SENTENCE_THRESHOLD = 0.5  # not calibrated: a documented placeholder for mean-pooled sentence encoders
DEFAULT_THRESHOLDS = {"clip": CLIP_THRESHOLD, "sentence": SENTENCE_THRESHOLD}
DROP_REASONS = ("low_similarity",)
SIMILARITY_SCHEMA = pl.Schema({
    "index": pl.UInt32,  # position of the caption in the input
    "class_id": CLASS_ID,
    "similarity": pl.Float32,  # cosine between caption and query text
    "kept": pl.Boolean,  # similarity >= threshold
    "drop_reason": pl.String,  # null when kept, else "low_similarity"
    "detail": pl.String,  # when dropped: "similarity 0.7132 < threshold 0.82"
})


@runtime_checkable
class TextEncoder(Protocol):
    """Texts -> L2-normalised float32 vectors, one row per text, in order.

    ``name``: what the model is (for logs and stats); ``version``: changes whenever the vectors
    could (model files, settings); ``default_threshold``: the backend's threshold."""

    name: str
    version: str
    default_threshold: float

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class _TransformersEncoder:
    """Shared by the transformers backends: local loading, batching, device, normalisation."""

    kind = ""
    default_threshold = 0.0

    def __init__(self, model_dir: Path | str, *, batch_size: int = 64, device: str = "auto",
                 max_length: int | None = None) -> None:
        import torch
        from transformers import AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # the pipeline's own bars show progress; one per worker is noise
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_dir = require_model_dir(model_dir, f"{self.kind} text encoder")
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = self._load_model().to(self.device).eval()
        self.max_length = max_length or self._default_max_length()
        self.name = f"{self.kind}:{self.model_dir.name}"
        settings = {"kind": self.kind, "max_length": self.max_length}
        self.version = f"{fingerprint_model_dir(self.model_dir)}-{fingerprint_settings(settings)}"

    def _load_model(self) -> Any:
        raise NotImplementedError

    def _embed(self, batch: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _default_max_length(self) -> int:
        limits = [self.model.config.max_position_embeddings]
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(model_max, int) and model_max < 100_000:  # "no limit" is a huge sentinel
            limits.append(model_max)
        return min(limits)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text. Texts are padded per batch, longest first, then
        put back in input order; texts longer than ``max_length`` tokens are truncated."""
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings; not at positions {bad[:10]}")
        dim = self._dimension()
        out = np.empty((len(texts), dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths share a batch
        torch = self._torch
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                vectors = self._embed(batch).float()
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
                out[rows] = vectors.cpu().numpy()
        return out

    def _dimension(self) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.model_dir)!r}, device={self.device!r}, version={self.version!r})"


class ClipTextEncoder(_TransformersEncoder):
    """CLIP's text tower with its projection (``text_embeds``), from a local directory holding a
    ``CLIPTextModelWithProjection`` (or a full CLIP model) and its tokenizer."""

    kind = "clip"
    default_threshold = CLIP_THRESHOLD

    def _load_model(self) -> Any:
        from transformers import CLIPTextModelWithProjection

        return CLIPTextModelWithProjection.from_pretrained(self.model_dir, local_files_only=True)

    def _dimension(self) -> int:
        return int(self.model.config.projection_dim)

    def _embed(self, batch: dict[str, Any]) -> Any:
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_embeds


class SentenceEncoder(_TransformersEncoder):
    """A transformers encoder (BERT-like, e.g. all-MiniLM-L6-v2) mean-pooled over the attention
    mask, as sentence-transformers does for such models. ``max_length`` defaults to
    ``max_seq_length`` of ``sentence_bert_config.json`` when the directory has one."""

    kind = "sentence"
    default_threshold = SENTENCE_THRESHOLD

    def _load_model(self) -> Any:
        from transformers import AutoModel

        return AutoModel.from_pretrained(self.model_dir, local_files_only=True)

    def _default_max_length(self) -> int:
        config = self.model_dir / "sentence_bert_config.json"
        if config.is_file():
            max_seq = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
            if isinstance(max_seq, int) and max_seq > 0:
                return min(max_seq, super()._default_max_length())
        return super()._default_max_length()

    def _dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def _embed(self, batch: dict[str, Any]) -> Any:
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        tokens = self.model(**inputs).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


ENCODERS: dict[str, type[_TransformersEncoder]] = {"clip": ClipTextEncoder, "sentence": SentenceEncoder}


def make_encoder(kind: str, model_dir: Path | str, **options: Any) -> _TransformersEncoder:
    """The backend ``kind`` ("clip" or "sentence") over ``model_dir``; ``options`` go to its
    constructor (``batch_size``, ``device``, ``max_length``). Unknown kind: ``ValueError``;
    missing directory: :class:`ModelNotFoundError`."""
    if kind not in ENCODERS:
        raise ValueError(f"unknown text encoder kind {kind!r}; use one of {', '.join(ENCODERS)}")
    return ENCODERS[kind](model_dir, **options)


# encoder -> {query text: vector}; dropped with the encoder
_QUERY_CACHE: "weakref.WeakKeyDictionary[Any, dict[str, np.ndarray]]" = weakref.WeakKeyDictionary()


def encode_queries(encoder: TextEncoder, texts: Sequence[str]) -> np.ndarray:
    """``encoder.encode(texts)``, encoding each distinct text at most once per encoder object."""
    try:
        cache = _QUERY_CACHE.setdefault(encoder, {})
    except TypeError:  # not weak-referenceable or not hashable: no cache
        cache = {}
    missing = list(dict.fromkeys(t for t in texts if t not in cache))
    if missing:
        cache.update(zip(missing, encoder.encode(missing)))
    if not texts:
        return np.empty((0, 0), dtype=np.float32)
    return np.stack([cache[t] for t in texts])


def similarity_filter(
    captions: Sequence[str] | pl.Series,
    class_ids: Sequence[int] | pl.Series,
    class_map: ClassMap,
    encoder: TextEncoder,
    threshold: float | None = None,
) -> pl.DataFrame:
    """Cosine similarity of each caption with its class's query text; kept when >= ``threshold``
    (None: ``encoder.default_threshold``). ``captions[i]`` was matched to ``class_ids[i]``.

    Returns :data:`SIMILARITY_SCHEMA`, one row per caption in input order. Different lengths, a
    null caption or class id, or a class id outside the class map are a ``ValueError``."""
    captions = pl.Series(captions, dtype=pl.String) if not isinstance(captions, pl.Series) else captions.cast(pl.String)
    ids = pl.Series(class_ids) if not isinstance(class_ids, pl.Series) else class_ids
    if len(captions) != len(ids):
        raise ValueError(f"{len(captions)} captions but {len(ids)} class ids: give one class id per caption")
    if captions.null_count() or ids.null_count():
        raise ValueError("captions and class ids must not be null: filter unmatched captions out first")
    if threshold is None:
        threshold = float(encoder.default_threshold)
    n_classes = len(class_map.query_texts)
    id_list = [int(c) for c in ids.to_list()]
    outside = sorted({c for c in id_list if not 0 <= c < n_classes})
    if outside:
        raise ValueError(f"class ids outside 0..{n_classes - 1}: {outside[:20]}")

    if not id_list:
        return pl.DataFrame(schema=SIMILARITY_SCHEMA)
    needed = sorted(set(id_list))
    query_vectors = encode_queries(encoder, [class_map.query_text(c) for c in needed])
    row_of = np.full(n_classes, -1, dtype=np.int64)
    row_of[needed] = np.arange(len(needed))
    caption_vectors = np.asarray(encoder.encode(captions.to_list()), dtype=np.float32)
    queries = query_vectors[row_of[np.asarray(id_list)]]
    similarity = np.einsum("ij,ij->i", caption_vectors, queries, dtype=np.float32)

    frame = pl.DataFrame({
        "index": pl.Series(np.arange(len(id_list)), dtype=pl.UInt32),
        "class_id": pl.Series(id_list, dtype=CLASS_ID),
        "similarity": pl.Series(similarity, dtype=pl.Float32),
    })
    kept = pl.col("similarity") >= threshold
    return frame.with_columns(
        kept.alias("kept"),
        pl.when(kept).then(None).otherwise(pl.lit("low_similarity")).alias("drop_reason"),
        pl.when(kept).then(None).otherwise(
            pl.format("similarity {} < threshold {}", pl.col("similarity").round(4), pl.lit(threshold))
        ).alias("detail"),
    ).select(SIMILARITY_SCHEMA.names()).cast(dict(SIMILARITY_SCHEMA))
